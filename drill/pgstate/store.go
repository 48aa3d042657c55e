package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/restore-drill/restore-drill/drill"
)

// Store is the state database.
type Store struct {
	pool *pgxpool.Pool
	// owner names this process in the drills it owns.
	owner owner
	now   func() time.Time
	// outage bounds how long a drill waits for an unreachable state
	// database (see SetOutage).
	outage time.Duration

	mu sync.Mutex
	// watches holds the drills this process owns.
	watches map[string]*watched
	// downSince is when the state database stopped answering; zero while
	// it answers. past is true once that outage outlasted the bound and
	// drills were told.
	downSince time.Time
	past      bool
	// answerLost, in tests, fails an undo's insert after it was made, as a
	// connection lost before its answer does.
	answerLost func() error
}

// watched is a drill this process owns, as its lock's watcher sees it.
type watched struct {
	// lost is closed when the drill must stop, and why says why.
	lost chan struct{}
	why  error
	// notes carries what the drill's thread should be told.
	notes chan string
	// pushed holds the ids of the undo records this process journaled.
	pushed []int64
}

var _ drill.LockWatcher = (*Store)(nil)

// lockCheckInterval is how often an owner checks the connection that holds
// its drill's lock.
const lockCheckInterval = 2 * time.Second

// Lost returns a channel closed when the drill must stop: another process
// took drillID's lock or the drill (it found the drill dead and may resume
// it), or a cancel was asked for from another process (RequestCancel). An
// unreachable state database never closes it. It is nil for a drill this
// process does not own.
func (s *Store) Lost(drillID string) <-chan struct{} {
	if w := s.watchOf(drillID); w != nil {
		return w.lost
	}
	return nil
}

// LostWhy says why drillID was lost, once Lost is closed: nil for a
// cancel asked for.
func (s *Store) LostWhy(drillID string) error {
	if w := s.watchOf(drillID); w != nil {
		return w.why // written before lost was closed
	}
	return nil
}

// Notes carries what drillID's thread should be told about the state
// database while this process owns it.
func (s *Store) Notes(drillID string) <-chan string {
	if w := s.watchOf(drillID); w != nil {
		return w.notes
	}
	return nil
}

// owns tells whether this process runs drillID now.
func (s *Store) owns(drillID string) bool { return s.watchOf(drillID) != nil }

func (s *Store) watchOf(drillID string) *watched {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watches[drillID]
}

// watch heartbeats drillID and pings the connection holding its lock until
// release. When that connection dies, the lock is taken again on a new
// one, tried again while the state database is unreachable; the drill is
// lost only when another process holds its lock or took the drill over.
func (s *Store) watch(drillID string, held *pgx.Conn) (release func()) {
	w := &watched{lost: make(chan struct{}), notes: make(chan string, 8)}
	done, exited := make(chan struct{}), make(chan struct{})
	s.mu.Lock()
	s.watches[drillID] = w
	s.mu.Unlock()
	var mu sync.Mutex // guards held, which a re-lock replaces
	lose := func(why error) {
		w.why = why
		close(w.lost)
		<-done
	}
	go func() {
		defer close(exited)
		t := time.NewTicker(lockCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), lockCheckInterval)
				// The heartbeat goes through the pool, so it survives the
				// lock's connection: resumers elsewhere see the owner alive.
				// It also brings back a cancel asked for elsewhere.
				var cancelBy *string
				_ = s.pool.QueryRow(ctx, `UPDATE drills SET last_seen = now() WHERE drill_id = $1 RETURNING cancel_requested_by`, drillID).Scan(&cancelBy)
				if cancelBy != nil {
					cancel()
					lose(&drill.Cancel{By: *cancelBy})
					return
				}
				mu.Lock()
				why := s.keepLock(ctx, drillID, &held)
				mu.Unlock()
				cancel()
				if why != nil {
					lose(why)
					return
				}
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		s.mu.Lock()
		delete(s.watches, drillID)
		s.mu.Unlock()
		mu.Lock()
		letGo(held)
		mu.Unlock()
	}
}

