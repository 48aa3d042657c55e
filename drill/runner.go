package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Step names, as they appear in events and reports.
const (
	StepPreflight      = "preflight"
	StepProvision      = "provision"
	StepCanary         = "canary"
	StepMaintenanceOn  = "maintenance_on"
	StepCapture        = "capture"
	StepFingerprintSrc = "fingerprint_source"
	StepRestore        = "restore"
	StepVerify         = "verify"
	StepPromote        = "promote"
	StepCheckPromoted  = "check_promoted"
	StepPromoteBack    = "promote_back"
	StepMaintenanceOff = "maintenance_off"
	StepDestroy        = "destroy_scratch"
)

// The drift a fresh backup may show against a fingerprint it was not taken
// from (Heroku takes backups server-side): writes while it ran.
const (
	driftRows     = 1000
	driftFraction = 0.10
)

// DefaultMaxBackupAge is how old the newest backup may be before preflight
// flags it, where the platform schedules backups.
const DefaultMaxBackupAge = 26 * time.Hour

// Runner runs drills against one provider.
type Runner struct {
	Provider  Provider
	Confirmer Confirmer
	Sink      Sink
	Logger    *slog.Logger
	Redactor  *Redactor
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// MaxBackupAge: see DefaultMaxBackupAge.
	MaxBackupAge time.Duration
	// UndoTimeout bounds the undo stack's run after a failure; 15 minutes
	// when zero.
	UndoTimeout time.Duration
	// Journal, when set, records every drill durably so that a drill whose
	// process died can be undone by another (see Resume).
	Journal Journal
	// History, when set, lets plans say whether a backup was ever verified
	// by a drill and estimate times from the app's past drills.
	History History
	// Channel and ThreadTS say where a drill was asked for, for the
	// journal.
	Channel, ThreadTS string
}

// Run runs one drill and returns its report, whatever happened. The error is
// nil when the drill passed; otherwise it says why it did not (a failed
// preflight check, a failed step, a mismatch, a refused confirmation, a
// cancellation), and IsUsage tells bad input from a drill that ran and
// failed. Whatever went wrong, the undo stack has run by the time Run
// returns.
func (r *Runner) Run(ctx context.Context, opts Options) (*Report, error) {
	d := r.newRun(opts)
	d.countCalls(0)
	ctx, err := d.begin(WithDrill(ctx, d.opts.DrillID))
	return d.execute(ctx, err, d.drill)
}

// countCalls starts counting the provider's API calls, made already
// before this process took the drill.
func (d *run) countCalls(already int) {
	if counter, ok := d.r.Provider.(CallCounter); ok {
		d.counter, d.callsBefore = counter, counter.Calls()-already
	}
}

// execute runs body on a drill begun (or not: err says why), then parks
// the drill if body is waiting for a confirmation, or finishes it.
func (d *run) execute(ctx context.Context, err error, body func(context.Context) error) (*Report, error) {
	if err == nil {
		defer d.release()
		err = d.protect(ctx, body)
	}
	if err == nil {
		err = d.failedChecks()
	}
	if aw := asAwaiting(err); aw != nil {
		// A drill cancelled as it reached the confirmation ends here.
		var perr error
		if ctx.Err() != nil {
			perr = d.stopped(d.awaitStep, ctx)
		} else {
			perr = d.park(ctx, aw)
		}
		if perr == nil {
			// Parked and given up: only now may anyone answer, so that
			// an answer always finds the drill parked.
			d.release()
			if aw.Ask != nil {
				aw.Ask(context.WithoutCancel(ctx))
			}
			return d.report, err
		}
		err = perr
	}
	d.finish(ctx, err)
	return d.report, err
}

