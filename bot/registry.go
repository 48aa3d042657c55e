package bot

import (
	"context"
	"sync"
	"time"

	"github.com/restore-drill/restore-drill/drill"
)

// historyLimit is how many finished drills per app the registry keeps.
const historyLimit = 20

// drillRecord is one drill this process runs or ran.
type drillRecord struct {
	ID, App, Verb, Requester, Channel, ThreadTS string
	Mode                                        drill.Mode
	Started, Finished                           time.Time
	Status                                      string
	// Waiting, while the drill waits for a confirmation, says so (mrkdwn,
	// with a link to the prompt).
	Waiting string
	Report  *drill.Report
	cancel  context.CancelCauseFunc
}

// registry holds the drills of this process: one per app at a time.
type registry struct {
	mu      sync.Mutex
	byID    map[string]*drillRecord
	active  map[string]*drillRecord // by app
	history map[string][]drillRecord
}

func newRegistry() *registry {
	return &registry{byID: map[string]*drillRecord{}, active: map[string]*drillRecord{}, history: map[string][]drillRecord{}}
}

// reserve records d as the app's running drill, or returns the drill that
// holds the app.
func (g *registry) reserve(d *drillRecord) (holder drillRecord, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if h, busy := g.active[d.App]; busy {
		return *h, false
	}
	d.Status = "starting"
	g.active[d.App] = d
	g.byID[d.ID] = d
	return drillRecord{}, true
}

// statusText is the drill's state for status (mrkdwn).
func (d drillRecord) statusText() string {
	if d.Waiting != "" {
		return d.Waiting
	}
	return Escape(d.Status)
}

func (g *registry) update(id string, fn func(*drillRecord)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if d, ok := g.byID[id]; ok {
		fn(d)
	}
}

// finish releases the app and files the drill in its history.
func (g *registry) finish(id string, rep *drill.Report, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	d, ok := g.byID[id]
	if !ok {
		return
	}
	delete(g.active, d.App)
	d.Finished, d.Report, d.cancel = at, rep, nil
	if rep == nil {
		delete(g.byID, id)
		return
	}
	d.Status = string(rep.Result)
	h := append(g.history[d.App], *d)
	if len(h) > historyLimit {
		h = h[len(h)-historyLimit:]
	}
	g.history[d.App] = h
}

func (g *registry) get(id string) (drillRecord, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	d, ok := g.byID[id]
	if !ok {
		return drillRecord{}, false
	}
	return *d, true
}

// cancel cancels a running drill on behalf of by; false when it is not
// running here.
func (g *registry) cancel(id, by string) (drillRecord, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	d, ok := g.byID[id]
	if !ok || d.cancel == nil || !d.Finished.IsZero() {
		return drillRecord{}, false
	}
	d.cancel(&drill.Cancel{By: by})
	d.Status = "cancelling"
	return *d, true
}

func (g *registry) running() []drillRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []drillRecord
	for _, d := range g.active {
		out = append(out, *d)
	}
	return out
}

func (g *registry) historyOf(app string) []drillRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]drillRecord(nil), g.history[app]...)
}