// keepLock checks that *held still holds drillID's lock, and takes it
// again on a new connection when it died. It returns why the drill is lost
// (another process took it over), or nil: while the state database is
// unreachable the drill goes on, and the lock is tried again at the next
// check. An outage never stops the work in progress: past the bound,
// journal writes fail at once, so the drill stops before the next change
// whose undo it cannot record (see retry), and its undo stack runs.
func (s *Store) keepLock(ctx context.Context, drillID string, held **pgx.Conn) error {
	if (*held).Ping(ctx) == nil {
		return nil
	}
	again, err := s.relock(ctx, drillID)
	switch {
	case err == nil:
		_ = (*held).Close(ctx)
		*held = again
		if was := s.up(); was > 0 {
			s.say(drillID, fmt.Sprintf("The state database answers again, after %s; this process holds the drill's lock again.", drill.RoundDuration(was)))
		}
		return nil
	case errors.Is(err, errTaken):
		return drill.Wrap(drill.EFAILED, err, "another process took over drill %s while this one could not reach the state database: stopping here, the undo stack runs", drillID)
	case !unreachable(err):
		// The app's lock is held for a moment (a Begin checking the
		// app), or the server refused once: try again at the next check.
		return nil
	}
	gone, news := s.down()
	if news {
		s.say(drillID, s.unreachableNote("the drill's lock connection was lost"))
	}
	if gone >= s.outage && s.pastBound() {
		s.say(drillID, fmt.Sprintf("The state database is still unreachable after %s: the work in progress goes on, but no further change that needs an undo record is made without it.", drill.RoundDuration(gone)))
	}
	return nil
}

// letGo closes held, a connection carrying session locks, letting its
// locks go first: the server drops a closed session's locks only once its
// backend has exited, after Close has returned, and whoever takes the drill
// or its app up next (a parked drill's continuation, the next drill) must
// find them free.
func letGo(held *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), lockCheckInterval)
	defer cancel()
	_, _ = held.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
	_ = held.Close(context.Background())
}

