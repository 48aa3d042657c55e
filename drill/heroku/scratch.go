package heroku

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	heroku "github.com/heroku/heroku-go/v6"

	"github.com/restore-drill/restore-drill/drill"
)

// CreateScratch provisions a heroku-postgresql add-on named after the drill
// (restore-drill-<drillid>, attached as DRILL_<DRILLID>) on the sandbox app,
// or on the app itself when there is none, and waits until the add-on is
// provisioned and its database ready. When the add-on was created but never
// became ready, the returned Database still names it, so that the drill's
// undo destroys it.
func (p *Provider) CreateScratch(ctx context.Context, app, drillID string, progress drill.ProgressFunc) (drill.Database, error) {
	if !drill.ValidDrillID(drillID) {
		return drill.Database{}, drill.Errorf(drill.EINVALID, "%q is not a drill id", clip(drillID))
	}
	if progress == nil {
		progress = func(drill.Progress) {}
	}
	plan := p.cfg.ScratchPlan
	if plan == "" {
		var err error
		if plan, err = p.productionPlan(ctx, app); err != nil {
			return drill.Database{}, err
		}
	}
	plan = strings.TrimPrefix(plan, "heroku-postgresql:")
	if advancedTier(plan) {
		if p.cfg.ScratchPlan != "" {
			return drill.Database{}, drill.Errorf(drill.ECONFIG, "DRILL_SCRATCH_PLAN=%s is a Heroku Postgres Advanced-tier plan, which restore-drill does not support: use a Standard or Essential plan", clip(p.cfg.ScratchPlan))
		}
		return drill.Database{}, tierRefusal(app, plan)
	}
	billing := app
	if p.cfg.SandboxApp != "" && !drill.IsEmergency(ctx) {
		// A drill's scratch database lives on the sandbox; an emergency
		// restore's becomes production, so it lives on the app.
		billing = p.cfg.SandboxApp
	}
	body := struct {
		Plan       string `json:"plan"`
		Name       string `json:"name"`
		Confirm    string `json:"confirm"`
		Attachment struct {
			Name string `json:"name"`
		} `json:"attachment"`
	}{Plan: "heroku-postgresql:" + plan, Name: scratchAddonName(drillID), Confirm: billing}
	body.Attachment.Name = scratchAttachment(drillID)
	progress(drill.Progress{Message: fmt.Sprintf("creating add-on %s (heroku-postgresql:%s) on %s", body.Name, plan, billing)})
	var addon heroku.AddOn
	if err := p.svc.Post(ctx, &addon, appPath(billing)+"/addons", body); err != nil {
		what := fmt.Sprintf("create a heroku-postgresql:%s database on %s", plan, billing)
		return drill.Database{}, p.interpret(err, op{what: what, notFound: appNotFound(billing)})
	}
	db := drill.Database{ID: addon.ID, Name: body.Attachment.Name, DrillID: drillID}
	if addon.Name != body.Name {
		// Heroku named it otherwise: the tag is lost, so nothing may ever
		// destroy it automatically. Say so rather than leave it unnoticed.
		return drill.Database{}, drill.Errorf(drill.EFAILED, "Heroku created add-on %s instead of %s: destroy it by hand with `heroku addons:destroy %s --app %s`", addon.Name, body.Name, addon.Name, billing)
	}
	if err := p.waitReady(ctx, billing, addon, progress); err != nil {
		return db, err
	}
	return db, nil
}

// productionPlan is the plan of the app's DATABASE add-on: as the drill's
// preflight just read it (Describe), or read now.
func (p *Provider) productionPlan(ctx context.Context, app string) (string, error) {
	p.mu.Lock()
	plan, ok := p.plans[app]
	p.mu.Unlock()
	if ok {
		return plan, nil
	}
	att, _, err := p.serving(ctx, app)
	if err != nil {
		return "", err
	}
	a, err := p.addon(ctx, att.Addon.ID)
	if err != nil {
		return "", err
	}
	return a.Plan.Name, nil
}

