package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Awaiting is the error a Confirmer returns when it has asked for a
// confirmation and will not wait for the answer in this process: the drill
// parks (see Parker) with nothing undone, and Runner.Continue takes it up
// again wherever the answer arrives. A Confirmer may return it only to a
// runner whose journal is a Parker.
type Awaiting struct {
	// Ticket names the confirmation asked for; only an answer to it
	// continues the drill.
	Ticket string
	// Until is when the confirmation expires; a drill still parked then is
	// continued with the expiry, which undoes it.
	Until time.Time
	// Ask, when set, puts the question to people. The runner calls it
	// once the drill is parked and given up, so that no answer can arrive
	// before the drill waits for it.
	Ask func(ctx context.Context)
}

func (a *Awaiting) Error() string {
	return fmt.Sprintf("waiting for confirmation %s until %s", a.Ticket, a.Until.UTC().Format(time.RFC3339))
}

// asAwaiting returns the Awaiting err wraps, or nil.
func asAwaiting(err error) *Awaiting {
	var a *Awaiting
	if errors.As(err, &a) {
		return a
	}
	return nil
}

// IsParked reports whether err says the drill parked, waiting for a
// confirmation: it is not over, and its report is not final.
func IsParked(err error) bool { return asAwaiting(err) != nil }

// Parker is implemented by journals that can keep a drill waiting for a
// confirmation with no process attached to it: the drill holds its app
// while parked, and a dead-owner resume leaves it alone until its
// confirmation has expired.
type Parker interface {
	// Park records the drill's checkpoint, waiting for confirmation
	// cp.Ticket until until. The caller still owns the drill and releases
	// it afterwards.
	Park(ctx context.Context, drillID string, cp []byte, until time.Time) error
	// Unpark takes a parked drill waiting for ticket and makes the caller
	// its owner, as Begin does. ok is false, with no error, when the drill
	// is not parked on that ticket (it was continued already, or undone).
	Unpark(ctx context.Context, drillID, ticket string) (p Parked, ok bool, err error)
}

// Parked is a parked drill handed to the process that continues it.
type Parked struct {
	Record DrillRecord
	// Checkpoint is what Park stored.
	Checkpoint []byte
	// Undo holds the undo records not yet run, oldest first.
	Undo []UndoRecord
	// Release gives the drill up.
	Release func()
}

// Answer is what became of a confirmation a parked drill waits for: the
// confirmation, or the error that refused it (expired, cancelled,
// refused).
type Answer struct {
	Confirmation Confirmation
	Err          error
}

// checkpoint is what a parked drill needs to go on in another process.
type checkpoint struct {
	Ticket  string          `json:"ticket"`
	Step    string          `json:"step"`
	Until   time.Time       `json:"until"`
	Options Options         `json:"options"`
	Restore *RestoreOptions `json:"restore,omitempty"`
	Report  *Report         `json:"report"`
	App     App             `json:"app"`
	Scratch Database        `json:"scratch"`
	Backup  savedBackup     `json:"backup"`
	Source  *Fingerprint    `json:"source,omitempty"`
	Exact   bool            `json:"exact"`
	Canary  Canary          `json:"canary"`
	Safety  *savedBackup    `json:"safety,omitempty"`
	// Calls is how many API calls the drill had made before it parked.
	Calls int `json:"calls"`
}

// savedBackup keeps a Backup with the fields its JSON form leaves out.
type savedBackup struct {
	Backup
	Num         int          `json:"num"`
	Fingerprint *Fingerprint `json:"fingerprint,omitempty"`
}

func saveBackup(b Backup) savedBackup {
	return savedBackup{Backup: b, Num: b.Num, Fingerprint: b.Fingerprint}
}

func (s savedBackup) backup() Backup {
	b := s.Backup
	b.Num, b.Fingerprint = s.Num, s.Fingerprint
	return b
}

// ParkedTicket returns the ticket a checkpoint Park stored waits for, for
// journals that check it.
func ParkedTicket(cp []byte) (string, error) {
	var c struct {
		Ticket string `json:"ticket"`
	}
	if err := json.Unmarshal(cp, &c); err != nil {
		return "", Wrap(EINTERNAL, err, "unreadable checkpoint")
	}
	return c.Ticket, nil
}

// stepAnswer is the answer a continued drill's confirmation of step gets.
type stepAnswer struct {
	step string
	Answer
}

// ErrNotParked is returned by Continue when the drill is not parked on
// the ticket: it was continued already, undone, or finished.
var ErrNotParked = Errorf(ENOTFOUND, "the drill is not waiting for that confirmation")