// tryLock takes drillID's lock on held. When its owner is a process of
// this machine and pid namespace that is gone, but its server session
// still holds the lock (the server has not yet noticed the dead client),
// it waits a moment for the server. It never ends anyone's session: a pid
// check cannot tell a dead owner from a live one elsewhere.
func (s *Store) tryLock(ctx context.Context, held *pgx.Conn, id string) (bool, error) {
	for attempt := 0; ; attempt++ {
		var got bool
		if err := held.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, lockDrill, id).Scan(&got); err != nil || got {
			return got, err
		}
		var name string
		var parked bool
		if err := s.pool.QueryRow(ctx, `SELECT owner, parked_ticket IS NOT NULL FROM drills WHERE drill_id = $1`, id).Scan(&name, &parked); err != nil || parked {
			return false, nil
		}
		if !s.owner.goneHere(parseOwner(name)) || attempt == 40 {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errTaken says another process holds a drill's lock, or took the drill.
var errTaken = errors.New("the drill's lock is held by another process")

// errAppBusy says the app's lock is held for a moment by another session.
var errAppBusy = errors.New("the app's lock is held by another session")

// relock takes drillID's lock, and its app's, on a new connection. It
// fails with errTaken when another process holds the drill's lock or has
// taken the drill over, and with errAppBusy when the app's lock is held (a
// Begin checking the app holds it for a moment).
func (s *Store) relock(ctx context.Context, drillID string) (*pgx.Conn, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	held := conn.Hijack()
	fail := func(err error) (*pgx.Conn, error) {
		_ = held.Close(ctx)
		return nil, err
	}
	var got bool
	if err := held.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, lockDrill, drillID).Scan(&got); err != nil {
		return fail(err)
	}
	if !got {
		return fail(errTaken)
	}
	var name string
	if err := held.QueryRow(ctx, `SELECT owner FROM drills WHERE drill_id = $1`, drillID).Scan(&name); err != nil {
		return fail(err)
	}
	if name != s.owner.String() {
		return fail(errTaken) // a resume took it over and let it go
	}
	if err := held.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext(app)) FROM drills WHERE drill_id = $2`, lockApp, drillID).Scan(&got); err != nil {
		return fail(err)
	}
	if !got {
		return fail(errAppBusy)
	}
	return held, nil
}

var _ drill.ResumeJournal = (*Store)(nil)

// New returns a store on pool, which the caller built and closes. Call
// Migrate first.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, owner: newOwner(), now: time.Now, outage: DefaultOutage, watches: map[string]*watched{}}
}

// Lock keys: the two halves of pg_advisory_lock(int, int). The first says
// what is locked, the second is hashtext of its name, computed by Postgres.
const (
	lockDrill = 0x7264 // "rd"
	lockApp   = 0x7261 // "ra"
)

// Begin records the drill and takes, on a connection held until release,
// the drill's lock and the app's lock. Postgres releases both the moment
// this process's connection dies. A parked drill holds its app without a
// lock: Begin refuses the app while one is parked on it (see Park).
func (s *Store) Begin(ctx context.Context, rec drill.DrillRecord) (func(), error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot reach the state database")
	}
	// The connection carries session locks: never hand it back to the pool.
	held := conn.Hijack()
	release := func() { letGo(held) }
	fail := func(err error) (func(), error) {
		release()
		return nil, err
	}
	if frozen, by, reason, at, err := s.Frozen(ctx); err != nil {
		return fail(err)
	} else if frozen && !rec.Force {
		return fail(drill.Wrap(drill.EREFUSED, drill.ErrFrozen, "drills are frozen since %s by %s (%s): no drill or restore starts until `unfreeze`, except a restore with --force", at.UTC().Format("15:04 UTC"), by, reason))
	} else if frozen {
		_ = s.Audit(ctx, rec.Requester, "freeze_forced", rec.App, rec.DrillID, "an emergency restore ran through the freeze with --force")
	}
	if abandoned, parked, err := s.abandonedFor(ctx, rec.App); err != nil {
		return fail(err)
	} else if parked {
		return fail(drill.Errorf(drill.EREFUSED, "drill %s of %s waited for a confirmation that expired with nothing to take it up: run `restore-drill resume` first", abandoned, rec.App))
	} else if abandoned != "" {
		return fail(drill.Errorf(drill.EREFUSED, "drill %s of %s was left unfinished by a process that died: run `restore-drill resume` first", abandoned, rec.App))
	}
	var got bool
	if err := held.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, lockApp, rec.App).Scan(&got); err != nil {
		return fail(drill.Wrap(drill.ECONFIG, err, "cannot lock %s in the state database", rec.App))
	}
	if !got {
		return fail(s.lockedError(ctx, rec.App))
	}
	// Holding the app, no drill of it parks or is taken up meanwhile.
	if err := s.parkedOn(ctx, rec.App); err != nil {
		return fail(err)
	}
	// The app's lock is free while a live drill's lock connection is
	// being replaced: its row says it is alive all the same.
	if live, err := s.liveOn(ctx, rec.App); err != nil {
		return fail(err)
	} else if live {
		return fail(s.lockedError(ctx, rec.App))
	}
	if _, err := held.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, lockDrill, rec.DrillID); err != nil {
		return fail(drill.Wrap(drill.ECONFIG, err, "cannot lock drill %s", rec.DrillID))
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO drills (drill_id, app, provider, mode, requester, channel, thread_ts, keep, force, owner, started_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		rec.DrillID, rec.App, rec.Provider, string(rec.Mode), rec.Requester, rec.Channel, rec.ThreadTS, rec.Keep, rec.Force, s.owner.String(), rec.StartedAt)
	if err != nil {
		return fail(drill.Wrap(drill.EFAILED, err, "cannot record drill %s", rec.DrillID))
	}
	_ = s.Audit(ctx, rec.Requester, "drill_started", rec.App, rec.DrillID, string(rec.Mode))
	return s.watch(rec.DrillID, held), nil
}

// lockedError says who holds app and since when, and what it waits for if
// it is parked (its app lock is held while it is being taken up).
func (s *Store) lockedError(ctx context.Context, app string) error {
	var id, requester string
	var since time.Time
	var until *time.Time
	var lapsed, abandoned bool
	err := s.pool.QueryRow(ctx, `SELECT drill_id, requester, started_at, CASE WHEN parked_ticket IS NOT NULL THEN coalesce(parked_until, now()) END,
		coalesce(parked_until < now(), true), `+parkExpired+` FROM drills
		WHERE app = $1 AND status = 'running' ORDER BY started_at DESC LIMIT 1`, app).Scan(&id, &requester, &since, &until, &lapsed, &abandoned)
	if err != nil {
		return drill.Wrap(drill.EREFUSED, drill.ErrLocked, "%s is held by another drill", app)
	}
	if until != nil {
		return parkedError(app, id, requester, since, *until, lapsed, abandoned)
	}
	return drill.Wrap(drill.EREFUSED, drill.ErrLocked, "%s is held by drill %s of %s since %s: wait for it, or cancel it", app, id, requester, since.UTC().Format("2006-01-02 15:04 UTC"))
}

// runningOn lists the unfinished drills of app, saying which are parked
// and which have a live owner (see ownerAlive).
func (s *Store) runningOn(ctx context.Context, app string) ([]runningOn, error) {
	rows, err := s.pool.Query(ctx, `SELECT drill_id, parked_ticket IS NOT NULL FROM drills WHERE app = $1 AND status = 'running'`, app)
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the state database")
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (runningOn, error) {
		var d runningOn
		return d, r.Scan(&d.id, &d.parked)
	})
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the state database")
	}
	for i := range list {
		if list[i].alive, err = s.ownerAlive(ctx, list[i].id); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// runningOn is an unfinished drill of an app.
type runningOn struct {
	id            string
	parked, alive bool
}

// abandonedFor returns an unfinished drill of app whose owner is dead, and
// whether it is a parked drill whose confirmation expired (see ownerAlive).
func (s *Store) abandonedFor(ctx context.Context, app string) (string, bool, error) {
	list, err := s.runningOn(ctx, app)
	for _, d := range list {
		if !d.alive {
			return d.id, d.parked, nil
		}
	}
	return "", false, err
}

// liveOn tells whether a drill of app that is not parked has a live owner.
func (s *Store) liveOn(ctx context.Context, app string) (bool, error) {
	list, err := s.runningOn(ctx, app)
	for _, d := range list {
		if d.alive && !d.parked {
			return true, nil
		}
	}
	return false, err
}

// ownerAlive tells whether the process that owns drillID is alive. It is
// while it holds the drill's lock. Without the lock (its connection to the
// state database died, not necessarily the owner), see aliveWithoutLock.
//
// A parked drill has no owning process: it counts as alive until its
// confirmation expired parkGrace ago, and as dead after that whatever
// became of the process that parked it.
func (s *Store) ownerAlive(ctx context.Context, drillID string) (bool, error) {
	var held, parked, expired bool
	var name string
	var silent time.Duration
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1::int4::oid AND objid = hashtext($2)::oid AND objsubid = 2),
		coalesce(d.owner, ''), coalesce(now() - d.last_seen, interval '0'),
		coalesce(d.parked_ticket IS NOT NULL, false), coalesce(`+parkExpired+`, false)
		FROM (SELECT) AS one LEFT JOIN drills AS d ON d.drill_id = $2`,
		lockDrill, drillID).Scan(&held, &name, &silent, &parked, &expired)
	if err != nil {
		return false, drill.Wrap(drill.ECONFIG, err, "cannot read locks from the state database")
	}
	if held {
		return true, nil
	}
	if parked {
		return !expired, nil
	}
	return s.aliveWithoutLock(drillID, name, silent), nil
}