// newRun starts the record of a drill, filling in the defaults.
func (r *Runner) newRun(opts Options) *run {
	if opts.DrillID == "" {
		opts.DrillID = NewDrillID()
	}
	if opts.Mode == "" {
		opts.Mode = ModeVerify
	}
	if opts.Backup.Kind == "" {
		opts.Backup.Kind = BackupFresh
	}
	d := &run{r: r, opts: opts, logger: r.logger().With("drill", opts.DrillID, "app", opts.App), release: func() {}}
	d.report = &Report{
		DrillID: opts.DrillID, App: opts.App, Provider: r.Provider.Name(), Mode: opts.Mode,
		Requester: opts.Requester, StartedAt: d.now(),
		Tables: []TableResult{}, Steps: []StepRecord{}, Undone: []string{}, Confirmations: []Confirmation{}, Checks: []Check{},
	}
	d.record = DrillRecord{DrillID: opts.DrillID, App: opts.App, Provider: r.Provider.Name(), Mode: opts.Mode,
		Requester: opts.Requester, Channel: r.Channel, ThreadTS: r.ThreadTS, Keep: opts.Keep, StartedAt: d.report.StartedAt}
	return d
}

// begin records the drill in the journal, which makes this process its
// owner and holds the app for it. The context it returns ends if the
// journal says ownership was lost: another process may then take the drill
// over, so this one must stop at once (its undo stack still runs).
func (d *run) begin(ctx context.Context) (context.Context, error) {
	if d.r.Journal == nil {
		return ctx, nil
	}
	release, err := d.r.Journal.Begin(ctx, d.record)
	if err != nil {
		return ctx, err
	}
	return d.own(ctx, release), nil
}

// own makes this run the drill's owner until d.release, which calls
// release. The context it returns ends if the journal says ownership was
// lost.
func (d *run) own(ctx context.Context, release func()) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	stopped := make(chan struct{})
	d.journaled = true
	var once sync.Once
	d.release = func() {
		once.Do(func() {
			close(stopped)
			cancel(nil)
			release()
		})
	}
	if w, ok := d.r.Journal.(LockWatcher); ok {
		lost, notes := w.Lost(d.opts.DrillID), w.Notes(d.opts.DrillID)
		go func() {
			for {
				select {
				case <-lost:
					why := w.LostWhy(d.opts.DrillID)
					d.logger.Error("the drill's ownership in the state database ended: stopping it", "why", ErrorMessage(why))
					cancel(why)
					return
				case n := <-notes:
					d.logger.Warn(n)
					d.emit(Event{Kind: DrillNote, Message: n})
				case <-stopped:
					return
				}
			}
		}()
	}
	return ctx
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// run is one drill in progress.
type run struct {
	r      *Runner
	opts   Options
	logger *slog.Logger
	report *Report
	undo   undoStack

	counter     CallCounter
	callsBefore int
	// safety is the backup an emergency restore took first.
	safety *Backup
	// restoreOpts are an emergency restore's options.
	restoreOpts *RestoreOptions
	// awaitStep is the step whose confirmation the drill parked on.
	// resumeAt is that step when the drill is continued, and answer the
	// answer it waited for.
	awaitStep, resumeAt string
	answer              *stepAnswer
	// beforeFinish completes the report before it is journaled and
	// announced.
	beforeFinish func(err error)
	// record is what the journal keeps; journaled is true once Begin took
	// it, and release gives the drill up.
	record    DrillRecord
	journaled bool
	release   func()

	app     App
	scratch Database
	backup  Backup
	source  *Fingerprint
	exact   bool
	canary  Canary
}

func (d *run) now() time.Time {
	if d.r.Now != nil {
		return d.r.Now()
	}
	return time.Now()
}

func (d *run) redact(s string) string {
	if d.r.Redactor == nil {
		return NewRedactor().Redact(s)
	}
	return d.r.Redactor.Redact(s)
}

// describe is the people-facing text of err for the report: the message of
// a drill error, or the redacted text of anything unrecognised, so that the
// operator still learns what happened.
func (d *run) describe(err error) string {
	if ErrorCode(err) == EINTERNAL {
		return d.redact(err.Error())
	}
	return d.redact(ErrorMessage(err))
}

func (d *run) emit(e Event) {
	e.DrillID, e.App = d.opts.DrillID, d.opts.App
	if e.At.IsZero() {
		e.At = d.now()
	}
	e.Message = d.redact(e.Message)
	if d.r.Sink != nil {
		d.r.Sink.Event(e)
	}
}

func (d *run) note(msg string) {
	d.report.Warnings = append(d.report.Warnings, d.redact(msg))
	d.emit(Event{Kind: DrillNote, Message: msg})
}

