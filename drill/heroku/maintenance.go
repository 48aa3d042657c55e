package heroku

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"

	heroku "github.com/heroku/heroku-go/v6"

	"github.com/restore-drill/restore-drill/drill"
)

// SetMaintenance turns the app's maintenance mode on or off. Maintenance
// mode only stops web traffic, so turning it on also scales every other
// process type to 0, after recording the formation; the next call for the
// app (the drill's maintenance off, or the undo that sets back the mode the
// app had) first restores exactly that formation, then sets the mode.
func (p *Provider) SetMaintenance(ctx context.Context, app string, on bool) error {
	p.mu.Lock()
	saved, scaled := p.formations[app]
	p.mu.Unlock()
	if scaled {
		if err := p.scale(ctx, app, saved); err != nil {
			return err
		}
		p.mu.Lock()
		delete(p.formations, app)
		p.mu.Unlock()
		return p.setMaintenance(ctx, app, on)
	}
	if !on {
		return p.setMaintenance(ctx, app, false)
	}
	forms, err := p.formation(ctx, app)
	if err != nil {
		return err
	}
	before := map[string]int{}
	zero := map[string]int{}
	for _, f := range forms {
		if f.Type != "web" && f.Quantity > 0 {
			before[f.Type] = f.Quantity
			zero[f.Type] = 0
		}
	}
	if len(before) > 0 {
		// Recorded before any change, so a failure half-way still restores.
		p.mu.Lock()
		p.formations[app] = before
		p.mu.Unlock()
	}
	if err := p.setMaintenance(ctx, app, true); err != nil {
		return err
	}
	return p.scale(ctx, app, zero)
}

func (p *Provider) setMaintenance(ctx context.Context, app string, on bool) error {
	_, err := p.svc.AppUpdate(ctx, app, heroku.AppUpdateOpts{Maintenance: heroku.Bool(on)})
	state := "off"
	if on {
		state = "on"
	}
	return p.interpret(err, op{what: fmt.Sprintf("turn maintenance %s for %s", state, app), notFound: appNotFound(app)})
}

// scale sets the quantities of the given process types in one call.
func (p *Provider) scale(ctx context.Context, app string, quantities map[string]int) error {
	if len(quantities) == 0 {
		return nil
	}
	type update struct {
		Type     string `json:"type"`
		Quantity int    `json:"quantity"`
	}
	body := struct {
		Updates []update `json:"updates"`
	}{}
	for t, q := range quantities {
		body.Updates = append(body.Updates, update{Type: t, Quantity: q})
	}
	sort.Slice(body.Updates, func(i, j int) bool { return body.Updates[i].Type < body.Updates[j].Type })
	err := p.svc.Patch(ctx, nil, appPath(app)+"/formation", body)
	return p.interpret(err, op{what: "scale the process types of " + app, notFound: appNotFound(app)})
}

