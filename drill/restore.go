package drill

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Into says where an emergency restore puts the backup.
type Into string

const (
	// IntoNew restores into a new database and promotes it after a second
	// confirmation; the damaged database is kept for forensics.
	IntoNew Into = "new"
	// IntoProduction restores in place onto the database that serves the
	// app, in maintenance.
	IntoProduction Into = "production"
)

// ParseInto reads "new" or "production".
func ParseInto(s string) (Into, error) {
	switch Into(s) {
	case IntoNew, IntoProduction:
		return Into(s), nil
	}
	return "", Errorf(EINVALID, "%q is not a restore target: use --into new or --into production", clip(s))
}

// RestoreOptions are the inputs of an emergency restore.
type RestoreOptions struct {
	App string
	// Backup is an id or latest; an emergency restore never captures the
	// backup it restores.
	Backup BackupRef
	Into   Into
	// NoSafetyBackup skips the backup of production taken first; the plan
	// then says loudly that the restore cannot be undone.
	NoSafetyBackup bool
	// Force lets the restore run through a freeze.
	Force     bool
	DrillID   string
	Requester string
}

// ModeRestore is the mode an emergency restore's report carries.
const ModeRestore Mode = "restore"

// Emergency restore steps.
const (
	StepPlan           = "plan"
	StepSafetyBackup   = "safety_backup"
	StepRestoreInPlace = "restore_in_place"
	StepAdopt          = "adopt"
)

// EmergencyProvider is a provider that can restore production itself. It
// is the only place the tool writes onto a database no drill created.
type EmergencyProvider interface {
	Provider
	// RestoreProduction replaces the contents of the database that serves
	// app with backup b. proof is the typed confirmation, which must read
	// "APP BACKUPID"; the provider checks it again and refuses without it.
	// An EREFUSED error means nothing was changed.
	RestoreProduction(ctx context.Context, app string, b Backup, proof Confirmation, progress ProgressFunc) (RestoreResult, error)
	// Adopt makes db, created by a drill and promoted to serve app, a
	// permanent database of the app: it loses its drill tag, so no drill
	// will ever destroy it. It returns db as it is now named.
	Adopt(ctx context.Context, app string, db Database) (Database, error)
	// Lookup returns db as the platform names it now.
	Lookup(ctx context.Context, db Database) (Database, error)
	// RemoveHint says how a person removes a database kept for forensics.
	RemoveHint(app string, db Database) string
}

// ProductionProof is the text an in-place restore must be confirmed with.
func ProductionProof(app, backupID string) string { return app + " " + backupID }

// Restore performs an emergency restore: the plan first, a typed
// confirmation, a safety backup, then the restore into a new database
// (promoted after a second confirmation) or in place onto production. It
// runs on the same steps, undo stack and events as a drill. The safety
// backup is never undone.
func (r *Runner) Restore(ctx context.Context, opts RestoreOptions) (*Report, error) {
	if opts.Into == "" {
		opts.Into = IntoNew
	}
	if opts.Backup.Kind == "" || opts.Backup.Kind == BackupFresh {
		return nil, Errorf(EINVALID, "an emergency restore needs the backup to restore: give an id such as b002, or latest")
	}
	d := r.newRun(Options{App: opts.App, Mode: ModeRestore, Backup: opts.Backup, DrillID: opts.DrillID, Requester: opts.Requester})
	d.report.Into = opts.Into
	d.record.Force = opts.Force
	d.restoreOpts = &opts
	d.countCalls(0)
	ctx, err := d.begin(WithEmergency(WithDrill(ctx, d.opts.DrillID)))
	return d.executeRestore(ctx, err)
}

// executeRestore runs an emergency restore begun (or not: err says why).
func (d *run) executeRestore(ctx context.Context, err error) (*Report, error) {
	opts := *d.restoreOpts
	d.beforeFinish = func(err error) { d.report.ProductionState = d.productionState(ctx, err) }
	return d.execute(ctx, err, func(ctx context.Context) error { return d.emergency(ctx, opts) })
}

