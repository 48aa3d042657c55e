package pgstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

var _ drill.Parker = (*Store)(nil)

// parkGrace is how long after its confirmation expired a parked drill is
// left to the continuation scheduled for the expiry, which undoes it; a
// dead-owner resume takes it over only after that.
const parkGrace = 2 * time.Minute

// parkExpired is true, in a query on drills, for a parked drill whose
// confirmation expired more than parkGrace ago (by the database's clock).
// It is meaningful only where parked_ticket IS NOT NULL.
var parkExpired = fmt.Sprintf("coalesce(parked_until + interval '%d seconds' < now(), true)", int(parkGrace/time.Second))

// unparkWait bounds how long Unpark waits for the locks of a drill still
// parked on its ticket: the process that parked it may not have released
// them yet, or a Begin on its app may be checking it.
const unparkWait = 5 * time.Second

// Park records that drillID waits for the confirmation its checkpoint cp
// names (drill.ParkedTicket) until until, with cp. The caller owns the
// drill and releases it afterwards; from then on no process owns it. It
// still holds its app (Begin refuses another drill on it), and a dead-owner
// resume leaves it alone until its confirmation expired parkGrace ago.
func (s *Store) Park(ctx context.Context, drillID string, cp []byte, until time.Time) error {
	ticket, err := drill.ParkedTicket(cp)
	if err != nil {
		return err
	}
	if ticket == "" {
		return drill.Errorf(drill.EINTERNAL, "cannot park drill %s: its checkpoint names no confirmation", drillID)
	}
	var app, requester string
	err = s.pool.QueryRow(ctx, `UPDATE drills SET checkpoint = $2, parked_ticket = $3, parked_until = $4
		WHERE drill_id = $1 AND status = 'running' AND cancel_requested_by IS NULL RETURNING app, requester`, drillID, cp, ticket, until).Scan(&app, &requester)
	if errors.Is(err, pgx.ErrNoRows) {
		// A cancel asked for while the drill ran: it ends now, undone,
		// rather than wait for a confirmation nobody should give.
		var by string
		if s.pool.QueryRow(ctx, `SELECT coalesce(cancel_requested_by, '') FROM drills WHERE drill_id = $1`, drillID).Scan(&by) == nil && by != "" {
			return drill.Errorf(drill.ECANCELED, "drill %s was cancelled by %s", drillID, by)
		}
		return drill.Errorf(drill.EFAILED, "cannot park drill %s: it is not running", drillID)
	}
	if err != nil {
		return drill.Wrap(drill.ECONFIG, err, "cannot park drill %s in the state database", drillID)
	}
	_ = s.Audit(ctx, requester, "drill_parked", app, drillID, fmt.Sprintf("waiting for confirmation %s until %s", ticket, until.UTC().Format(time.RFC3339)))
	return nil
}

// Unpark takes up drillID, parked on ticket, and makes this process its
// owner as Begin does: it holds the drill's lock and its app's on a
// connection of its own until p.Release, heartbeats, and Lost works for it.
// ok is false, with no error, when the drill is not parked on ticket: it
// was taken up already, a resume took it over after its confirmation
// expired, or it finished. The checkpoint stays in the drill's row, for the
// record, until the drill parks again.
func (s *Store) Unpark(ctx context.Context, drillID, ticket string) (drill.Parked, bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return drill.Parked{}, false, drill.Wrap(drill.ECONFIG, err, "cannot reach the state database")
	}
	// The connection carries session locks: never hand it back to the pool.
	held := conn.Hijack()
	release := func() { letGo(held) }
	got, err := s.lockParked(ctx, held, drillID, ticket)
	if err != nil || !got {
		release()
		return drill.Parked{}, false, err
	}
	// Holding both locks, this process alone takes the drill up.
	p := drill.Parked{}
	if p.Undo, err = s.undoOf(ctx, drillID); err != nil {
		release()
		return drill.Parked{}, false, drill.Wrap(drill.ECONFIG, err, "cannot read the undo records of drill %s", drillID)
	}
	var mode string
	err = s.pool.QueryRow(ctx, `UPDATE drills SET parked_ticket = NULL, parked_until = NULL, owner = $3, last_seen = now()
		WHERE drill_id = $1 AND status = 'running' AND parked_ticket = $2
		RETURNING checkpoint, drill_id, app, provider, mode, requester, channel, thread_ts, keep, force, started_at`,
		drillID, ticket, s.owner.String()).Scan(&p.Checkpoint,
		&p.Record.DrillID, &p.Record.App, &p.Record.Provider, &mode, &p.Record.Requester,
		&p.Record.Channel, &p.Record.ThreadTS, &p.Record.Keep, &p.Record.Force, &p.Record.StartedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		release() // taken up, undone or finished between the check and the update
		return drill.Parked{}, false, nil
	}
	if err != nil {
		release()
		return drill.Parked{}, false, drill.Wrap(drill.ECONFIG, err, "cannot take up drill %s", drillID)
	}
	p.Record.Mode = drill.Mode(mode)
	_ = s.Audit(ctx, p.Record.Requester, "drill_unparked", p.Record.App, drillID, fmt.Sprintf("confirmation %s answered or expired: continued by %s", ticket, s.owner))
	p.Release = s.watch(drillID, held)
	return p, true, nil
}