// protect runs fn, turning a panic into an internal error so that the undo
// stack still runs.
func (d *run) protect(ctx context.Context, fn func(context.Context) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			d.logger.Error("drill panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = Errorf(EINTERNAL, "internal error in drill %s (a bug: the undo stack ran; please report it)", d.opts.DrillID)
		}
	}()
	return fn(ctx)
}

// step runs fn as the named step, emitting its events and recording it.
func (d *run) step(ctx context.Context, name string, fn func(ctx context.Context, progress ProgressFunc) error) error {
	if ctx.Err() != nil {
		return d.stopped(name, ctx)
	}
	start := d.now()
	d.emit(Event{Step: name, Kind: StepStarted})
	progress := func(p Progress) {
		if p.Warning {
			d.report.Warnings = append(d.report.Warnings, d.redact(p.Message))
		}
		d.emit(Event{Step: name, Kind: StepProgress, Bytes: p.Bytes, Total: p.Total, Message: p.Message})
	}
	err := d.protect(ctx, func(ctx context.Context) error { return fn(WithProgress(ctx, progress), progress) })
	if err != nil && ctx.Err() != nil && ErrorCode(err) != EREFUSED {
		err = d.stopped(name, ctx)
	}
	dur := d.now().Sub(start)
	rec := StepRecord{Name: name, Status: StatusSucceeded, Seconds: dur.Seconds()}
	if err != nil {
		rec.Status, rec.Error = StatusFailed, d.describe(err)
		d.logger.Error("step failed", "step", name, "err", d.redact(err.Error()))
		d.emit(Event{Step: name, Kind: StepFailed, Duration: dur, Message: rec.Error})
	} else {
		d.emit(Event{Step: name, Kind: StepSucceeded, Duration: dur})
	}
	d.addStep(ctx, rec)
	if err != nil {
		return fmt.Errorf("step %s: %w", name, err)
	}
	return nil
}

// addStep records a step in the report and the journal.
func (d *run) addStep(ctx context.Context, rec StepRecord) {
	d.report.Steps = append(d.report.Steps, rec)
	if d.journaled {
		if err := d.r.Journal.Step(context.WithoutCancel(ctx), d.opts.DrillID, rec); err != nil {
			d.logger.Error("cannot journal a step", "step", rec.Name, "err", err)
		}
	}
}

func (d *run) canceled(step string, cause error) error {
	return Wrap(ECANCELED, cause, "the drill was cancelled during %s", step)
}

// stopped is the error of step when ctx ended: a cancellation, unless the
// drill stopped for another reason (it lost its state database, or
// another process took it over), which it then says.
func (d *run) stopped(step string, ctx context.Context) error {
	if why := context.Cause(ctx); why != nil && !errors.Is(why, context.Canceled) && !errors.Is(why, context.DeadlineExceeded) {
		return &Error{Code: ErrorCode(why), Message: fmt.Sprintf("the drill stopped during %s: %s", step, ErrorMessage(why)), Err: errors.Unwrap(why)}
	}
	return d.canceled(step, ctx.Err())
}

func (d *run) skip(name, why string) {
	d.addStep(context.Background(), StepRecord{Name: name, Status: StatusSkipped, Note: why})
	d.emit(Event{Step: name, Kind: StepSkipped, Message: why})
}