// aliveWithoutLock tells whether the owner named name of drillID, which
// does not hold the drill's lock and was last heard of silent ago, is
// alive: this process while it runs the drill; dead at once if it was a
// process of this machine that is gone; otherwise alive until its heartbeat
// is older than the lease, for it goes on, taking its lock again, when it
// cannot reach the state database (see lease).
func (s *Store) aliveWithoutLock(drillID, name string, silent time.Duration) bool {
	o := parseOwner(name)
	switch {
	case o.id != "" && o.id == s.owner.id:
		return s.owns(drillID)
	case s.owner.goneHere(o):
		return false
	}
	return silent < s.lease()
}

// Step records a step.
func (s *Store) Step(ctx context.Context, drillID string, st drill.StepRecord) error {
	return s.retry(ctx, drillID, "recording step "+st.Name, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO drill_steps (drill_id, name, status, seconds, error, note) VALUES ($1, $2, $3, $4, $5, $6)`,
			drillID, st.Name, string(st.Status), st.Seconds, st.Error, st.Note)
		return err
	})
}

// PushUndo records an undo before its change.
func (s *Store) PushUndo(ctx context.Context, drillID string, u drill.UndoRecord) (int64, error) {
	data, err := json.Marshal(u)
	if err != nil {
		return 0, err
	}
	var id int64
	ambiguous := false
	err = s.retry(ctx, drillID, "recording the undo of "+u.Step, func(ctx context.Context) error {
		if ambiguous {
			// The try before may have inserted the record, its answer lost
			// with the connection: take that record rather than add a
			// second, which a resume would undo twice.
			if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM drill_undo
				WHERE drill_id = $1 AND record = $2::jsonb AND done_at IS NULL AND NOT id = ANY($3)`, drillID, data, s.pushedOf(drillID)).Scan(&id); err != nil || id > 0 {
				return err
			}
		}
		err := s.pool.QueryRow(ctx, `INSERT INTO drill_undo (drill_id, record) VALUES ($1, $2) RETURNING id`, drillID, data).Scan(&id)
		if err == nil && s.answerLost != nil {
			err = s.answerLost()
		}
		ambiguous = ambiguous || (err != nil && !pgconn.SafeToRetry(err))
		return err
	})
	if err == nil {
		s.pushed(drillID, id)
	}
	return id, err
}

