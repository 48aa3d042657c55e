package pgstate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/restore-drill/restore-drill/drill"
)

// DefaultOutage is how long a drill waits for its state database when it
// becomes unreachable (its journal writes retried, its lock taken again).
// Past it, journal writes fail at once: the drill makes no further change
// whose undo it cannot record, and ends, its undo stack run.
const DefaultOutage = 2 * time.Minute

// retryEvery is how often a write the state database did not take is
// tried again during an outage.
const retryEvery = 500 * time.Millisecond

// SetOutage sets how long the store waits for the state database when it
// becomes unreachable (DefaultOutage otherwise). Call it before any drill
// begins.
func (s *Store) SetOutage(d time.Duration) { s.outage = d }

// lease is how long an owner counts as alive after its last heartbeat when
// it no longer holds its lock: its connection to the state database died,
// not necessarily the owner, which goes on while it tries to take its lock
// again, and waits for its journal for up to the outage bound.
func (s *Store) lease() time.Duration { return s.outage + 5*lockCheckInterval }

// unreachable tells whether err says the state database could not be
// reached or dropped the connection, rather than refused what was asked.
func unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if len(pgErr.Code) < 2 {
			return false
		}
		switch pgErr.Code[:2] {
		case "08", "57", "53", "28": // connection, shutdown, resources, login refused
			return true
		}
		return false
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		err.Error() == "conn closed" || errors.Is(err, net.ErrClosed)
}

// down records that the state database did not answer, and returns how
// long it has not, and whether this is news (the outage just began).
func (s *Store) down() (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.downSince.IsZero() {
		s.downSince = s.now()
		return 0, true
	}
	return s.now().Sub(s.downSince), false
}

// up records that the state database answered, and returns how long it
// had not (zero if it had).
func (s *Store) up() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.downSince.IsZero() {
		return 0
	}
	d := s.now().Sub(s.downSince)
	s.downSince, s.past = time.Time{}, false
	return d
}

// pastBound tells whether the outage just outlasted the bound: true once
// per outage.
func (s *Store) pastBound() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.past
	s.past = true
	return !was
}

// say passes note to the drill drillID runs in this process, if any, for
// its thread; it never blocks.
func (s *Store) say(drillID, note string) {
	w := s.watchOf(drillID)
	if w == nil {
		return
	}
	select {
	case w.notes <- note:
	default:
	}
}

// unreachableNote is what a drill's thread is told when its state
// database stops answering.
func (s *Store) unreachableNote(what string) string {
	return fmt.Sprintf("State database unreachable, retrying for up to %s (%s); the work on the app goes on.", drill.RoundDuration(s.outage), what)
}

// retry runs write, one journal write of drillID, until it succeeds, fails
// for another reason than an unreachable state database, or the state
// database has been unreachable for longer than the outage bound: then the
// error wraps drill.ErrStateUnreachable. The drill's thread is told when
// the outage begins and ends.
func (s *Store) retry(ctx context.Context, drillID, what string, write func(ctx context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := write(actx)
		cancel()
		if err == nil {
			if was := s.up(); was > 0 {
				s.say(drillID, fmt.Sprintf("The state database answers again, after %s; the journal is up to date.", drill.RoundDuration(was)))
			}
			return nil
		}
		if !unreachable(err) || ctx.Err() != nil {
			return err
		}
		gone, news := s.down()
		if news {
			s.say(drillID, s.unreachableNote(what))
		}
		if gone >= s.outage {
			return drill.Wrap(drill.EFAILED, errors.Join(drill.ErrStateUnreachable, err), "the state database has been unreachable for %s, longer than the %s a drill waits for it: %s failed", drill.RoundDuration(gone), drill.RoundDuration(s.outage), what)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retryEvery):
		}
	}
}