// lockParked takes, on held, the lock of drillID, parked on ticket, and its
// app's. No process owns a parked drill: whoever holds its lock is taking
// it up, or is about to let it go (its parker, a Begin checking its app, a
// resume finding its confirmation not yet expired). So each try is
// non-blocking, tried again while the drill stays parked on ticket, or
// while its live owner may still park on it, for up to unparkWait; it is
// false as soon as the drill is neither.
func (s *Store) lockParked(ctx context.Context, held *pgx.Conn, drillID, ticket string) (bool, error) {
	deadline := time.Now().Add(unparkWait)
	for {
		var app string
		var here, soon bool
		// soon: not parked, never parked on ticket, yet running: its owner
		// may be about to park on it (a cancel can come that early).
		err := s.pool.QueryRow(ctx, `SELECT app, coalesce(parked_ticket = $2, false),
				parked_ticket IS NULL AND coalesce(checkpoint->>'ticket', '') <> $2
			FROM drills WHERE drill_id = $1 AND status = 'running'`, drillID, ticket).Scan(&app, &here, &soon)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !here && !soon) {
			return false, nil
		}
		if err != nil {
			return false, drill.Wrap(drill.ECONFIG, err, "cannot read drill %s", drillID)
		}
		var gotDrill, gotApp bool
		err = held.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, lockDrill, drillID).Scan(&gotDrill)
		if err == nil && gotDrill && !here {
			// Nobody owns it, and it is not parked: a dead owner's drill,
			// which resume undoes, not this.
			_, err = held.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, lockDrill, drillID)
			return false, err
		}
		if err == nil && gotDrill {
			err = held.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, lockApp, app).Scan(&gotApp)
			if err == nil && !gotApp {
				_, err = held.Exec(ctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, lockDrill, drillID)
			}
		}
		if err != nil {
			return false, drill.Wrap(drill.ECONFIG, err, "cannot lock drill %s", drillID)
		}
		if gotApp {
			return true, nil
		}
		if time.Now().After(deadline) {
			return false, drill.Wrap(drill.EREFUSED, drill.ErrLocked, "drill %s waits for confirmation %s, but another process has held it for %s: try again", drillID, ticket, unparkWait)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// parkedError says that app is held by a parked drill: id of requester,
// started at since, waiting for a confirmation until until. lapsed says
// the confirmation expired, abandoned that it expired parkGrace ago.
func parkedError(app, id, requester string, since, until time.Time, lapsed, abandoned bool) error {
	const stamp = "2006-01-02 15:04 UTC"
	switch {
	case abandoned:
		return drill.Wrap(drill.EREFUSED, drill.ErrLocked, "%s is held by drill %s of %s since %s, whose confirmation expired at %s with nothing to take it up: run `restore-drill resume` to undo it",
			app, id, requester, since.UTC().Format(stamp), until.UTC().Format(stamp))
	case lapsed:
		return drill.Wrap(drill.EREFUSED, drill.ErrLocked, "%s is held by drill %s of %s since %s, whose confirmation expired at %s: it is being undone, try again in a few minutes",
			app, id, requester, since.UTC().Format(stamp), until.UTC().Format(stamp))
	}
	return drill.Wrap(drill.EREFUSED, drill.ErrLocked, "%s is held by drill %s of %s since %s, waiting for a confirmation until %s: confirm it, or cancel it",
		app, id, requester, since.UTC().Format(stamp), until.UTC().Format(stamp))
}

// parkedOn returns the error saying a parked drill holds app, or nil when
// none does.
func (s *Store) parkedOn(ctx context.Context, app string) error {
	var id, requester string
	var since, until time.Time
	var lapsed, abandoned bool
	err := s.pool.QueryRow(ctx, `SELECT drill_id, requester, started_at, coalesce(parked_until, now()), coalesce(parked_until < now(), true), `+parkExpired+`
		FROM drills WHERE app = $1 AND status = 'running' AND parked_ticket IS NOT NULL ORDER BY started_at DESC LIMIT 1`, app).
		Scan(&id, &requester, &since, &until, &lapsed, &abandoned)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return drill.Wrap(drill.ECONFIG, err, "cannot read the state database")
	}
	return parkedError(app, id, requester, since, until, lapsed, abandoned)
}
