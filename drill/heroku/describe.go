package heroku

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	heroku "github.com/heroku/heroku-go/v6"

	"github.com/restore-drill/restore-drill/drill"
)

// Describe reads the app, the add-on behind its DATABASE attachment, and its
// formation, and records that add-on as the original the promote back may
// return to.
func (p *Provider) Describe(ctx context.Context, app string) (drill.App, error) {
	a, err := p.appInfo(ctx, app)
	if err != nil {
		return drill.App{}, err
	}
	att, atts, err := p.serving(ctx, app)
	if err != nil {
		return drill.App{}, err
	}
	addon, err := p.addon(ctx, att.Addon.ID)
	if err != nil {
		return drill.App{}, err
	}
	plan, ok := strings.CutPrefix(addon.Plan.Name, "heroku-postgresql:")
	if !ok {
		return drill.App{}, drill.Errorf(drill.EINVALID, "the DATABASE of %s is add-on %s of plan %s, not Heroku Postgres: the drill only knows heroku-postgresql", app, addon.Name, addon.Plan.Name)
	}
	if advancedTier(plan) {
		return drill.App{}, tierRefusal(app, addon.Plan.Name)
	}
	db := ref(addon.ID, addon.Name)
	out := drill.App{Name: app, Database: db, Plan: plan, Maintenance: a.Maintenance}
	p.mu.Lock()
	p.plans[app] = addon.Plan.Name
	p.mu.Unlock()
	if db.DrillID != "" {
		return drill.App{}, drill.Errorf(drill.EREFUSED, "%s is served by %s, a scratch database of drill %s, not by its own database: promote the original back with `heroku pg:promote`, then run the drill", app, addon.Name, db.DrillID)
	}
	if info, err := p.data.database(ctx, addon.ID); err == nil {
		out.SizeBytes = info.NumBytes
		// Capture warns of it, as pg:backups:capture does.
		p.mu.Lock()
		p.protected[addon.ID] = info.continuousProtection()
		p.mu.Unlock()
	}
	if strings.EqualFold(a.Generation.Name, "fir") {
		out.FullModeRefusal = fmt.Sprintf("maintenance mode is not available on Fir apps, so full mode cannot run on %s: use verify mode", app)
	} else if _, pooled := pooler(atts); pooled && !poolable(p.cfg.ScratchPlan) {
		out.FullModeRefusal = fmt.Sprintf("%s has a connection pooler, which must move with DATABASE, and a scratch database of plan %s cannot carry one: set DRILL_SCRATCH_PLAN to a Standard plan or use verify mode", app, p.cfg.ScratchPlan)
	}
	forms, err := p.formation(ctx, app)
	if err != nil {
		return drill.App{}, err
	}
	var writers []string
	for _, f := range forms {
		if f.Type != "web" && f.Quantity > 0 {
			writers = append(writers, fmt.Sprintf("%s=%d", f.Type, f.Quantity))
		}
	}
	if len(writers) > 0 {
		out.Notes = append(out.Notes, fmt.Sprintf("%s keeps writing during maintenance; full mode scales them to 0 and restores them after", strings.Join(writers, ", ")))
	}
	if p.cfg.SandboxApp == "" {
		out.Notes = append(out.Notes, fmt.Sprintf("provisioning the scratch database restarts the dynos of %s (set DRILL_SANDBOX_APP to bill it to another app)", app))
	}
	p.mu.Lock()
	p.originals[app] = db
	p.mu.Unlock()
	return out, nil
}

// poolable reports whether a scratch database of plan can carry a
// connection pooler: Essential and the legacy mini and basic plans cannot.
// The empty plan is the production database's, which has one.
func poolable(plan string) bool {
	plan = strings.TrimPrefix(plan, "heroku-postgresql:")
	return !strings.HasPrefix(plan, "essential") && plan != "mini" && plan != "basic"
}

// formation lists the app's process types, sorted by type.
func (p *Provider) formation(ctx context.Context, app string) ([]heroku.Formation, error) {
	l, err := listAll[heroku.Formation](ctx, p, appPath(app)+"/formation")
	if err != nil {
		return nil, p.interpret(err, op{what: "read the formation of " + app, notFound: appNotFound(app)})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].Type < l[j].Type })
	phase := slices.ContainsFunc(l, func(f heroku.Formation) bool { return f.Type == "release" })
	p.mu.Lock()
	p.releasePhases[app] = phase
	p.mu.Unlock()
	return l, nil
}

