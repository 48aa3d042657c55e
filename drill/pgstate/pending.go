package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
)

// Pending is a confirmation a drill waits for, as the state database keeps
// it. State is pending, confirmed, expired or cancelled; it leaves pending
// once.
type Pending struct {
	ID, DrillID, App, Step, Action, Expect, Requester string
	Plan                                              []string
	Channel, ThreadTS, PromptTS                       string
	ExpiresAt                                         time.Time
	State                                             string
	By, Typed                                         string
	At                                                time.Time
	// Job is the queued drill's job a parked drill waits with (JSON), or
	// nil.
	Job []byte
}

// ErrNoPending is returned for an unknown confirmation id.
var ErrNoPending = drill.Errorf(drill.ENOTFOUND, "no such confirmation")

// CreatePending records a new confirmation in state pending.
func (s *Store) CreatePending(ctx context.Context, p Pending) error {
	plan, err := json.Marshal(append([]string{}, p.Plan...))
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO pending_confirmations
		(id, drill_id, app, step, action, expect, requester, plan, channel, thread_ts, prompt_ts, expires_at, job)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		p.ID, p.DrillID, p.App, p.Step, p.Action, p.Expect, p.Requester, plan, p.Channel, p.ThreadTS, p.PromptTS, p.ExpiresAt, p.Job)
	if err != nil {
		return drill.Wrap(drill.EFAILED, err, "cannot record confirmation %s", p.ID)
	}
	return nil
}

const pendingColumns = `id, drill_id, app, step, action, expect, requester, plan, channel, thread_ts, prompt_ts,
	expires_at, state, by_user, typed, coalesce(resolved_at, 'epoch'), job`

func scanPending(row pgx.Row) (Pending, error) {
	var p Pending
	var plan []byte
	err := row.Scan(&p.ID, &p.DrillID, &p.App, &p.Step, &p.Action, &p.Expect, &p.Requester, &plan, &p.Channel, &p.ThreadTS,
		&p.PromptTS, &p.ExpiresAt, &p.State, &p.By, &p.Typed, &p.At, &p.Job)
	if errors.Is(err, pgx.ErrNoRows) {
		return Pending{}, ErrNoPending
	}
	if err != nil {
		return Pending{}, drill.Wrap(drill.ECONFIG, err, "cannot read a confirmation from the state database")
	}
	if p.At.Equal(time.Unix(0, 0)) {
		p.At = time.Time{}
	}
	return p, json.Unmarshal(plan, &p.Plan)
}

// GetPending returns confirmation id, or ErrNoPending.
func (s *Store) GetPending(ctx context.Context, id string) (Pending, error) {
	return scanPending(s.pool.QueryRow(ctx, `SELECT `+pendingColumns+` FROM pending_confirmations WHERE id = $1`, id))
}