// confirm asks for a typed confirmation and checks the text. Nothing is
// changed before it returns nil.
func (d *run) confirm(ctx context.Context, step, action, expect string, plan []string) error {
	var c Confirmation
	var err error
	switch {
	case d.answer != nil:
		// A parked drill, taken up again with the answer it waited for.
		ans := d.answer
		d.answer, d.resumeAt = nil, ""
		if ans.step != step {
			return Errorf(EINTERNAL, "drill %s was parked waiting for a confirmation of %s, not of %s", d.opts.DrillID, ans.step, step)
		}
		c, err = ans.Confirmation, ans.Err
	case d.r.Confirmer == nil:
		return Errorf(EREFUSED, "%s needs a typed confirmation and nobody can be asked: nothing was changed by it", action)
	default:
		c, err = d.r.Confirmer.Confirm(ctx, ConfirmRequest{
			DrillID: d.opts.DrillID, App: d.opts.App, Step: step, Action: action,
			Plan: plan, Expect: expect, Requester: d.opts.Requester,
		})
		if aw := asAwaiting(err); aw != nil {
			if _, ok := d.r.Journal.(Parker); ok && d.journaled {
				d.awaitStep = step
				return aw
			}
			err = Errorf(EREFUSED, "the confirmation was asked for, but this drill cannot wait for it without a journal that keeps parked drills")
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return d.stopped(step, ctx)
		}
		code := ErrorCode(err)
		if code != EREFUSED && code != ECANCELED {
			code = EREFUSED
		}
		if errors.Is(err, ErrExpired) {
			return Wrap(code, err, "%s was not confirmed: the confirmation expired, so nothing was changed by it", action)
		}
		return Wrap(code, err, "%s was not confirmed: %s", action, ErrorMessage(err))
	}
	if strings.TrimSpace(c.Typed) != expect {
		return Errorf(EREFUSED, "%s was not confirmed: %q was typed where %q was expected", action, clip(c.Typed), expect)
	}
	c.Step = step
	if c.At.IsZero() {
		c.At = d.now()
	}
	d.report.Confirmations = append(d.report.Confirmations, c)
	if d.journaled {
		if err := d.r.Journal.Confirmed(ctx, d.opts.DrillID, c); err != nil {
			d.logger.Error("cannot journal a confirmation", "err", err)
		}
	}
	d.emit(Event{Step: step, Kind: DrillConfirmed, Message: fmt.Sprintf("%s confirmed %s by typing %q", c.User, action, c.Typed)})
	return nil
}

// guardDestructive refuses to change db unless the drill created it or it is
// the production database the drill recorded at the start (for promote
// back). It is checked again by each provider against the platform.
func (d *run) guardOwned(db Database) error {
	if db.DrillID != d.opts.DrillID || db.ID == "" || db.ID == d.app.Database.ID {
		return Errorf(EREFUSED, "refusing to touch database %s: drill %s did not create it", db.Name, d.opts.DrillID)
	}
	return nil
}

// drill runs a drill's steps. A drill continued after parking (resumeAt
// names the confirmation it waited for) starts at that confirmation: what
// came before it is in the checkpoint.
func (d *run) drill(ctx context.Context) error {
	at := d.resumeAt
	fresh := d.opts.Backup.Kind == BackupFresh
	if at != "" {
		if err := d.recheck(ctx); err != nil {
			return err
		}
	}
	if at == "" {
		if err := d.preflight(ctx); err != nil {
			return err
		}
		if err := d.provision(ctx); err != nil {
			return err
		}
		if fresh {
			d.canary = Canary{DrillID: d.opts.DrillID, Token: NewDrillID()[1:] + NewDrillID()[1:], At: d.now()}
			if err := d.step(ctx, StepCanary, func(ctx context.Context, _ ProgressFunc) error {
				return d.r.Provider.WriteCanary(ctx, d.opts.App, d.canary)
			}); err != nil {
				return err
			}
		} else {
			d.skip(StepCanary, "an existing backup predates any canary this drill could write")
		}
	}
	var maintenance *undoEntry
	switch {
	case d.opts.Mode != ModeFull:
		d.skip(StepMaintenanceOn, "verify mode leaves production serving")
	case at == StepPromote:
		if maintenance = d.undo.find(UndoMaintenance); maintenance == nil {
			return Errorf(EINTERNAL, "drill %s was parked in maintenance, but its journal has no undo for it", d.opts.DrillID)
		}
	default:
		e, err := d.maintenanceOn(ctx)
		if err != nil {
			return err
		}
		maintenance = e
	}
	if at != StepPromote {
		if err := d.obtainBackup(ctx, fresh); err != nil {
			return err
		}
		if err := d.restore(ctx); err != nil {
			return err
		}
		if err := d.verify(ctx); err != nil {
			return err
		}
	}
	if d.opts.Mode == ModeFull {
		if err := d.promoteAndBack(ctx); err != nil {
			return err
		}
		if err := d.runUndoAsStep(ctx, StepMaintenanceOff, maintenance); err != nil {
			return err
		}
	} else {
		d.skip(StepPromote, "verify mode does not promote")
	}
	return d.destroy(ctx)
}