// Serving returns the add-on behind the app's DATABASE attachment.
func (p *Provider) Serving(ctx context.Context, app string) (drill.Database, error) {
	att, _, err := p.serving(ctx, app)
	if err != nil {
		return drill.Database{}, err
	}
	return ref(att.Addon.ID, att.Addon.Name), nil
}

// Backups lists the backups (not restores or copies) of the app's DATABASE
// add-on's billing app, oldest first, and its backup schedules.
func (p *Provider) Backups(ctx context.Context, app string) (drill.BackupList, error) {
	att, _, err := p.serving(ctx, app)
	if err != nil {
		return drill.BackupList{}, err
	}
	billing := att.Addon.App.Name
	ts, err := p.data.transfers(ctx, billing)
	if err != nil {
		return drill.BackupList{}, p.interpret(err, op{what: "list the backups of " + app, notFound: appNotFound(billing)})
	}
	scheds, err := p.schedules(ctx, app, att.Addon.ID)
	if err != nil {
		return drill.BackupList{}, err
	}
	// The billing app's transfers cover all its databases: keep the
	// backups of the one that serves the app, named by any attachment it
	// has, so that "latest" never picks another database's backup.
	atts, err := p.addonAttachments(ctx, att.Addon.ID)
	if err != nil {
		return drill.BackupList{}, err
	}
	names := map[string]bool{"DATABASE": true}
	for _, a := range atts {
		names[a.Name] = true
	}
	out := drill.BackupList{App: app, Scheduling: true, Backups: []drill.Backup{}, Schedules: []drill.Schedule{}}
	for _, t := range ts {
		if t.IsBackup() && names[strings.TrimSuffix(t.FromName, "_URL")] {
			out.Backups = append(out.Backups, backupOf(billing, t))
		}
	}
	sort.SliceStable(out.Backups, func(i, j int) bool {
		a, b := out.Backups[i], out.Backups[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt)
		}
		return a.Num < b.Num
	})
	for _, s := range scheds {
		out.Schedules = append(out.Schedules, drill.Schedule{Hour: s.Hour, Timezone: s.Timezone})
	}
	return out, nil
}

// scheduleName is the name of the schedules that back up the database
// behind DATABASE: schedules are named by the config var of the attachment
// they back up (pg:backups:schedule sends schedule_name <ATTACHMENT>_URL).
const scheduleName = "DATABASE_URL"

// schedules lists the backup schedules of add-on addonID, the DATABASE of
// app, that back it up as DATABASE_URL: a database can carry schedules of
// several names, and only that one counts.
func (p *Provider) schedules(ctx context.Context, app, addonID string) ([]TransferSchedule, error) {
	all, err := p.data.schedules(ctx, addonID)
	if err != nil {
		return nil, p.tierOr(ctx, app, addonID, p.interpret(err, op{what: "list the backup schedules of " + app,
			notFound: fmt.Sprintf("the database of %s is not yet provisioned: run `heroku addons:wait --app %s`", app, app)}))
	}
	var out []TransferSchedule
	for _, s := range all {
		if s.Name == scheduleName {
			out = append(out, s)
		}
	}
	return out, nil
}

// backupOf turns a transfer into a drill backup. Source is in the CLI's
// app::ATTACHMENT notation: the app that holds the transfer, which Restore
// needs to find it again.
func backupOf(app string, t Transfer) drill.Backup {
	b := drill.Backup{
		ID: t.Name(), Num: t.Num, Status: transferStatus(t), CreatedAt: t.CreatedAt.UTC(),
		FinishedAt: t.FinishedAt.ptr(), SizeBytes: t.ProcessedBytes, Scheduled: t.Schedule != nil,
		Source: app + "::" + t.FromName, Warnings: t.Warnings,
	}
	return b
}

// transferStatus follows pg:backups:info's order of checks.
func transferStatus(t Transfer) drill.BackupStatus {
	switch {
	case t.Succeeded:
		return drill.BackupSucceeded
	case !t.CanceledAt.IsZero():
		return drill.BackupCanceled
	case !t.FinishedAt.IsZero():
		return drill.BackupFailed
	case !t.StartedAt.IsZero():
		return drill.BackupRunning
	}
	return drill.BackupPending
}

// backupApp reads the app a backup's transfer lives under from its Source.
func backupApp(b drill.Backup) (string, bool) {
	app, _, ok := strings.Cut(b.Source, "::")
	return app, ok && app != ""
}
