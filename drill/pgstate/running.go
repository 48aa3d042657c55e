package pgstate

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// RunningDrills returns the drills not finished yet, from every process and
// the terminal, oldest first. Some may have a dead owner: see DrillAlive.
func (s *Store) RunningDrills(ctx context.Context) ([]drill.DrillRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT drill_id, app, provider, mode, requester, channel, thread_ts, keep, force, started_at
		FROM drills WHERE status = 'running' ORDER BY started_at`)
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the running drills")
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (drill.DrillRecord, error) {
		var rec drill.DrillRecord
		var mode string
		err := r.Scan(&rec.DrillID, &rec.App, &rec.Provider, &mode, &rec.Requester, &rec.Channel, &rec.ThreadTS, &rec.Keep, &rec.Force, &rec.StartedAt)
		rec.Mode = drill.Mode(mode)
		return rec, err
	})
}

// DrillAlive tells whether the process that owns drillID is alive: it holds
// the drill's session lock until it finishes or its connection dies.
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
