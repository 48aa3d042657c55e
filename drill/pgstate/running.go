package pgstate

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// RunningDrills returns the drills not finished yet, from every process and
// the terminal, oldest first. Some may have a dead owner: see DrillAlive.
// Running says which are parked.
func (s *Store) RunningDrills(ctx context.Context) ([]drill.DrillRecord, error) {
	list, err := s.Running(ctx)
	if err != nil {
		return nil, err
	}
	recs := make([]drill.DrillRecord, len(list))
	for i, r := range list {
		recs[i] = r.DrillRecord
		if r.Parked() {
			recs[i].ParkedUntil, recs[i].ParkedTicket = r.ParkedUntil, r.Ticket
		}
	}
	return recs, nil
}

// RunningDrill is a drill not finished yet, as Running lists it.
type RunningDrill struct {
	drill.DrillRecord
	// Ticket is the confirmation a parked drill waits for; empty for a
	// drill that is not parked.
	Ticket string
	// ParkedUntil is when that confirmation expires; zero for a drill that
	// is not parked.
	ParkedUntil time.Time
}

// Parked tells whether the drill is parked on a confirmation: no process
// runs it until the confirmation is answered or expires.
func (r RunningDrill) Parked() bool { return r.Ticket != "" }

// Waiting says what a parked drill waits for, as "waiting for a
// confirmation until 15:04 UTC" (with the date when it is not today's); it
// is empty for a drill that is not parked.
func (r RunningDrill) Waiting() string {
	if !r.Parked() {
		return ""
	}
	if r.ParkedUntil.IsZero() {
		return "waiting for a confirmation"
	}
	stamp := "15:04 UTC"
	if r.ParkedUntil.UTC().Format(time.DateOnly) != time.Now().UTC().Format(time.DateOnly) {
		stamp = "2006-01-02 15:04 UTC"
	}
	return "waiting for a confirmation until " + r.ParkedUntil.UTC().Format(stamp)
}

// Running returns the drills not finished yet, from every process and the
// terminal, oldest first, saying which are parked. Some may have a dead
// owner: see DrillAlive.
func (s *Store) Running(ctx context.Context) ([]RunningDrill, error) {
	rows, err := s.pool.Query(ctx, `SELECT drill_id, app, provider, mode, requester, channel, thread_ts, keep, force, started_at,
		coalesce(parked_ticket, ''), parked_until
		FROM drills WHERE status = 'running' ORDER BY started_at`)
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the running drills")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RunningDrill, error) {
		var d RunningDrill
		var mode string
		var until *time.Time
		err := r.Scan(&d.DrillID, &d.App, &d.Provider, &mode, &d.Requester, &d.Channel, &d.ThreadTS, &d.Keep, &d.Force, &d.StartedAt,
			&d.Ticket, &until)
		d.Mode = drill.Mode(mode)
		if until != nil {
			d.ParkedUntil = *until
		}
		return d, err
	})
}

// DrillAlive tells whether the process that owns drillID is alive: it holds
// the drill's session lock until it finishes or its connection dies, and
// counts as alive without it while its heartbeat is recent (it is taking
// the lock again), unless it was a process of this machine that is gone. A
// parked drill counts as alive until its confirmation expired a grace
// period ago (2 minutes), whatever became of the process that parked it.
func (s *Store) DrillAlive(ctx context.Context, drillID string) (bool, error) {
	return s.ownerAlive(ctx, drillID)
}

// Ping checks that the state database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return drill.Wrap(drill.ECONFIG, err, "cannot reach the state database")
	}
	return nil
}

// ExpireOwner ends the lease of drillID's owner, as if its process had died
// on another machine long ago: once its lock is free too, the next resume
// takes the drill over. Tests use it to stand for a dead owner; an
// operator's unlock may, for a host known to be gone.
//
// The owner's lock is gone when it returns: a session still holding it (a
// client just closed, not yet noticed by the server) is ended and waited
// for.
func (s *Store) ExpireOwner(ctx context.Context, drillID string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE drills SET owner = 'expired/0', last_seen = now() - interval '1 day' WHERE drill_id = $1`, drillID); err != nil {
		return err
	}
	for range 100 {
		var held bool
		if err := s.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) > 0 FROM pg_locks
			WHERE locktype = 'advisory' AND granted AND classid = $1::int4::oid AND objid = hashtext($2)::oid AND objsubid = 2`,
			lockDrill, drillID).Scan(&held); err != nil {
			return err
		}
		if !held {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return drill.Errorf(drill.EFAILED, "the lock of drill %s is still held after 5 s", drillID)
}

// RequestCancel asks the process that runs drillID to cancel it (its undo
// stack runs there); the owner sees it within its heartbeat interval. It
// reports whether the drill was running.
func (s *Store) RequestCancel(ctx context.Context, drillID, by string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE drills SET cancel_requested_by = $2 WHERE drill_id = $1 AND status = 'running'`, drillID, by)
	if err != nil {
		return false, drill.Wrap(drill.ECONFIG, err, "cannot ask for the cancel of drill %s", drillID)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	return true, s.Audit(ctx, by, "cancel_requested", "", drillID, "")
}