// emergency runs an emergency restore's steps; continued after parking,
// it starts at the confirmation it waited for (resumeAt).
func (d *run) emergency(ctx context.Context, opts RestoreOptions) error {
	ep, ok := d.r.Provider.(EmergencyProvider)
	if !ok {
		return Errorf(ECONFIG, "the %s provider cannot perform emergency restores", d.r.Provider.Name())
	}
	if d.resumeAt != "" {
		if err := d.recheck(ctx); err != nil {
			return err
		}
	}
	if d.resumeAt == StepPromote {
		return d.restoreIntoNew(ctx, ep)
	}
	var plan []string
	if d.resumeAt == "" {
		if err := d.step(ctx, StepPreflight, func(ctx context.Context, _ ProgressFunc) error { return d.inspect(ctx) }); err != nil {
			return err
		}
		d.setBackup(false)
		plan = d.restorePlan(ctx, opts)
		if err := d.step(ctx, StepPlan, func(ctx context.Context, _ ProgressFunc) error {
			for _, l := range plan {
				d.emit(Event{Step: StepPlan, Kind: DrillNote, Message: l})
			}
			return nil
		}); err != nil {
			return err
		}
	}
	expect, action := d.opts.App, fmt.Sprintf("restore backup %s of %s into a new database", d.backup.ID, d.opts.App)
	if opts.Into == IntoProduction {
		expect = ProductionProof(d.opts.App, d.backup.ID)
		action = fmt.Sprintf("restore backup %s IN PLACE onto %s, the database serving %s", d.backup.ID, d.app.Database.Name, d.opts.App)
	}
	if err := d.confirm(ctx, StepRestore, action, expect, plan); err != nil {
		return err
	}
	if opts.NoSafetyBackup {
		d.skip(StepSafetyBackup, "--no-safety-backup: THIS RESTORE CANNOT BE UNDONE")
	} else if err := d.step(ctx, StepSafetyBackup, func(ctx context.Context, progress ProgressFunc) error {
		c, err := d.r.Provider.Capture(ctx, d.opts.App, true, progress)
		if err != nil {
			return err
		}
		d.safety = &c.Backup
		d.report.SafetyBackup = &ReportBackup{ID: c.Backup.ID, SizeBytes: c.Backup.SizeBytes, CreatedAt: c.Backup.CreatedAt, Fresh: true}
		d.report.Rollback = fmt.Sprintf("restore-drill restore %s %s --into %s", d.opts.App, c.Backup.ID, opts.Into)
		return nil
	}); err != nil {
		return err
	}
	if opts.Into == IntoProduction {
		return d.restoreInPlace(ctx, ep)
	}
	return d.restoreIntoNew(ctx, ep)
}

