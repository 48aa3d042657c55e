package heroku

import (
	"encoding/json"

	"github.com/restore-drill/restore-drill/drill"
)

var _ drill.StateKeeper = (*Provider)(nil)

// savedState is what the provider remembers about an app between calls,
// journaled by the runner with each undo so another process can undo.
type savedState struct {
	Original  *drill.Database `json:"original,omitempty"`
	Formation map[string]int  `json:"formation,omitempty"`
	Spare     *struct {
		AddonID      string `json:"addon_id"`
		AttachmentID string `json:"attachment_id"`
	} `json:"spare,omitempty"`
}

// SaveState returns the original database, the formation before
// maintenance and the spare attachment a promote made, for app.
func (p *Provider) SaveState(app string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s savedState
	if o, ok := p.originals[app]; ok {
		s.Original = &o
	}
	s.Formation = p.formations[app]
	if sp, ok := p.spares[app]; ok {
		s.Spare = &struct {
			AddonID      string `json:"addon_id"`
			AttachmentID string `json:"attachment_id"`
		}{sp.addonID, sp.attachmentID}
	}
	data, err := json.Marshal(s)
	return string(data), err
}

// LoadState remembers what SaveState returned, in a process that did not
// make the changes (resuming a dead drill). What this process already knows
// is kept.
func (p *Provider) LoadState(app, state string) error {
	var s savedState
	if err := json.Unmarshal([]byte(state), &s); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.originals[app]; !ok && s.Original != nil {
		p.originals[app] = *s.Original
	}
	if _, ok := p.formations[app]; !ok && len(s.Formation) > 0 {
		p.formations[app] = s.Formation
	}
	if _, ok := p.spares[app]; !ok && s.Spare != nil {
		p.spares[app] = spare{addonID: s.Spare.AddonID, attachmentID: s.Spare.AttachmentID}
	}
	return nil
}

// ForgetState drops what this process remembers about app: its drill went
// on elsewhere, and stale state would be wrong here later (a formation
// "already recorded" would stop the next maintenance from scaling workers
// to 0).
func (p *Provider) ForgetState(app string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.originals, app)
	delete(p.formations, app)
	delete(p.spares, app)
}