// pushed records that this process journaled undo id of drillID.
func (s *Store) pushed(drillID string, id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.watches[drillID]; w != nil {
		w.pushed = append(w.pushed, id)
	}
}

// pushedOf returns the undo ids this process journaled for drillID.
func (s *Store) pushedOf(drillID string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.watches[drillID]; w != nil {
		return append([]int64{}, w.pushed...)
	}
	return []int64{}
}

// UpdateUndo rewrites an undo record.
func (s *Store) UpdateUndo(ctx context.Context, drillID string, u drill.UndoRecord) error {
	data, err := json.Marshal(u)
	if err != nil {
		return err
	}
	return s.retry(ctx, drillID, "updating the undo of "+u.Step, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `UPDATE drill_undo SET record = $3 WHERE id = $1 AND drill_id = $2`, u.ID, drillID, data)
		return err
	})
}

// DropUndo marks an undo as run.
func (s *Store) DropUndo(ctx context.Context, drillID string, id int64) error {
	return s.retry(ctx, drillID, "recording an undo as done", func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `UPDATE drill_undo SET done_at = coalesce(done_at, now()) WHERE id = $1 AND drill_id = $2`, id, drillID)
		return err
	})
}

// Confirmed records a confirmation, in the audit log too.
func (s *Store) Confirmed(ctx context.Context, drillID string, c drill.Confirmation) error {
	return s.retry(ctx, drillID, "recording the confirmation of "+c.Step, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO confirmations (drill_id, step, user_id, typed, at) VALUES ($1, $2, $3, $4, $5)`,
				drillID, c.Step, c.User, c.Typed, c.At); err != nil {
				return err
			}
			return audit(ctx, tx, c.User, "confirmed", "", drillID, fmt.Sprintf("%s by typing %q", c.Step, c.Typed))
		})
	})
}

// Finish stores the report and ends the drill.
func (s *Store) Finish(ctx context.Context, rep *drill.Report) error {
	data, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	return s.retry(ctx, rep.DrillID, "recording the report", func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE drills SET status = $2, ended_at = $3, report = $4 WHERE drill_id = $1`,
				rep.DrillID, string(rep.Result), rep.EndedAt, data); err != nil {
				return err
			}
			return audit(ctx, tx, rep.Requester, "drill_"+string(rep.Result), rep.App, rep.DrillID, rep.Error)
		})
	})
}

