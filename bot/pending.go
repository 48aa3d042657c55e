package bot

import (
	"context"
	"errors"
	"sync"
	"time"
)

// State is a pending confirmation's state. It leaves StatePending once.
type State string

// Confirmation states.
const (
	StatePending   State = "pending"
	StateConfirmed State = "confirmed"
	StateExpired   State = "expired"
	StateCancelled State = "cancelled"
)

// Pending is a confirmation a drill waits for.
type Pending struct {
	ID, DrillID, App, Step, Action, Expect, Requester string
	Plan                                              []string
	Channel, ThreadTS, PromptTS                       string
	ExpiresAt                                         time.Time
	State                                             State
	// By, Typed and At record who confirmed, what they typed and when.
	By, Typed string
	At        time.Time
	// Job is the queued drill that parked on this confirmation; nil when
	// the drill waits in its process.
	Job *Job
}

// ErrNoPending is returned for an unknown confirmation id.
var ErrNoPending = errors.New("no such confirmation")

// PendingStore keeps pending confirmations where every bot process sees
// them, so that a click and a submission may reach different processes.
// MemoryPending keeps them in memory; a Postgres store can replace it.
type PendingStore interface {
	Create(ctx context.Context, p Pending) error
	Get(ctx context.Context, id string) (Pending, error)
	SetPromptTS(ctx context.Context, id, ts string) error
	// Resolve moves id from StatePending to state, atomically: of several
	// concurrent calls exactly one gets ok true. Confirming (StateConfirmed)
	// also requires the confirmation not to have expired. It returns the
	// confirmation as it is afterwards.
	Resolve(ctx context.Context, id string, state State, by, typed string, at time.Time) (p Pending, ok bool, err error)
	// Wait blocks until id has left StatePending, or ctx ends.
	Wait(ctx context.Context, id string) (Pending, error)
	// ClaimPrompt makes the caller the one that posts id's prompt, if its
	// PromptTS still reads was ("" for a new one, or what Unposted
	// returned): of several callers, in any processes, exactly one gets
	// true, and only while id is pending.
	ClaimPrompt(ctx context.Context, id, was string) (bool, error)
	// Unposted returns the confirmations that parked drills wait for and
	// whose prompt nobody posted or is posting (their process died first).
	Unposted(ctx context.Context) ([]Pending, error)
	// CancelDrill cancels every confirmation of drillID still pending on
	// behalf of by ("" when the bot itself does), and returns their ids.
	CancelDrill(ctx context.Context, drillID, by string, at time.Time) ([]string, error)
}

// MemoryPending is an in-memory PendingStore.
type MemoryPending struct {
	mu    sync.Mutex
	items map[string]*memItem
}

type memItem struct {
	p    Pending
	done chan struct{}
}

var _ PendingStore = (*MemoryPending)(nil)

// NewMemoryPending returns an empty store.
func NewMemoryPending() *MemoryPending { return &MemoryPending{items: map[string]*memItem{}} }

// Create adds p.
func (m *MemoryPending) Create(_ context.Context, p Pending) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[p.ID] = &memItem{p: p, done: make(chan struct{})}
	return nil
}

// Get returns id.
func (m *MemoryPending) Get(_ context.Context, id string) (Pending, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return Pending{}, ErrNoPending
	}
	return it.p, nil
}

// SetPromptTS records the prompt message's ts.
func (m *MemoryPending) SetPromptTS(_ context.Context, id, ts string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return ErrNoPending
	}
	it.p.PromptTS = ts
	return nil
}

// ClaimPrompt claims the posting of id's prompt once.
func (m *MemoryPending) ClaimPrompt(_ context.Context, id, was string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok || it.p.State != StatePending || it.p.PromptTS != was {
		return false, nil
	}
	it.p.PromptTS = "posting"
	return true, nil
}

// Unposted returns nothing: drills kept in memory wait in their process,
// which posts their prompts.
func (m *MemoryPending) Unposted(context.Context) ([]Pending, error) { return nil, nil }

// Resolve moves id out of StatePending once.
func (m *MemoryPending) Resolve(_ context.Context, id string, state State, by, typed string, at time.Time) (Pending, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	if !ok {
		return Pending{}, false, ErrNoPending
	}
	if it.p.State != StatePending || (state == StateConfirmed && !at.Before(it.p.ExpiresAt)) {
		return it.p, false, nil
	}
	it.p.State, it.p.By, it.p.Typed, it.p.At = state, by, typed, at
	close(it.done)
	return it.p, true, nil
}

// Wait blocks until id is resolved.
func (m *MemoryPending) Wait(ctx context.Context, id string) (Pending, error) {
	m.mu.Lock()
	it, ok := m.items[id]
	m.mu.Unlock()
	if !ok {
		return Pending{}, ErrNoPending
	}
	select {
	case <-it.done:
		m.mu.Lock()
		defer m.mu.Unlock()
		return it.p, nil
	case <-ctx.Done():
		return Pending{}, ctx.Err()
	}
}

// CancelDrill cancels drillID's pending confirmations.
func (m *MemoryPending) CancelDrill(_ context.Context, drillID, by string, at time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, it := range m.items {
		if it.p.DrillID == drillID && it.p.State == StatePending {
			it.p.State, it.p.At, it.p.By = StateCancelled, at, by
			close(it.done)
			ids = append(ids, it.p.ID)
		}
	}
	return ids, nil
}