func (d *run) preflight(ctx context.Context) error {
	return d.step(ctx, StepPreflight, func(ctx context.Context, _ ProgressFunc) error { return d.inspect(ctx) })
}

// inspect learns the app, checks its backups and picks the backup to
// restore. It changes nothing; Plan and every drill start with it.
func (d *run) inspect(ctx context.Context) error {
	p := d.r.Provider
	if err := p.CheckAppName(d.opts.App); err != nil {
		return err
	}
	app, err := p.Describe(ctx, d.opts.App)
	if err != nil {
		return err
	}
	d.app = app
	for _, n := range app.Notes {
		d.note(n)
	}
	if d.opts.Mode == ModeFull && app.FullModeRefusal != "" {
		return Errorf(EREFUSED, "%s", app.FullModeRefusal)
	}
	list, err := p.Backups(ctx, d.opts.App)
	if err != nil {
		return err
	}
	d.checkBackups(list)
	switch d.opts.Backup.Kind {
	case BackupLatest:
		b, ok := list.NewestSucceeded()
		if !ok {
			return Errorf(ENOTFOUND, "%s has no successful backup to restore: run the drill with --backup fresh", d.opts.App)
		}
		d.backup = b
	case BackupByID:
		b, ok := list.FindRef(d.opts.Backup)
		if !ok {
			return Errorf(ENOTFOUND, "backup %s not found for %s: list them with `restore-drill backups %s`", d.opts.Backup, d.opts.App, d.opts.App)
		}
		if b.Status != BackupSucceeded {
			return Errorf(EINVALID, "backup %s of %s did not complete successfully (%s): choose a succeeded one from `restore-drill backups %s`", b.ID, d.opts.App, b.Status, d.opts.App)
		}
		d.backup = b
	}
	return nil
}

// checkBackups records the RPO and the preflight findings on backups.
func (d *run) checkBackups(list BackupList) {
	maxAge := d.r.MaxBackupAge
	if maxAge <= 0 {
		maxAge = DefaultMaxBackupAge
	}
	newest, ok := list.NewestSucceeded()
	var age time.Duration
	if ok {
		age = d.report.StartedAt.Sub(*newest.FinishedAt)
		s := age.Seconds()
		d.report.RPOSeconds = &s
	}
	if !list.Scheduling {
		if ok {
			d.note(fmt.Sprintf("Newest backup before this drill: %s, %s old. This platform takes no automatic backups.", newest.ID, RoundDuration(age)))
		} else {
			d.note("No backup existed before this drill. This platform takes no automatic backups.")
		}
		return
	}
	sched := Check{Name: "backup_schedule", OK: len(list.Schedules) > 0}
	if sched.OK {
		sched.Message = fmt.Sprintf("daily backups at %02d:00 %s", list.Schedules[0].Hour, list.Schedules[0].Timezone)
	} else {
		sched.Message = fmt.Sprintf("%s has no backup schedule: set one with `heroku pg:backups:schedule DATABASE_URL --at '02:00 UTC' --app %s`", d.opts.App, d.opts.App)
	}
	ageCheck := Check{Name: "backup_age", OK: ok && age <= maxAge}
	switch {
	case !ok:
		ageCheck.Message = fmt.Sprintf("%s has no successful backup", d.opts.App)
	case ageCheck.OK:
		ageCheck.Message = fmt.Sprintf("newest successful backup %s is %s old (limit %s)", newest.ID, RoundDuration(age), RoundDuration(maxAge))
	default:
		ageCheck.Message = fmt.Sprintf("newest successful backup %s is %s old, over the %s limit: check the backup schedule", newest.ID, RoundDuration(age), RoundDuration(maxAge))
	}
	d.report.Checks = append(d.report.Checks, sched, ageCheck)
	for _, c := range []Check{sched, ageCheck} {
		if !c.OK {
			d.emit(Event{Step: StepPreflight, Kind: DrillNote, Message: "Preflight check failed: " + c.Message})
		}
	}
}

