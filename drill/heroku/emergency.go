package heroku

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	heroku "github.com/heroku/heroku-go/v6"

	"github.com/restore-drill/restore-drill/drill"
)

var _ drill.EmergencyProvider = (*Provider)(nil)

// RestoreProduction restores backup b onto the add-on behind the app's
// DATABASE, in place. It is the only call that writes onto a database no
// drill created, so it needs the typed "APP BACKUPID" from a named person
// and the app in maintenance, and refuses before any call that changes
// anything otherwise.
func (p *Provider) RestoreProduction(ctx context.Context, app string, b drill.Backup, proof drill.Confirmation, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	if want := drill.ProductionProof(app, b.ID); strings.TrimSpace(proof.Typed) != want || proof.User == "" {
		return drill.RestoreResult{}, drill.Errorf(drill.EREFUSED, "refusing to restore onto the DATABASE of %s in place: it needs a confirmation typed as %q by a named person", app, want)
	}
	a, err := p.appInfo(ctx, app)
	if err != nil {
		return drill.RestoreResult{}, err
	}
	if !a.Maintenance {
		return drill.RestoreResult{}, drill.Errorf(drill.EREFUSED, "refusing to restore onto the DATABASE of %s in place while it is not in maintenance", app)
	}
	att, _, err := p.serving(ctx, app)
	if err != nil {
		return drill.RestoreResult{}, err
	}
	addon, err := p.addon(ctx, att.Addon.ID)
	if err != nil {
		return drill.RestoreResult{}, err
	}
	if info, err := p.data.database(ctx, addon.ID); err == nil && info.Following != nil && *info.Following != "" {
		return drill.RestoreResult{}, drill.Errorf(drill.EREFUSED, "the DATABASE of %s is a read-only follower: unfollow it (`heroku pg:unfollow`) or restore into a new database", app)
	}
	if err := p.settleRestores(ctx, addon.App.Name, att.Name); err != nil {
		return drill.RestoreResult{}, err
	}
	return p.restoreInto(ctx, b, addon, "DATABASE of "+app, progress)
}

// settleRestores cancels the restores still running onto the attachment
// name of billing's database, and waits until they have stopped: one left
// by a process that died while it watched (its rollback is this restore),
// or by someone else. Two restores writing one database would leave a mix
// of both.
func (p *Provider) settleRestores(ctx context.Context, billing, name string) error {
	list, err := p.data.transfers(ctx, billing)
	if err != nil {
		return p.interpret(err, op{what: "list the transfers of " + billing})
	}
	for _, t := range list {
		if t.ToType != "pg_restore" || t.ToName != name || t.Finished() {
			continue
		}
		p.cfg.Logger.Warn("a restore is still running onto the database: cancelling it first", "transfer", t.Name(), "app", billing)
		if !p.stopTransfer(ctx, billing, t) {
			return drill.Errorf(drill.EFAILED, "restore %s onto %s of %s is still running on Heroku and did not stop when cancelled: wait for it (`heroku pg:backups:info %s --app %s`), then try again", t.Name(), name, billing, t.Name(), billing)
		}
	}
	return nil
}

// Adopt renames a restored scratch add-on that now serves app, so that its
// name no longer carries the drill's id: no drill will ever destroy it, and
// later drills accept it as the app's own database. The connection pooler
// must serve it too (the promote moved it; a pooler left behind is moved
// now), and it gets the DATABASE_URL backup schedule the original had.
func (p *Provider) Adopt(ctx context.Context, app string, db drill.Database) (drill.Database, error) {
	att, atts, err := p.serving(ctx, app)
	if err != nil {
		return drill.Database{}, err
	}
	if att.Addon.ID != db.ID {
		return drill.Database{}, drill.Errorf(drill.EREFUSED, "refusing to adopt %s: it does not serve %s", db.Name, app)
	}
	p.mu.Lock()
	original, known := p.originals[app]
	p.mu.Unlock()
	leavable := func(a heroku.AddOnAttachment) bool { return known && a.Addon.ID == original.ID }
	if pl, ok := pooler(atts); ok && pl.Addon.ID != db.ID {
		if _, err := p.movePooler(ctx, app, atts, "", db, leavable); err != nil {
			return drill.Database{}, err
		}
		if err := p.checkMoved(ctx, app, db, leavable(pl)); err != nil {
			return drill.Database{}, err
		}
	}
	addon, err := p.addon(ctx, db.ID)
	if err != nil {
		return drill.Database{}, err
	}
	name := fmt.Sprintf("%s-restored-%s", app, db.DrillID)
	var renamed heroku.AddOn
	err = p.svc.Patch(ctx, &renamed, appPath(addon.App.Name)+"/addons/"+url.PathEscape(addon.ID), struct {
		Name string `json:"name"`
	}{name})
	if err != nil {
		return drill.Database{}, p.interpret(err, op{what: fmt.Sprintf("rename add-on %s to %s", addon.Name, name)})
	}
	// Backup schedules belong to a database, not to the app: the restored
	// one would take no backups. Give it the DATABASE_URL schedule the
	// original had (schedules of other names back up other attachments).
	if known && original.ID != db.ID {
		scheds, err := p.schedules(ctx, app, original.ID)
		if err != nil {
			return drill.Database{}, err
		}
		for _, sc := range scheds {
			if err := p.data.setSchedule(ctx, db.ID, sc, scheduleName); err != nil {
				return drill.Database{}, p.interpret(err, op{what: fmt.Sprintf("schedule daily backups of %s at %02d:00 %s", name, sc.Hour, sc.Timezone)})
			}
		}
	}
	return ref(renamed.ID, renamed.Name), nil
}

// Lookup returns the add-on behind db under its current name.
func (p *Provider) Lookup(ctx context.Context, db drill.Database) (drill.Database, error) {
	a, err := p.addon(ctx, db.ID)
	if err != nil {
		return drill.Database{}, err
	}
	return ref(a.ID, a.Name), nil
}

// RemoveHint says how to destroy a database kept for forensics.
func (p *Provider) RemoveHint(app string, db drill.Database) string {
	return fmt.Sprintf("when it is no longer needed: heroku addons:destroy %s --app %s --confirm %s", db.Name, app, app)
}