// restorePlan states, before anything changes, what the restore will do.
func (d *run) restorePlan(ctx context.Context, opts RestoreOptions) []string {
	b := d.backup
	lines := []string{
		fmt.Sprintf("Backup %s of %s: taken %s, %s old, %s.", b.ID, d.opts.App, b.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"), RoundDuration(d.report.StartedAt.Sub(b.CreatedAt)), HumanBytes(b.SizeBytes)),
	}
	if b.Fingerprint != nil {
		lines = append(lines, fmt.Sprintf("Backup %s carries the fingerprint of what it holds: the restore will be checked exactly.", b.ID))
	} else {
		lines = append(lines, fmt.Sprintf("Backup %s carries no fingerprint: the restore is checked for errors and its tables counted.", b.ID))
	}
	if opts.NoSafetyBackup {
		lines = append(lines, "*NO SAFETY BACKUP* (--no-safety-backup): the current data of "+d.app.Database.Name+" cannot be restored afterwards.")
	} else {
		lines = append(lines, fmt.Sprintf("First, a safety backup of %s, so this restore can be undone.", d.app.Database.Name))
	}
	switch opts.Into {
	case IntoProduction:
		lines = append(lines,
			fmt.Sprintf("Maintenance on for %s; the contents of %s are REPLACED by %s in place; maintenance back off.", d.opts.App, d.app.Database.Name, b.ID),
			fmt.Sprintf("To proceed, type `%s`.", ProductionProof(d.opts.App, b.ID)))
	default:
		lines = append(lines,
			fmt.Sprintf("%s is restored into a new database, checked, and promoted to serve %s after a second confirmation (the app restarts).", b.ID, d.opts.App),
			fmt.Sprintf("The current database %s is kept, untouched, for forensics.", d.app.Database.Name))
	}
	past := d.pastDrills(ctx)
	lines = append(lines, verifiedLine(b, past), estimateLine(d.app.SizeBytes, !opts.NoSafetyBackup, past))
	return lines
}

// pastDrills reads the app's recent drills, if a history is at hand.
func (d *run) pastDrills(ctx context.Context) []*Report {
	if d.r.History == nil {
		return nil
	}
	past, err := d.r.History.History(ctx, d.opts.App, 50)
	if err != nil {
		d.logger.Warn("cannot read the drill history", "err", err)
		return nil
	}
	return past
}

// verifiedLine says whether a drill ever restored backup b and passed.
func verifiedLine(b Backup, past []*Report) string {
	for _, r := range past {
		if r.Result == Passed && r.Mode != ModeRestore && r.Backup != nil && r.Backup.ID == b.ID {
			return fmt.Sprintf("Backup %s was verified by drill %s on %s.", b.ID, r.DrillID, r.StartedAt.UTC().Format("2006-01-02 15:04 UTC"))
		}
	}
	for _, r := range past {
		if r.Result == Passed && r.Mode != ModeRestore {
			return fmt.Sprintf("Backup %s itself was never drill-verified; the last passing drill of this app was %s on %s.", b.ID, r.DrillID, r.StartedAt.UTC().Format("2006-01-02 15:04 UTC"))
		}
	}
	return fmt.Sprintf("Backup %s was never drill-verified, and no drill of this app has passed on record.", b.ID)
}

// estimateLine estimates the restore's duration from the app's past
// drills' restore times when there are some, else from the size.
func estimateLine(size int64, safety bool, past []*Report) string {
	var times []float64
	for _, r := range past {
		if r.Result == Passed && r.RestoreSeconds > 0 {
			times = append(times, r.RestoreSeconds)
		}
	}
	if len(times) == 0 {
		return fmt.Sprintf("Estimated time: %s (from the database's size; no drill of this app on record).", estimate(size, safety))
	}
	slices.Sort(times)
	median := time.Duration(times[len(times)/2] * float64(time.Second))
	total := 2*median + estimateFixed
	if !safety {
		total = median + estimateFixed
	}
	return fmt.Sprintf("Estimated time: %s (the restore took %s in the median of the last %s).", total.Round(time.Second), median.Round(time.Second), Plural(len(times), "drill", "drills"))
}

func (d *run) restoreIntoNew(ctx context.Context, ep EmergencyProvider) error {
	kept := d.app.Database
	var plan []string
	if d.resumeAt != StepPromote {
		if err := d.provision(ctx); err != nil {
			return err
		}
		if err := d.restore(ctx); err != nil {
			return err
		}
		if err := d.checkRestored(ctx, d.scratch); err != nil {
			return err
		}
		plan = []string{d.report.Verification}
		plan = append(plan, d.freshness(ctx, d.scratch)...)
		plan = append(plan, fmt.Sprintf("%s stays for forensics; %s will serve %s.", kept.Name, d.scratch.Name, d.opts.App))
	}
	action := fmt.Sprintf("promote %s (restored from %s) to serve %s", d.scratch.Name, d.backup.ID, d.opts.App)
	if err := d.confirm(ctx, StepPromote, action, d.opts.App, plan); err != nil {
		return err
	}
	back, err := d.promote(ctx)
	if err != nil {
		return err
	}
	if err := d.step(ctx, StepCheckPromoted, func(ctx context.Context, _ ProgressFunc) error {
		_, err := d.servedByScratch(ctx)
		return err
	}); err != nil {
		return err
	}
	return d.step(ctx, StepAdopt, func(ctx context.Context, _ ProgressFunc) error {
		// The restored database serves the app, checked, as confirmed: from
		// here the restore goes forward. Its undo becomes finishing the
		// adoption, journaled first, so a failure, a cancel or a crash from
		// now on ends with the restored database serving as the app's own,
		// never with a promote undone half-way or the restored database
		// destroyed. (The records it supersedes are dropped after; a
		// resume that finds both runs the adoption and drops the rest.)
		fwd, err := d.push(ctx, UndoRecord{Step: StepAdopt, Kind: UndoAdopt, Database: d.scratch})
		if err != nil {
			return err
		}
		d.keepState(ctx, fwd)
		d.undo.take(back)
		d.done(ctx, back)
		if e := d.undo.find(UndoDestroyScratch); e != nil {
			d.undo.take(e)
			d.done(ctx, e)
		}
		db, err := ep.Adopt(ctx, d.opts.App, d.scratch)
		if err != nil {
			return err
		}
		d.undo.take(fwd)
		d.done(ctx, fwd)
		d.report.Scratch = nil
		d.report.NowServing = db.Name
		return d.lookupKept(ctx, ep, kept)
	})
}

// lookupKept records the name the database an emergency restore replaced
// carries now, and how to remove it.
func (d *run) lookupKept(ctx context.Context, ep EmergencyProvider, kept Database) error {
	keptNow, err := ep.Lookup(ctx, kept)
	if err != nil {
		return err
	}
	d.report.KeptDatabase = keptNow.Name
	d.report.RemoveKept = ep.RemoveHint(d.opts.App, keptNow)
	return nil
}

func (d *run) restoreInPlace(ctx context.Context, ep EmergencyProvider) error {
	maintenance, err := d.maintenance(ctx)
	if err != nil {
		return err
	}
	proof := d.report.Confirmations[len(d.report.Confirmations)-1]
	// Once the restore starts, production's contents are in play. Lifting
	// maintenance over a half-restored database would serve it, so the undo
	// from here on is a rollback to the safety backup (journaled first),
	// and only then maintenance off. Without a safety backup there is
	// nothing to roll back to: maintenance stays on after a failure.
	var rollback *undoEntry
	if d.safety != nil {
		safety := *d.safety
		if rollback, err = d.push(ctx, UndoRecord{Step: StepRestoreInPlace, Kind: UndoRollbackRestore, Backup: &safety, Proof: &proof}); err != nil {
			return err
		}
	} else {
		d.undo.take(maintenance)
		d.done(ctx, maintenance)
	}
	start := d.now()
	err = d.step(ctx, StepRestoreInPlace, func(ctx context.Context, progress ProgressFunc) error {
		res, err := ep.RestoreProduction(ctx, d.opts.App, d.backup, proof, progress)
		for _, w := range res.Warnings {
			d.note("Restore warning: " + w)
		}
		return err
	})
	d.report.RestoreSeconds = d.now().Sub(start).Seconds()
	if ErrorCode(err) == EREFUSED {
		// Refused before anything changed: there is nothing to roll back
		// (the rollback would be refused alike), and maintenance goes off.
		if rollback != nil {
			d.undo.take(rollback)
			d.done(ctx, rollback)
		} else if merr := d.r.Provider.SetMaintenance(ctx, d.opts.App, d.app.Maintenance); merr != nil {
			d.report.UndoFailed = append(d.report.UndoFailed, StepMaintenanceOn)
			return fmt.Errorf("%w; and maintenance could not be set back: %v", err, merr)
		}
		return err
	}
	if err != nil {
		return err
	}
	if err := d.checkRestored(ctx, d.app.Database); err != nil {
		return err
	}
	if rollback != nil {
		d.undo.take(rollback)
		d.done(ctx, rollback)
	}
	if d.safety != nil {
		if err := d.runUndoAsStep(ctx, StepMaintenanceOff, maintenance); err != nil {
			return err
		}
	} else if err := d.step(ctx, StepMaintenanceOff, func(ctx context.Context, _ ProgressFunc) error {
		return d.r.Provider.SetMaintenance(ctx, d.opts.App, d.app.Maintenance)
	}); err != nil {
		return err
	}
	d.report.NowServing = d.app.Database.Name
	return nil
}

// freshness reads how recent db's data is, for the report and for the
// people about to let it serve; it returns the lines to show them.
func (d *run) freshness(ctx context.Context, db Database) []string {
	f, ok := d.r.Provider.(Freshener)
	if !ok {
		return nil
	}
	fr, err := f.Freshness(ctx, db)
	if err != nil {
		d.logger.Warn("cannot read how recent the restored data is", "err", d.redact(err.Error()))
		return nil
	}
	d.report.Freshness = fr
	if len(fr) == 0 {
		return []string{"The restored data has no indexed timestamp column to tell how recent it is."}
	}
	lines := []string{"Newest restored data:"}
	for _, x := range fr {
		lines = append(lines, "  "+x.Line(d.now(), "now"))
	}
	return lines
}

// checkRestored fingerprints db and, when the backup carries its
// fingerprint, compares exactly; otherwise it reports the restored tables.
func (d *run) checkRestored(ctx context.Context, db Database) error {
	return d.step(ctx, StepVerify, func(ctx context.Context, _ ProgressFunc) error {
		fp, err := d.r.Provider.Fingerprint(ctx, db)
		if err != nil {
			return err
		}
		if d.backup.Fingerprint == nil {
			for _, t := range fp.Tables {
				d.report.Tables = append(d.report.Tables, TableResult{Schema: t.Schema, Name: t.Name, SourceRows: -1, RestoredRows: t.Rows, RestoredHash: t.Hash, Match: true})
			}
			d.report.Verification = Plural(len(fp.Tables), "table", "tables") + " restored without errors (the backup carries no fingerprint to compare with)"
			return nil
		}
		c := Compare(*d.backup.Fingerprint, fp, true)
		d.report.Exact, d.report.Tables = true, c.Tables
		d.recordComparison(c)
		d.report.Verification = c.Summary()
		if !c.OK() {
			return Errorf(EFAILED, "the restored data does not match backup %s: %s", d.backup.ID, c.Summary())
		}
		return nil
	})
}

// productionState says what serves the app now, whatever happened, so the
// thread never leaves people guessing.
func (d *run) productionState(ctx context.Context, err error) string {
	serving, serr := d.r.Provider.Serving(context.WithoutCancel(ctx), d.opts.App)
	if serr != nil {
		return fmt.Sprintf("UNKNOWN: cannot tell which database serves %s (%s); check by hand", d.opts.App, ErrorMessage(serr))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s is served by %s", d.opts.App, serving.Name)
	if d.report.Into == IntoNew && d.scratch.ID != "" && serving.ID == d.scratch.ID {
		// The restored database serves the app, whatever failed after the
		// promote: say so, with the database it replaced.
		d.report.NowServing, d.report.Scratch = serving.Name, nil
		if ep, ok := d.r.Provider.(EmergencyProvider); ok && d.report.KeptDatabase == "" {
			if lerr := d.lookupKept(context.WithoutCancel(ctx), ep, d.app.Database); lerr != nil {
				d.report.KeptDatabase = d.app.Database.Name
			}
		}
		fmt.Fprintf(&b, ", restored from %s; the previous database is kept as %s", d.backup.ID, d.report.KeptDatabase)
		switch {
		case slices.Contains(d.report.UndoFailed, StepAdopt):
			fmt.Fprintf(&b, "; making it the app's own database FAILED, so it is still marked as drill %s's scratch database: rename it by hand", d.opts.DrillID)
		case len(d.report.UndoFailed) > 0:
			fmt.Fprintf(&b, "; undoing %s FAILED, so act by hand", strings.Join(d.report.UndoFailed, ", "))
		}
		if err != nil && d.report.Rollback != "" {
			fmt.Fprintf(&b, "; to roll back: `%s`", d.report.Rollback)
		}
		return b.String() + "."
	}
	touched := d.report.Into == IntoProduction && hasStep(d.report, StepRestoreInPlace)
	restored := touched && hasStepStatus(d.report, StepRestoreInPlace, StatusSucceeded) && hasStepStatus(d.report, StepVerify, StatusSucceeded)
	switch {
	case err != nil && restored:
		// The restore and its check passed; what failed came after (turning
		// maintenance off): say that, not "partly restored".
		fmt.Fprintf(&b, ", its contents replaced by %s", d.backup.ID)
		if app, derr := d.r.Provider.Describe(context.WithoutCancel(ctx), d.opts.App); derr == nil && app.Maintenance {
			fmt.Fprintf(&b, "; it is still IN MAINTENANCE: turn maintenance off by hand")
		}
	case err == nil:
		fmt.Fprintf(&b, ", its contents replaced by %s", d.backup.ID)
	case touched && slices.Contains(d.report.Undone, StepRestoreInPlace):
		fmt.Fprintf(&b, ", rolled back to the safety backup %s: its data is as it was before this restore", d.report.SafetyBackup.ID)
	case touched && d.report.SafetyBackup != nil:
		fmt.Fprintf(&b, ", IN MAINTENANCE, whose contents are PARTLY RESTORED and must not be trusted: restore the safety backup with `%s --confirm \"%s\"`, then turn maintenance off",
			strings.Replace(d.report.Rollback, "--into new", "--into production", 1), ProductionProof(d.opts.App, d.report.SafetyBackup.ID))
	case touched:
		fmt.Fprintf(&b, ", IN MAINTENANCE, whose contents are PARTLY RESTORED and must not be trusted (no safety backup was taken): restore a backup in place with `restore-drill restore %s ID --into production`, then turn maintenance off", d.opts.App)
	case len(d.report.UndoFailed) > 0:
		fmt.Fprintf(&b, "; undoing %s FAILED, so act by hand", strings.Join(d.report.UndoFailed, ", "))
	default:
		fmt.Fprintf(&b, ", unchanged by this restore")
	}
	return b.String() + "."
}

func hasStep(r *Report, name string) bool {
	return slices.ContainsFunc(r.Steps, func(s StepRecord) bool { return s.Name == name && s.Status != StatusSkipped })
}

func hasStepStatus(r *Report, name string, status StepStatus) bool {
	for _, s := range r.Steps {
		if s.Name == name && s.Status == status {
			return true
		}
	}
	return false
}

// Capture takes a backup of app now, as an operator does before a risky
// migration, and returns it.
func (r *Runner) Capture(ctx context.Context, app string) (Backup, error) {
	d := r.newRun(Options{App: app, Mode: ModeRestore})
	var b Backup
	err := d.step(ctx, StepCapture, func(ctx context.Context, progress ProgressFunc) error {
		if err := r.Provider.CheckAppName(app); err != nil {
			return err
		}
		if _, err := r.Provider.Describe(ctx, app); err != nil {
			return err
		}
		c, err := r.Provider.Capture(ctx, app, true, progress)
		b = c.Backup
		return err
	})
	return b, err
}
