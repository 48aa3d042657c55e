// Package botpg keeps the bot's pending confirmations in the state database
// (pgstate), so that every bot process sees them: Slack spreads envelopes
// across connections, so a click may reach one process and the submission
// another.
package botpg

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// DefaultPollInterval is how often Wait reads a confirmation.
const DefaultPollInterval = 500 * time.Millisecond

// Pending is a bot.PendingStore on the state database.
type Pending struct {
	Store *pgstate.Store
	// PollInterval: see DefaultPollInterval.
	PollInterval time.Duration
}

var _ bot.PendingStore = (*Pending)(nil)

func toRow(p bot.Pending) pgstate.Pending {
	return pgstate.Pending{ID: p.ID, DrillID: p.DrillID, App: p.App, Step: p.Step, Action: p.Action, Expect: p.Expect,
		Requester: p.Requester, Plan: p.Plan, Channel: p.Channel, ThreadTS: p.ThreadTS, PromptTS: p.PromptTS,
		ExpiresAt: p.ExpiresAt, State: string(p.State), By: p.By, Typed: p.Typed, At: p.At, Job: marshalJob(p.Job)}
}

// marshalJob keeps a parked drill's job with its confirmation.
func marshalJob(j *bot.Job) []byte {
	if j == nil {
		return nil
	}
	b, _ := json.Marshal(j) // a struct of strings, bools and a time
	return b
}

func unmarshalJob(b []byte) *bot.Job {
	if len(b) == 0 {
		return nil
	}
	var j bot.Job
	if json.Unmarshal(b, &j) != nil {
		return nil
	}
	return &j
}

func fromRow(r pgstate.Pending) bot.Pending {
	return bot.Pending{ID: r.ID, DrillID: r.DrillID, App: r.App, Step: r.Step, Action: r.Action, Expect: r.Expect,
		Requester: r.Requester, Plan: r.Plan, Channel: r.Channel, ThreadTS: r.ThreadTS, PromptTS: r.PromptTS,
		ExpiresAt: r.ExpiresAt, State: bot.State(r.State), By: r.By, Typed: r.Typed, At: r.At, Job: unmarshalJob(r.Job)}
}

func translate(err error) error {
	if errors.Is(err, pgstate.ErrNoPending) {
		return bot.ErrNoPending
	}
	return err
}

// Create records p, pending.
func (s *Pending) Create(ctx context.Context, p bot.Pending) error {
	return translate(s.Store.CreatePending(ctx, toRow(p)))
}

// Get returns confirmation id.
func (s *Pending) Get(ctx context.Context, id string) (bot.Pending, error) {
	r, err := s.Store.GetPending(ctx, id)
	if err != nil {
		return bot.Pending{}, translate(err)
	}
	return fromRow(r), nil
}

// SetPromptTS records the prompt's ts.
func (s *Pending) SetPromptTS(ctx context.Context, id, ts string) error {
	return translate(s.Store.SetPendingPromptTS(ctx, id, ts))
}

// Resolve moves id out of pending once, across every process.
func (s *Pending) Resolve(ctx context.Context, id string, state bot.State, by, typed string, at time.Time) (bot.Pending, bool, error) {
	r, ok, err := s.Store.ResolvePending(ctx, id, string(state), by, typed, at)
	if err != nil {
		return bot.Pending{}, false, translate(err)
	}
	return fromRow(r), ok, nil
}

// Wait polls id until it leaves pending or ctx ends.
func (s *Pending) Wait(ctx context.Context, id string) (bot.Pending, error) {
	interval := s.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	r, err := s.Store.WaitPending(ctx, id, interval)
	if err != nil {
		return bot.Pending{}, translate(err)
	}
	return fromRow(r), nil
}

// ClaimPrompt claims the posting of id's prompt, across every process.
func (s *Pending) ClaimPrompt(ctx context.Context, id, was string) (bool, error) {
	return s.Store.ClaimPendingPrompt(ctx, id, was)
}

// Unposted returns the parked drills' confirmations never prompted.
func (s *Pending) Unposted(ctx context.Context) ([]bot.Pending, error) {
	rows, err := s.Store.UnpostedPending(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]bot.Pending, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, nil
}

// CancelDrill cancels every pending confirmation of drillID, by by.
func (s *Pending) CancelDrill(ctx context.Context, drillID, by string, at time.Time) ([]string, error) {
	return s.Store.CancelPendingOf(ctx, drillID, by, at)
}