// park records where the drill stands, so that another process can take it
// up when the confirmation it waits for is answered or expires. Nothing is
// undone: the drill keeps its app, its scratch database and, in full mode,
// production's maintenance until then.
func (d *run) park(ctx context.Context, aw *Awaiting) error {
	p, ok := d.r.Journal.(Parker)
	if !ok || !d.journaled {
		return Errorf(EINTERNAL, "drill %s cannot wait for its confirmation: its journal cannot keep parked drills", d.opts.DrillID)
	}
	cp := checkpoint{Ticket: aw.Ticket, Step: d.awaitStep, Until: aw.Until, Options: d.opts, Restore: d.restoreOpts,
		Report: d.report, App: d.app, Scratch: d.scratch, Backup: saveBackup(d.backup), Source: d.source,
		Exact: d.exact, Canary: d.canary}
	if d.safety != nil {
		s := saveBackup(*d.safety)
		cp.Safety = &s
	}
	if d.counter != nil {
		cp.Calls = d.counter.Calls() - d.callsBefore
	}
	b, err := json.Marshal(cp)
	if err == nil {
		err = p.Park(context.WithoutCancel(ctx), d.opts.DrillID, b, aw.Until)
	}
	if ErrorCode(err) == ECANCELED {
		return err
	}
	if err != nil {
		return Wrap(EFAILED, err, "drill %s cannot wait for its confirmation: it could not be parked in the journal", d.opts.DrillID)
	}
	// What the provider remembers about the app goes with the checkpoint's
	// undo records: kept here, it would be stale once another process has
	// taken the drill up.
	if sk, ok := d.r.Provider.(StateKeeper); ok {
		sk.ForgetState(d.opts.App)
	}
	d.logger.Info("drill parked", "step", d.awaitStep, "ticket", aw.Ticket, "until", aw.Until.UTC().Format(time.RFC3339))
	d.emit(Event{Step: d.awaitStep, Kind: DrillParked, Message: fmt.Sprintf("Waiting for the confirmation until %s; no process is held meanwhile. Nobody confirming by then undoes the drill.",
		aw.Until.UTC().Format("15:04:05 UTC"))})
	return nil
}

// Continue takes up drillID, parked waiting for the confirmation ticket,
// with ans, the answer to it: a confirmation goes on with the drill, a
// refusal or expiry runs its undo stack, as it would have in the process
// that parked it. The report and error are those of Run or Restore. It
// returns ErrNotParked, changing nothing, when the drill is not parked on
// ticket.
func (r *Runner) Continue(ctx context.Context, drillID, ticket string, ans Answer) (*Report, error) {
	p, ok := r.Journal.(Parker)
	if !ok {
		return nil, Errorf(ECONFIG, "drill %s cannot be continued: the journal does not keep parked drills", drillID)
	}
	pk, ok, err := p.Unpark(ctx, drillID, ticket)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotParked
	}
	var cp checkpoint
	if err := json.Unmarshal(pk.Checkpoint, &cp); err != nil || cp.Report == nil || cp.Ticket != ticket {
		// Nothing to go on from: undo what the journal says was done.
		r.logger().Error("unreadable checkpoint: undoing the drill", "drill", drillID, "err", err)
		rep := r.resumeOne(ctx, r.Journal, Abandoned{Record: pk.Record, Undo: pk.Undo, Release: pk.Release})
		return rep, Errorf(EINTERNAL, "drill %s could not be continued (its checkpoint is unreadable) and was undone", drillID)
	}
	d := r.newRun(cp.Options)
	d.record, d.journaled, d.report = pk.Record, true, cp.Report
	d.app, d.scratch, d.backup, d.source, d.exact, d.canary = cp.App, cp.Scratch, cp.Backup.backup(), cp.Source, cp.Exact, cp.Canary
	if cp.Safety != nil {
		s := cp.Safety.backup()
		d.safety = &s
	}
	d.restoreOpts = cp.Restore
	for _, u := range pk.Undo {
		d.undo.add(&undoEntry{rec: u})
	}
	r.loadStates(pk.Record.App, drillID, pk.Undo)
	d.resumeAt = cp.Step
	d.answer = &stepAnswer{step: cp.Step, Answer: ans}
	d.countCalls(cp.Calls)
	ctx = WithDrill(ctx, drillID)
	if cp.Restore != nil {
		ctx = WithEmergency(ctx)
	}
	ctx = d.own(ctx, pk.Release)
	// Said, not recorded: the report is the drill's, as if it never waited.
	d.emit(Event{Kind: DrillContinued, Message: fmt.Sprintf("Drill %s continues, after waiting for the confirmation of %s.", drillID, cp.Step)})
	if cp.Restore != nil {
		return d.executeRestore(ctx, nil)
	}
	return d.execute(ctx, nil, d.drill)
}

// loadStates makes the provider remember what the undo records say it
// knew about app (see StateKeeper), in place of anything it remembered
// before, all of it before any undo runs: the newest record may have been
// journaled before its change knew anything.
func (r *Runner) loadStates(app, drillID string, undo []UndoRecord) {
	sk, ok := r.Provider.(StateKeeper)
	if !ok {
		return
	}
	sk.ForgetState(app)
	for _, u := range undo {
		if u.State != "" {
			if err := sk.LoadState(u.App, u.State); err != nil {
				r.logger().Error("cannot load the provider's state", "drill", drillID, "err", err)
			}
		}
	}
}

// recheck, in a process taking up a parked drill, describes the app again
// (the provider learns what it needs to promote and undo) and checks that
// production is still served by the database the drill started with: a
// drill never goes on over a change it did not make.
func (d *run) recheck(ctx context.Context) error {
	app, err := d.r.Provider.Describe(ctx, d.opts.App)
	if err != nil {
		return err
	}
	if app.Database.ID != d.app.Database.ID {
		return Errorf(EFAILED, "while drill %s waited for its confirmation, %s came to be served by %s instead of %s: it does not go on over a change it did not make",
			d.opts.DrillID, d.opts.App, app.Database.Name, d.app.Database.Name)
	}
	return nil
}