func (d *run) failedChecks() error {
	var bad []string
	for _, c := range d.report.Checks {
		if !c.OK {
			bad = append(bad, c.Message)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return Errorf(EFAILED, "the restore worked but preflight checks failed: %s", strings.Join(bad, "; "))
}

func (d *run) provision(ctx context.Context) error {
	if d.opts.Keep {
		return d.step(ctx, StepProvision, d.createScratch)
	}
	// The undo is journaled before the change; it destroys whatever the
	// provider reports having created, even half-way, or (after a crash)
	// whatever carries the drill's tag.
	return d.step(ctx, StepProvision, func(ctx context.Context, progress ProgressFunc) error {
		e, err := d.push(ctx, UndoRecord{Step: StepProvision, Kind: UndoDestroyScratch})
		if err != nil {
			return err
		}
		err = d.createScratch(ctx, progress)
		e.rec.Database = d.scratch
		d.update(ctx, e)
		return err
	})
}

func (d *run) createScratch(ctx context.Context, progress ProgressFunc) error {
	db, err := d.r.Provider.CreateScratch(ctx, d.opts.App, d.opts.DrillID, progress)
	if db.ID != "" {
		d.scratch = db
		d.report.Scratch = &db
	}
	return err
}

func (d *run) maintenanceOn(ctx context.Context) (*undoEntry, error) {
	plan := []string{
		fmt.Sprintf("Turn on maintenance mode for %s (it was %s).", d.opts.App, onOff(d.app.Maintenance)),
		fmt.Sprintf("Capture a backup of %s, restore it onto %s and compare checksums.", d.app.Database.Name, d.scratch.Name),
		fmt.Sprintf("Promote %s to serve %s, check it, then promote %s back.", d.scratch.Name, d.opts.App, d.app.Database.Name),
		fmt.Sprintf("Set maintenance back to %s.", onOff(d.app.Maintenance)),
	}
	action := fmt.Sprintf("turn on maintenance mode for %s", d.opts.App)
	if err := d.confirm(ctx, StepMaintenanceOn, action, d.opts.App, plan); err != nil {
		if !IsParked(err) {
			d.skip(StepMaintenanceOn, "not confirmed")
		}
		return nil, err
	}
	return d.maintenance(ctx)
}

// maintenance turns maintenance on, its undo journaled first.
func (d *run) maintenance(ctx context.Context) (*undoEntry, error) {
	var e *undoEntry
	err := d.step(ctx, StepMaintenanceOn, func(ctx context.Context, _ ProgressFunc) error {
		var err error
		if e, err = d.push(ctx, UndoRecord{Step: StepMaintenanceOn, Kind: UndoMaintenance, Was: d.app.Maintenance}); err != nil {
			return err
		}
		d.keepState(ctx, e)       // what undoing needs before the change...
		defer d.keepState(ctx, e) // ...and after it
		return d.r.Provider.SetMaintenance(ctx, d.opts.App, true)
	})
	return e, err
}

func (d *run) obtainBackup(ctx context.Context, fresh bool) error {
	if fresh {
		return d.step(ctx, StepCapture, func(ctx context.Context, progress ProgressFunc) error {
			c, err := d.r.Provider.Capture(ctx, d.opts.App, true, progress)
			if err != nil {
				return err
			}
			d.backup, d.source = c.Backup, c.Source
			// In full mode production is in maintenance, so the fingerprint
			// and the backup see the same data even when the platform
			// cannot read them from one snapshot.
			d.exact = c.Exact || d.opts.Mode == ModeFull
			d.setBackup(true)
			return nil
		})
	}
	d.setBackup(false)
	d.skip(StepCapture, fmt.Sprintf("restoring existing backup %s", d.backup.ID))
	if d.backup.Fingerprint != nil {
		d.source, d.exact = d.backup.Fingerprint, true
		d.skip(StepFingerprintSrc, fmt.Sprintf("backup %s carries the fingerprint taken when it was captured", d.backup.ID))
		return nil
	}
	return d.step(ctx, StepFingerprintSrc, func(ctx context.Context, _ ProgressFunc) error {
		fp, err := d.r.Provider.Fingerprint(ctx, d.app.Database)
		if err != nil {
			return err
		}
		d.source = &fp
		d.note(fmt.Sprintf("Backup %s was taken %s before this drill: table differences below are drift since then, not errors.", d.backup.ID, RoundDuration(d.report.StartedAt.Sub(d.backup.CreatedAt))))
		return nil
	})
}

func (d *run) setBackup(fresh bool) {
	d.report.Backup = &ReportBackup{ID: d.backup.ID, SizeBytes: d.backup.SizeBytes, CreatedAt: d.backup.CreatedAt, Fresh: fresh}
}

func (d *run) restore(ctx context.Context) error {
	start := d.now()
	err := d.step(ctx, StepRestore, func(ctx context.Context, progress ProgressFunc) error {
		if err := d.guardOwned(d.scratch); err != nil {
			return err
		}
		res, err := d.r.Provider.Restore(ctx, d.backup, d.scratch, progress)
		for _, w := range res.Warnings {
			d.note("Restore warning: " + w)
		}
		return err
	})
	d.report.RestoreSeconds = d.now().Sub(start).Seconds()
	return err
}

func (d *run) verify(ctx context.Context) error {
	return d.step(ctx, StepVerify, func(ctx context.Context, _ ProgressFunc) error {
		restored, err := d.r.Provider.Fingerprint(ctx, d.scratch)
		if err != nil {
			return err
		}
		var src Fingerprint
		if d.source != nil {
			src = *d.source
		}
		c := Compare(src, restored, d.exact)
		if !d.exact && d.canary.DrillID != "" {
			// A backup taken right after the fingerprint can differ by the
			// writes in between, not by whole tables' worth of rows.
			c.LimitDrift(driftRows, driftFraction)
		}
		d.report.Exact = c.Exact
		d.report.Tables = c.Tables
		d.recordComparison(c)
		d.report.Verification = c.Summary()
		var problems []string
		if !c.OK() {
			problems = append(problems, c.Summary())
		}
		if d.canary.DrillID != "" {
			d.report.Canary.Expected = true
			found, err := d.r.Provider.FindCanary(ctx, d.scratch, d.canary)
			if err != nil {
				return err
			}
			d.report.Canary.Found = found
			if !found {
				problems = append(problems, "the canary row written before the backup is missing from the restore")
			}
		}
		if len(problems) > 0 {
			return Errorf(EFAILED, "the restore does not match the source: %s", strings.Join(problems, "; "))
		}
		return nil
	})
}

// recordComparison puts what comparing found into the report: the schema
// differences with both sides, the sequences behind, and each note (a
// difference that is no failure) as a warning.
func (d *run) recordComparison(c Comparison) {
	d.report.SchemaDiffs, d.report.SchemaMissing, d.report.SchemaExtra = c.SchemaDiffs, c.SchemaMissing, c.SchemaExtra
	d.report.SequencesBehind = c.SequencesBehind
	for _, n := range c.Notes {
		d.note(n)
	}
}

func (d *run) promoteAndBack(ctx context.Context) error {
	plan := []string{
		fmt.Sprintf("Promote %s (restored from %s) to serve %s in place of %s.", d.scratch.Name, d.backup.ID, d.opts.App, d.app.Database.Name),
		fmt.Sprintf("Check the canary through %s, then promote %s back.", d.opts.App, d.app.Database.Name),
	}
	action := fmt.Sprintf("promote %s to serve %s", d.scratch.Name, d.opts.App)
	if err := d.confirm(ctx, StepPromote, action, d.opts.App, plan); err != nil {
		if !IsParked(err) {
			d.skip(StepPromote, "not confirmed")
		}
		return err
	}
	back, err := d.promote(ctx)
	if err != nil {
		return err
	}
	if err := d.step(ctx, StepCheckPromoted, func(ctx context.Context, _ ProgressFunc) error {
		serving, err := d.servedByScratch(ctx)
		if err != nil || d.canary.DrillID == "" {
			return err
		}
		found, err := d.r.Provider.FindCanary(ctx, serving, d.canary)
		if err != nil {
			return err
		}
		d.report.Canary.FoundServing = &found
		if !found {
			return Errorf(EFAILED, "the canary row is not visible through %s while the restored database serves it", d.opts.App)
		}
		return nil
	}); err != nil {
		return err
	}
	return d.runUndoAsStep(ctx, StepPromoteBack, back)
}

// servedByScratch checks, after a promote, that the scratch database is the
// one that serves the app.
func (d *run) servedByScratch(ctx context.Context) (Database, error) {
	serving, err := d.r.Provider.Serving(ctx, d.opts.App)
	if err != nil {
		return serving, err
	}
	if serving.ID != d.scratch.ID {
		return serving, Errorf(EFAILED, "after the promote %s is served by %s, not by %s", d.opts.App, serving.Name, d.scratch.Name)
	}
	return serving, nil
}

// promote makes the scratch database serve the app, its undo (promote the
// original back) journaled first.
func (d *run) promote(ctx context.Context) (*undoEntry, error) {
	var e *undoEntry
	err := d.step(ctx, StepPromote, func(ctx context.Context, _ ProgressFunc) error {
		if err := d.guardOwned(d.scratch); err != nil {
			return err
		}
		var err error
		if e, err = d.push(ctx, UndoRecord{Step: StepPromote, Kind: UndoPromoteBack, Database: d.app.Database}); err != nil {
			return err
		}
		d.keepState(ctx, e)       // what undoing needs before the change...
		defer d.keepState(ctx, e) // ...and after it
		return d.r.Provider.Promote(ctx, d.opts.App, d.scratch)
	})
	return e, err
}

// runUndoAsStep takes e off the undo stack and runs it as the named step. If
// it fails, e goes back on the stack so the undo run tries again.
func (d *run) runUndoAsStep(ctx context.Context, name string, e *undoEntry) error {
	d.undo.take(e)
	err := d.step(ctx, name, func(ctx context.Context, _ ProgressFunc) error { return d.r.Undo(ctx, e.rec) })
	if err != nil {
		d.undo.add(e)
		return err
	}
	d.done(ctx, e)
	return nil
}

func (d *run) destroy(ctx context.Context) error {
	if d.opts.Keep {
		d.report.Kept = true
		d.skip(StepDestroy, fmt.Sprintf("--keep: %s stays for inspection; destroy it when done", d.scratch.Name))
		return nil
	}
	if e := d.undo.find(UndoDestroyScratch); e != nil {
		return d.runUndoAsStep(ctx, StepDestroy, e)
	}
	return nil
}

// finish runs the undo stack after a failure and completes the report.
func (d *run) finish(ctx context.Context, err error) {
	if err != nil {
		timeout := d.r.UndoTimeout
		if timeout <= 0 {
			timeout = 15 * time.Minute
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		entries := d.undo.popAll()
		recs := make([]UndoRecord, len(entries))
		for i, e := range entries {
			recs[i] = e.rec
		}
		d.report.Undone, d.report.UndoFailed = d.r.undoAll(uctx, recs, d.emit, func(i int) { d.done(uctx, entries[i]) })
		if d.opts.Keep && d.scratch.ID != "" {
			d.report.Kept = true
		}
	}
	if d.counter != nil {
		d.report.APICalls = d.counter.Calls() - d.callsBefore
	}
	d.report.EndedAt = d.now()
	d.report.TotalSeconds = d.report.EndedAt.Sub(d.report.StartedAt).Seconds()
	d.report.Result = Passed
	if err != nil {
		d.report.Result = Failed
		d.report.Error = d.describe(err)
	}
	if ErrorCode(err) == ECANCELED {
		// A cancel is no measure of how long a restore takes: the history
		// and its trend must not count it.
		d.report.Cancelled, d.report.RestoreSeconds = true, 0
		d.report.CancelledBy = cancelledBy(ctx, err)
	}
	if d.beforeFinish != nil {
		d.beforeFinish(err)
	}
	if d.journaled {
		if jerr := d.r.Journal.Finish(context.WithoutCancel(ctx), d.report); jerr != nil {
			d.logger.Error("cannot journal the report", "err", jerr)
			d.note(fmt.Sprintf("This report could not be recorded in the state database (%s): `history` will not show it.", ErrorMessage(jerr)))
		}
	}
	d.emit(Event{Kind: DrillFinished, Message: string(d.report.Result), Report: d.report})
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// RoundDuration prints d to a precision people read at a glance.
func RoundDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// Seconds prints a number of seconds as RoundDuration does.
func Seconds(s float64) string { return RoundDuration(time.Duration(s * float64(time.Second))) }

// HumanBytes prints a size in bytes with SI units: 13.2 MB.
func HumanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