// Abandoned returns the running drills whose owner is dead, each locked for
// the caller until released. A parked drill is among them only once its
// confirmation expired parkGrace ago with nothing to take it up: it is no
// longer parked then, and its undo records are undone as a dead drill's.
func (s *Store) Abandoned(ctx context.Context) ([]drill.Abandoned, error) {
	rows, err := s.pool.Query(ctx, `SELECT drill_id FROM drills
		WHERE status = 'running' AND (parked_ticket IS NULL OR `+parkExpired+`) ORDER BY started_at`)
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the state database")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the state database")
	}
	var out []drill.Abandoned
	for _, id := range ids {
		a, ok, err := s.claim(ctx, id)
		if err != nil {
			for _, o := range out {
				o.Release()
			}
			return nil, err
		}
		if ok {
			out = append(out, a)
		}
	}
	return out, nil
}

// claim takes over drill id if its owner is dead: whoever gets its lock
// owns it. A live owner holds the lock, so it is never touched. A parked
// drill is taken over once its confirmation expired parkGrace ago, even if
// the process that parked it lives: it owns the drill no more.
func (s *Store) claim(ctx context.Context, id string) (drill.Abandoned, bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return drill.Abandoned{}, false, drill.Wrap(drill.ECONFIG, err, "cannot reach the state database")
	}
	held := conn.Hijack()
	release := func() { letGo(held) }
	got, err := s.tryLock(ctx, held, id)
	if err != nil || !got {
		release()
		return drill.Abandoned{}, false, err
	}
	// Holding the lock now, check the owner is really gone, not just cut
	// off from the state database (see ownerAlive).
	var name string
	var silent time.Duration
	var ticket *string
	var until *time.Time
	var expired bool
	if err := held.QueryRow(ctx, `SELECT owner, now() - last_seen, parked_ticket, parked_until, `+parkExpired+` FROM drills WHERE drill_id = $1`, id).
		Scan(&name, &silent, &ticket, &until, &expired); err != nil {
		release()
		return drill.Abandoned{}, false, nil
	}
	if ticket != nil && !expired {
		// Parked, and the continuation of its confirmation will take it up.
		release()
		return drill.Abandoned{}, false, nil
	}
	if ticket == nil && s.aliveWithoutLock(id, name, silent) {
		release()
		return drill.Abandoned{}, false, nil
	}
	// Hold the app too while undoing, so no new drill starts on it.
	if err := held.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext(app)) FROM drills WHERE drill_id = $2`, lockApp, id).Scan(&got); err != nil || !got {
		release()
		return drill.Abandoned{}, false, err
	}
	a := drill.Abandoned{Release: release}
	var mode string
	err = s.pool.QueryRow(ctx, `SELECT drill_id, app, provider, mode, requester, channel, thread_ts, keep, force, started_at
		FROM drills WHERE drill_id = $1 AND status = 'running'`, id).Scan(
		&a.Record.DrillID, &a.Record.App, &a.Record.Provider, &mode, &a.Record.Requester,
		&a.Record.Channel, &a.Record.ThreadTS, &a.Record.Keep, &a.Record.Force, &a.Record.StartedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		release() // finished between the list and the lock
		return drill.Abandoned{}, false, nil
	}
	if err != nil {
		release()
		return drill.Abandoned{}, false, err
	}
	a.Record.Mode = drill.Mode(mode)
	if a.Undo, err = s.undoOf(ctx, id); err == nil {
		a.Steps, err = s.Steps(ctx, id)
	}
	if err != nil {
		release()
		return drill.Abandoned{}, false, err
	}
	if ticket != nil {
		// Unpark it, so that its confirmation's late continuation finds it
		// gone. It is owned by nobody: dead as soon as its lock is free,
		// should this resume give it up unfinished.
		if _, err := s.pool.Exec(ctx, `UPDATE drills SET parked_ticket = NULL, parked_until = NULL, owner = '', last_seen = coalesce(parked_until, now() - interval '1 day')
			WHERE drill_id = $1 AND status = 'running'`, id); err != nil {
			release()
			return drill.Abandoned{}, false, drill.Wrap(drill.ECONFIG, err, "cannot take over drill %s", id)
		}
		detail := "confirmation " + *ticket + " expired"
		if until != nil {
			detail += " at " + until.UTC().Format(time.RFC3339)
		}
		_ = s.Audit(ctx, "", "drill_park_expired", a.Record.App, id, detail+" with nothing to take it up: resuming it")
	} else if _, err := s.pool.Exec(ctx, `UPDATE drills SET owner = '' WHERE drill_id = $1 AND status = 'running'`, id); err != nil {
		// Owned by nobody now: should its owner be alive after all and
		// take its lock again, it finds the drill taken and stops.
		release()
		return drill.Abandoned{}, false, drill.Wrap(drill.ECONFIG, err, "cannot take over drill %s", id)
	}
	return a, true, nil
}

func (s *Store) undoOf(ctx context.Context, id string) ([]drill.UndoRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, record FROM drill_undo WHERE drill_id = $1 AND done_at IS NULL ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (drill.UndoRecord, error) {
		var u drill.UndoRecord
		var uid int64
		var data []byte
		if err := r.Scan(&uid, &data); err != nil {
			return u, err
		}
		err := json.Unmarshal(data, &u)
		u.ID = uid
		return u, err
	})
}

// Steps returns a drill's journaled steps in order.
func (s *Store) Steps(ctx context.Context, id string) ([]drill.StepRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, status, seconds, error, note FROM drill_steps WHERE drill_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (drill.StepRecord, error) {
		var st drill.StepRecord
		var status string
		err := r.Scan(&st.Name, &status, &st.Seconds, &st.Error, &st.Note)
		st.Status = drill.StepStatus(status)
		return st, err
	})
}

// Audit appends to the audit log.
func (s *Store) Audit(ctx context.Context, actor, action, app, drillID, detail string) error {
	return audit(ctx, s.pool, actor, action, app, drillID, detail)
}

// audit appends to the audit log through db, a pool or a transaction.
func audit(ctx context.Context, db interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, actor, action, app, drillID, detail string) error {
	_, err := db.Exec(ctx, `INSERT INTO audit_log (actor, action, app, drill_id, detail) VALUES ($1, $2, $3, $4, $5)`,
		actor, action, app, drillID, detail)
	return err
}

// Frozen says whether drills are frozen, by whom, why and since when.
func (s *Store) Frozen(ctx context.Context) (bool, string, string, time.Time, error) {
	var frozen bool
	var by, reason string
	var at time.Time
	err := s.pool.QueryRow(ctx, `SELECT frozen, by, reason, at FROM drill_freeze WHERE id = 1`).Scan(&frozen, &by, &reason, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, "", "", time.Time{}, nil
	}
	if err != nil {
		return false, "", "", time.Time{}, drill.Wrap(drill.ECONFIG, err, "cannot read the freeze from the state database")
	}
	return frozen, by, reason, at, nil
}

// SetFreeze freezes or unfreezes every new drill and restore.
func (s *Store) SetFreeze(ctx context.Context, frozen bool, by, reason string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO drill_freeze (id, frozen, by, reason, at) VALUES (1, $1, $2, $3, now())
		ON CONFLICT (id) DO UPDATE SET frozen = $1, by = $2, reason = $3, at = now()`, frozen, by, reason)
	if err != nil {
		return err
	}
	action := "unfreeze"
	if frozen {
		action = "freeze"
	}
	return s.Audit(ctx, by, action, "", "", reason)
}