// Promote makes db the app's DATABASE the way `heroku pg:promote` does: the
// database being replaced first gets a spare attachment unless it has
// another one on this app (an add-on cannot lose its last attachment), the
// target must not be waiting, then DATABASE is attached to the target with
// the app's name as confirmation, which moves it; the connection pooler
// (DATABASE_CONNECTION_POOL) moves with it; when the app has a release
// phase, the promote waits until the release that attached DATABASE is
// live, and fails if its release phase fails; last, the attachments are
// read again to check that DATABASE and the pooler are both on db. Only a
// scratch database of a drill, or the original the provider recorded when
// describing the app, may be promoted. Promoting the original back also
// removes the spare attachment the first promote created, so the app ends
// with its own attachments.
func (p *Provider) Promote(ctx context.Context, app string, db drill.Database) error {
	p.mu.Lock()
	original, described := p.originals[app]
	p.mu.Unlock()
	isOriginal := described && db.ID != "" && db.ID == original.ID
	if !isOriginal {
		if db.ID == "" || !drill.ValidDrillID(db.DrillID) {
			return drill.Errorf(drill.EREFUSED, "refusing to promote %s: only a drill's scratch database or the original database may be promoted", db.Name)
		}
		a, err := p.addon(ctx, db.ID)
		if err != nil {
			return err
		}
		if drillIDOf(a.Name) != db.DrillID {
			return drill.Errorf(drill.EREFUSED, "refusing to promote add-on %s: its name does not carry drill %s", a.Name, db.DrillID)
		}
		if !described {
			return drill.Errorf(drill.EREFUSED, "refusing to promote %s on %s: the drill has not recorded the database that serves %s, so it could not promote it back", db.Name, app, app)
		}
	}
	atts, err := p.attachments(ctx, app)
	if err != nil {
		return err
	}
	current, ok := primary(atts)
	if !ok {
		return drill.Errorf(drill.EFAILED, "%s has no DATABASE attachment: attach %s with `heroku addons:attach %s --as DATABASE --app %s`", app, original.Name, original.Name, app)
	}
	// What a promote may move the pooler away from: the databases it may
	// move DATABASE away from.
	mayLeave := func(a heroku.AddOnAttachment) bool {
		return (described && a.Addon.ID == original.ID) || drillIDOf(a.Addon.Name) != ""
	}
	if current.Addon.ID == db.ID {
		// Promoted already (a promote retried or resumed): the pooler may
		// not have followed.
		withPooler, err := p.movePooler(ctx, app, atts, "", db, mayLeave)
		if err != nil {
			return err
		}
		if withPooler {
			if err := p.checkMoved(ctx, app, db, true); err != nil {
				return err
			}
		}
		return p.dropSpare(ctx, app, db)
	}
	if !mayLeave(current) {
		return drill.Errorf(drill.EREFUSED, "the DATABASE of %s is %s, neither its original database %s nor a drill's: the drill stops here and changes nothing", app, current.Addon.Name, original.Name)
	}
	if err := p.ensureSpare(ctx, app, current, atts, isOriginal); err != nil {
		return err
	}
	ws, err := p.data.waitStatus(ctx, db.ID)
	if err != nil {
		return p.interpret(err, op{what: "read the wait status of " + db.Name,
			notFound: fmt.Sprintf("database %s is not yet provisioned, so it cannot be promoted", db.Name)})
	}
	if ws.Waiting {
		return drill.Errorf(drill.EFAILED, "database %s cannot be promoted while in state: %s", db.Name, sentence(ws.Message))
	}
	err = p.svc.Post(ctx, nil, "/addon-attachments", struct {
		Addon   string `json:"addon"`
		App     string `json:"app"`
		Confirm string `json:"confirm"`
		Name    string `json:"name"`
	}{Addon: db.ID, App: app, Confirm: app, Name: "DATABASE"})
	if err != nil {
		return p.interpret(err, op{what: fmt.Sprintf("promote %s to DATABASE of %s", db.Name, app)})
	}
	withPooler, err := p.movePooler(ctx, app, atts, current.Addon.ID, db, mayLeave)
	if err != nil {
		return err
	}
	if isOriginal {
		// A scratch database the drill created empty follows nothing;
		// the original may (pg:promote warns, and does not unfollow).
		p.warnFollower(ctx, app, db)
	}
	if err := p.waitReleasePhase(ctx, app, db, current.Addon.Name, withPooler); err != nil {
		return err
	}
	if withPooler {
		// The runner checks DATABASE itself; the pooler it cannot see.
		if err := p.checkMoved(ctx, app, db, true); err != nil {
			return err
		}
	}
	return p.dropSpare(ctx, app, db)
}

// warnFollower warns, as pg:promote does, when the database just promoted
// is a read-only follower: promoting does not unfollow it.
func (p *Provider) warnFollower(ctx context.Context, app string, db drill.Database) {
	info, err := p.data.database(ctx, db.ID)
	if err != nil || info.Following == nil || *info.Following == "" {
		return
	}
	drill.ProgressOf(ctx)(drill.Progress{Warning: true, Message: fmt.Sprintf(
		"%s now serves %s but is a read-only follower: promoting does not unfollow it; run `heroku pg:unfollow %s --app %s` to make it writable", db.Name, app, db.Name, app)})
}

// ensureSpare gives the add-on behind current another attachment on this
// app when DATABASE is its only one here, as pg:promote does: attachments
// on other apps do not count (Heroku refuses to move the last billing
// attachment). The spare of the original is recorded, so the promote back
// removes it; a scratch database's goes with the scratch database.
func (p *Provider) ensureSpare(ctx context.Context, app string, current heroku.AddOnAttachment, atts []heroku.AddOnAttachment, promotingOriginal bool) error {
	for _, a := range atts {
		if a.Addon.ID == current.Addon.ID && a.Name != "DATABASE" && a.Namespace == nil {
			return nil
		}
	}
	var created heroku.AddOnAttachment
	err := p.svc.Post(ctx, &created, "/addon-attachments", struct {
		Addon   string `json:"addon"`
		App     string `json:"app"`
		Confirm string `json:"confirm"`
	}{Addon: current.Addon.ID, App: app, Confirm: app})
	if err != nil {
		return p.interpret(err, op{what: fmt.Sprintf("give %s a second attachment before moving DATABASE", current.Addon.Name)})
	}
	if !promotingOriginal {
		p.mu.Lock()
		p.spares[app] = spare{addonID: current.Addon.ID, attachmentID: created.ID}
		p.mu.Unlock()
	}
	return nil
}

// dropSpare removes the spare attachment made for db by an earlier promote,
// now that db holds DATABASE again.
func (p *Provider) dropSpare(ctx context.Context, app string, db drill.Database) error {
	p.mu.Lock()
	s, ok := p.spares[app]
	p.mu.Unlock()
	if !ok || s.addonID != db.ID {
		return nil
	}
	err := p.svc.Delete(ctx, nil, "/addon-attachments/"+url.PathEscape(s.attachmentID))
	var herr heroku.Error
	if err != nil && !(errors.As(err, &herr) && herr.StatusCode == http.StatusNotFound) {
		return p.interpret(err, op{what: fmt.Sprintf("remove the spare attachment of %s on %s", db.Name, app)})
	}
	p.mu.Lock()
	delete(p.spares, app)
	p.mu.Unlock()
	return nil
}
