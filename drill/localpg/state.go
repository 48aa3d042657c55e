package localpg

import (
	"encoding/json"

	"github.com/restore-drill/restore-drill/drill"
)

var _ drill.StateKeeper = (*Provider)(nil)

// savedState is what the provider remembers about an app between calls,
// journaled by the runner with each undo: the connection limit to give the
// app's database back when maintenance ends. A process resuming a dead
// drill finds it there, whatever its BACKUP_DIR.
type savedState struct {
	ConnLimit *int `json:"conn_limit,omitempty"`
}

// rememberLimit records the connection limit app's database had outside
// maintenance.
func (p *Provider) rememberLimit(app string, limit int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.limits[app] = limit
}

// rememberedLimit returns the limit rememberLimit recorded, if any.
func (p *Provider) rememberedLimit(app string) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	limit, ok := p.limits[app]
	return limit, ok
}

// SaveState returns the connection limit app's database had before
// maintenance, as far as this process knows it.
func (p *Provider) SaveState(app string) (string, error) {
	var s savedState
	if limit, ok := p.rememberedLimit(app); ok {
		s.ConnLimit = &limit
	}
	data, err := json.Marshal(s)
	return string(data), err
}

// LoadState remembers what SaveState returned, in a process that did not
// make the change.
func (p *Provider) LoadState(app, state string) error {
	var s savedState
	if err := json.Unmarshal([]byte(state), &s); err != nil {
		return err
	}
	if s.ConnLimit != nil {
		p.rememberLimit(app, *s.ConnLimit)
	}
	return nil
}

// ForgetState drops what this process remembers about app.
func (p *Provider) ForgetState(app string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.limits, app)
}
