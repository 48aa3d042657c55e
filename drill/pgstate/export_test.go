package pgstate

import (
	"context"
	"io"
	"time"
)

// AuditTamper tries to rewrite the audit log, for the append-only test.
func (s *Store) AuditTamper(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `UPDATE audit_log SET action = 'tampered'`)
	return err
}

// MigrationCount is how many migrations there are.
func MigrationCount() int { return len(migrations()) }

// ParkGrace is parkGrace, for tests.
const ParkGrace = parkGrace

// ParkedAgo moves the expiry of the confirmation drillID is parked on to ago
// before now, by the database's clock.
func (s *Store) ParkedAgo(ctx context.Context, drillID string, ago time.Duration) error {
	_, err := s.pool.Exec(ctx, `UPDATE drills SET parked_until = now() - make_interval(secs => $2) WHERE drill_id = $1`, drillID, ago.Seconds())
	return err
}

// LockHeld tells whether some session holds drillID's lock.
func (s *Store) LockHeld(ctx context.Context, drillID string) (bool, error) {
	var held bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1::int4::oid AND objid = hashtext($2)::oid AND objsubid = 2)`,
		lockDrill, drillID).Scan(&held)
	return held, err
}

// DrillRow is a drill's row as text, for tests that check it is unchanged.
func (s *Store) DrillRow(ctx context.Context, drillID string) (string, error) {
	var row string
	err := s.pool.QueryRow(ctx, `SELECT d::text FROM drills AS d WHERE drill_id = $1`, drillID).Scan(&row)
	return row, err
}

// AuditActions returns the actions the audit log holds for drillID, oldest
// first.
func (s *Store) AuditActions(ctx context.Context, drillID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT action FROM audit_log WHERE drill_id = $1 ORDER BY id`, drillID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// OwnerLike names an owner on this machine and in this pid namespace, as
// another store would: process pid, started at start (pid's own start time
// when empty), with a new random id.
func OwnerLike(pid int, start string) string { return OwnerIn("", pid, start) }

// OwnerIn is OwnerLike in pid namespace pidns (this one when empty).
func OwnerIn(pidns string, pid int, start string) string {
	o := newOwner()
	o.pid = pid
	o.start = start
	if start == "" {
		o.start = startTime(pid)
	}
	if pidns != "" {
		o.pidns = pidns
	}
	return o.String()
}

// SetOwner makes name drillID's owner, last heard of silent ago.
func (s *Store) SetOwner(ctx context.Context, drillID, name string, silent time.Duration) error {
	_, err := s.pool.Exec(ctx, `UPDATE drills SET owner = $2, last_seen = now() - make_interval(secs => $3) WHERE drill_id = $1`, drillID, name, silent.Seconds())
	return err
}

// LockHolder returns the backend pid of the session holding drillID's
// lock, or 0.
func (s *Store) LockHolder(ctx context.Context, drillID string) (int, error) {
	var pid int
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1::int4::oid AND objid = hashtext($2)::oid AND objsubid = 2), 0)`,
		lockDrill, drillID).Scan(&pid)
	return pid, err
}

// LoseAnswers makes the next n undo inserts fail after they were made, as
// a connection lost before their answer does.
func (s *Store) LoseAnswers(n int) {
	s.answerLost = func() error {
		if n == 0 {
			return nil
		}
		n--
		return io.ErrUnexpectedEOF
	}
}

// UndoCount is how many undo records drillID has.
func (s *Store) UndoCount(ctx context.Context, drillID string) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM drill_undo WHERE drill_id = $1`, drillID).Scan(&n)
	return n, err
}