// SetPendingPromptTS records the ts of the confirmation's prompt message.
func (s *Store) SetPendingPromptTS(ctx context.Context, id, ts string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE pending_confirmations SET prompt_ts = $2 WHERE id = $1`, id, ts)
	if err != nil {
		return drill.Wrap(drill.EFAILED, err, "cannot update confirmation %s", id)
	}
	if tag.RowsAffected() == 0 {
		return ErrNoPending
	}
	return nil
}

// ResolvePending moves id from pending to state, atomically: of several
// concurrent calls, from any number of processes, exactly one gets ok true.
// A confirmation past its expires_at (by the database's clock) can no
// longer be confirmed: ok is false and it stays pending until its drill
// expires or cancels it. It returns the confirmation as it is afterwards.
func (s *Store) ResolvePending(ctx context.Context, id, state, by, typed string, at time.Time) (Pending, bool, error) {
	p, err := scanPending(s.pool.QueryRow(ctx, `UPDATE pending_confirmations
		SET state = $2, by_user = $3, typed = $4, resolved_at = $5
		WHERE id = $1 AND state = 'pending' AND ($2 <> 'confirmed' OR expires_at > now())
		RETURNING `+pendingColumns, id, state, by, typed, at))
	if err == nil {
		if state == "confirmed" {
			_ = s.Audit(ctx, by, "confirmation_confirmed", p.App, p.DrillID, p.Step)
		}
		return p, true, nil
	}
	if !errors.Is(err, ErrNoPending) {
		return Pending{}, false, err
	}
	p, err = s.GetPending(ctx, id)
	return p, false, err
}

// CancelPendingOf cancels every confirmation of drillID still pending, so
// that nobody can confirm a step of a drill that has ended (a dead drill
// resumed by another process). It returns the ids it cancelled.
func (s *Store) CancelPendingOf(ctx context.Context, drillID, by string, at time.Time) ([]string, error) {
	rows, err := s.pool.Query(ctx, `UPDATE pending_confirmations SET state = 'cancelled', resolved_at = $2, by_user = $3
		WHERE drill_id = $1 AND state = 'pending' RETURNING id`, drillID, at, by)
	var ids []string
	if err == nil {
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return nil, drill.Wrap(drill.EFAILED, err, "cannot cancel the confirmations of drill %s", drillID)
	}
	return ids, nil
}

// WaitPending polls id every interval until it has left pending, or ctx
// ends. Polling a primary key costs little, and unlike LISTEN it holds no
// connection while a drill waits for a person.
func (s *Store) WaitPending(ctx context.Context, id string, interval time.Duration) (Pending, error) {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p, err := s.GetPending(ctx, id)
		switch {
		case ctx.Err() != nil:
			return Pending{}, ctx.Err()
		case errors.Is(err, ErrNoPending):
			return Pending{}, err
		case err == nil && p.State != "pending":
			return p, nil
		}
		// Still pending, or a passing error of the state database: wait on.
		select {
		case <-ctx.Done():
			return Pending{}, ctx.Err()
		case <-t.C:
		}
	}
}

// A prompt being posted is claimed in prompt_ts as "posting:OWNER:UNIX"
// until the real ts is set: the owner (see owner) and when it claimed.
const promptClaim = "posting:"

// promptClaimStale is how long another machine's claim holds; a claim of
// a dead process on this machine ends at once.
const promptClaimStale = 2 * time.Minute

// ClaimPendingPrompt makes the caller the one that posts confirmation id's
// prompt, if its prompt_ts still reads was (empty, or a stale claim
// Unposted returned): of several callers, in any processes, exactly one
// gets true, and only while the confirmation is pending.
func (s *Store) ClaimPendingPrompt(ctx context.Context, id, was string) (bool, error) {
	claim := fmt.Sprintf("%s%s:%d", promptClaim, s.owner, time.Now().Unix())
	tag, err := s.pool.Exec(ctx, `UPDATE pending_confirmations SET prompt_ts = $3
		WHERE id = $1 AND state = 'pending' AND prompt_ts = $2`, id, was, claim)
	if err != nil {
		return false, drill.Wrap(drill.EFAILED, err, "cannot claim the prompt of confirmation %s", id)
	}
	return tag.RowsAffected() == 1, nil
}

// staleClaim tells whether prompt_ts ts is a claim whose poster is gone:
// dead on this machine, or silent past promptClaimStale.
func staleClaim(me owner, ts string, now time.Time) bool {
	rest, ok := strings.CutPrefix(ts, promptClaim)
	if !ok {
		return false
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return true
	}
	at, err := strconv.ParseInt(rest[i+1:], 10, 64)
	if err != nil {
		return true
	}
	if me.goneHere(parseOwner(rest[:i])) {
		return true
	}
	return now.Sub(time.Unix(at, 0)) > promptClaimStale
}

// UnpostedPending returns the pending confirmations that parked drills wait
// for and whose prompt nobody posted, or nobody alive is posting (the
// process that parked the drill died first): nobody could answer them.
func (s *Store) UnpostedPending(ctx context.Context) ([]Pending, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pendingColumns+` FROM pending_confirmations p
		WHERE p.state = 'pending' AND (p.prompt_ts = '' OR p.prompt_ts LIKE 'posting:%') AND p.job IS NOT NULL
		  AND EXISTS (SELECT 1 FROM drills d WHERE d.drill_id = p.drill_id AND d.status = 'running' AND d.parked_ticket = p.id)
		ORDER BY p.expires_at`)
	if err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the confirmations from the state database")
	}
	defer rows.Close()
	var out []Pending
	now := time.Now()
	for rows.Next() {
		p, err := scanPending(rows)
		if err != nil {
			return nil, err
		}
		if p.PromptTS == "" || staleClaim(s.owner, p.PromptTS, now) {
			out = append(out, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, drill.Wrap(drill.ECONFIG, err, "cannot read the confirmations from the state database")
	}
	return out, nil
}

// PendingRetention is how long a confirmation's row outlives its answer.
// Who confirmed what stays in the confirmations table and the audit log;
// the row only served the wait (and a late click's "already confirmed").
const PendingRetention = 30 * 24 * time.Hour

// PurgePending deletes the confirmations answered, expired or cancelled
// more than PendingRetention ago, and the pending ones that expired that
// long ago (their drill is long over). It returns how many it deleted.
func (s *Store) PurgePending(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pending_confirmations
		WHERE (state <> 'pending' AND resolved_at < now() - $1::interval)
		   OR (state = 'pending' AND expires_at < now() - $1::interval)`, PendingRetention.String())
	if err != nil {
		return 0, drill.Wrap(drill.EFAILED, err, "cannot purge old confirmations")
	}
	return tag.RowsAffected(), nil
}