// waitReady polls the add-on until it is provisioned, then the data API's
// wait_status until the database no longer waits (a 404 there means it is
// still being provisioned).
func (p *Provider) waitReady(ctx context.Context, billing string, addon heroku.AddOn, progress drill.ProgressFunc) error {
	wctx, cancel := context.WithTimeout(ctx, p.cfg.ProvisionTimeout)
	defer cancel()
	timedOut := func(err error) error {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return drill.Errorf(drill.EFAILED, "scratch database %s was not ready after %s: Heroku may be slow; the drill destroys it", addon.Name, p.cfg.ProvisionTimeout)
		}
		return err
	}
	w := p.newPoller()
	state := addon.State
	for state != "provisioned" {
		switch state {
		case "deprovisioned", "deprovisioning":
			return drill.Errorf(drill.EFAILED, "Heroku gave up provisioning scratch database %s (state %s)%s", addon.Name, state, provisionMessage(addon))
		}
		progress(drill.Progress{Message: fmt.Sprintf("add-on %s is %s", addon.Name, state)})
		if err := w.wait(wctx); err != nil {
			return timedOut(err)
		}
		a, err := p.svc.AddOnInfoByApp(wctx, billing, addon.ID)
		if err != nil {
			return timedOut(p.interpret(err, op{what: "read scratch add-on " + addon.Name}))
		}
		addon, state = *a, a.State
	}
	w = p.newPoller()
	for {
		ws, err := p.data.waitStatus(wctx, addon.ID)
		var herr heroku.Error
		switch {
		case errors.As(err, &herr) && herr.StatusCode == http.StatusNotFound:
			progress(drill.Progress{Message: "waiting for the database to be provisioned"})
		case err != nil:
			return timedOut(p.interpret(err, op{what: "read the wait status of " + addon.Name}))
		case ws.Error:
			return drill.Errorf(drill.EFAILED, "scratch database %s failed to become ready: %s", addon.Name, sentence(p.redactor.Redact(ws.Message)))
		case !ws.Waiting:
			progress(drill.Progress{Message: fmt.Sprintf("%s is ready", addon.Name)})
			return nil
		default:
			progress(drill.Progress{Message: "database is " + sentence(ws.Message)})
		}
		if err := w.wait(wctx); err != nil {
			return timedOut(err)
		}
	}
}

func provisionMessage(a heroku.AddOn) string {
	if a.ProvisionMessage == "" {
		return ""
	}
	return ": " + a.ProvisionMessage
}

// ownedAddon reads the add-on behind db and checks the drill may change it:
// its name carries db's drill id, and it is no app's DATABASE.
func (p *Provider) ownedAddon(ctx context.Context, db drill.Database) (*heroku.AddOn, error) {
	a, _, err := p.ownedAddonAttachments(ctx, db)
	return a, err
}

// ownedAddonAttachments is ownedAddon that also returns the add-on's
// attachments as it read them.
func (p *Provider) ownedAddonAttachments(ctx context.Context, db drill.Database) (*heroku.AddOn, []heroku.AddOnAttachment, error) {
	if db.ID == "" || !drill.ValidDrillID(db.DrillID) {
		return nil, nil, drill.Errorf(drill.EREFUSED, "refusing to touch database %s: no drill created it", db.Name)
	}
	a, err := p.addon(ctx, db.ID)
	if err != nil {
		return nil, nil, err
	}
	if drillIDOf(a.Name) != db.DrillID {
		return nil, nil, drill.Errorf(drill.EREFUSED, "refusing to touch add-on %s: its name does not carry drill %s, so the drill did not create it", a.Name, db.DrillID)
	}
	atts, err := p.addonAttachments(ctx, a.ID)
	if err != nil {
		return nil, nil, err
	}
	for _, att := range atts {
		if att.Name == "DATABASE" {
			return nil, nil, drill.Errorf(drill.EREFUSED, "refusing to touch %s: it is the DATABASE of %s now; promote the original back first", db.Name, att.App.Name)
		}
	}
	return a, atts, nil
}

// DestroyScratch destroys a scratch add-on the drill created. One that is
// already gone is fine.
func (p *Provider) DestroyScratch(ctx context.Context, db drill.Database) error {
	a, err := p.ownedAddon(ctx, db)
	if drill.ErrorCode(err) == drill.ENOTFOUND {
		return nil
	}
	if err != nil {
		return err
	}
	err = p.svc.Delete(ctx, nil, appPath(a.App.Name)+"/addons/"+url.PathEscape(a.ID))
	var herr heroku.Error
	if errors.As(err, &herr) && herr.StatusCode == http.StatusNotFound {
		return nil
	}
	return p.interpret(err, op{what: "destroy scratch database " + a.Name})
}

var _ drill.ScratchFinder = (*Provider)(nil)

// FindScratch finds drill drillID's scratch add-on by its name, which
// carries the drill id, for undoing a creation whose add-on id was never
// journaled (the process died while it provisioned).
func (p *Provider) FindScratch(ctx context.Context, app, drillID string) (drill.Database, bool, error) {
	a, err := p.svc.AddOnInfo(ctx, scratchAddonName(drillID))
	var herr heroku.Error
	if errors.As(err, &herr) && herr.StatusCode == http.StatusNotFound {
		return drill.Database{}, false, nil
	}
	if err != nil {
		return drill.Database{}, false, p.interpret(err, op{what: "look for the scratch database of drill " + drillID})
	}
	return ref(a.ID, a.Name), true, nil
}
