package bot

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/restore-drill/restore-drill/drill"
)

// Engine is the narrow drill interface the bot calls.
type Engine interface {
	// CheckAppName returns an EINVALID error when app cannot be an app on the
	// platform; it makes no call.
	CheckAppName(app string) error
	Backups(ctx context.Context, app string) (drill.BackupList, error)
	Plan(ctx context.Context, opts drill.Options) (*drill.Plan, error)
	Run(ctx context.Context, opts drill.Options, th Thread) (*drill.Report, error)
	Restore(ctx context.Context, opts drill.RestoreOptions, th Thread) (*drill.Report, error)
	Capture(ctx context.Context, app string) (drill.Backup, error)
	// Continue takes up a drill parked on confirmation ticket with ans
	// (see drill.Runner.Continue).
	Continue(ctx context.Context, drillID, ticket string, ans drill.Answer, th Thread) (*drill.Report, error)
	// Resume undoes the drills whose process died, found through j, and
	// sends their events to s.
	Resume(ctx context.Context, j drill.ResumeJournal, s drill.Sink) ([]*drill.Report, error)
}

// Thread is what a drill gets from the bot: who confirms, where its events
// go, and the Slack channel and thread the journal records for it.
type Thread struct {
	Confirmer         drill.Confirmer
	Sink              drill.Sink
	Channel, ThreadTS string
}

// RunnerEngine is the Engine of a drill.Runner on one provider: each drill
// gets a Runner with its own confirmer and sink.
type RunnerEngine struct {
	Provider     drill.Provider
	Logger       *slog.Logger
	Redactor     *drill.Redactor
	MaxBackupAge time.Duration
	UndoTimeout  time.Duration
	// Journal, when set, records every drill in the state database; its
	// app lock keeps one drill per app across every process.
	Journal drill.Journal
	// History, when set, gives plans the app's past drills.
	History drill.History
}

var _ Engine = (*RunnerEngine)(nil)

func (e *RunnerEngine) runner(th Thread) *drill.Runner {
	return &drill.Runner{Provider: e.Provider, Confirmer: th.Confirmer, Sink: th.Sink, Logger: e.Logger, Redactor: e.Redactor,
		MaxBackupAge: e.MaxBackupAge, UndoTimeout: e.UndoTimeout, Journal: e.Journal, History: e.History,
		Channel: th.Channel, ThreadTS: th.ThreadTS}
}

// CheckAppName asks the provider.
func (e *RunnerEngine) CheckAppName(app string) error { return e.Provider.CheckAppName(app) }

// Backups lists app's backups.
func (e *RunnerEngine) Backups(ctx context.Context, app string) (drill.BackupList, error) {
	return e.Provider.Backups(ctx, app)
}

// Plan describes a drill.
func (e *RunnerEngine) Plan(ctx context.Context, opts drill.Options) (*drill.Plan, error) {
	return e.runner(Thread{}).Plan(ctx, opts)
}

// Run runs a drill.
func (e *RunnerEngine) Run(ctx context.Context, opts drill.Options, th Thread) (*drill.Report, error) {
	return e.runner(th).Run(ctx, opts)
}

// Restore runs an emergency restore. Its captures (the safety backup)
// report the backup they took as their step's last progress, so the thread
// names the safety backup as soon as it exists.
func (e *RunnerEngine) Restore(ctx context.Context, opts drill.RestoreOptions, th Thread) (*drill.Report, error) {
	r := e.runner(th)
	r.Provider = noteCaptures(r.Provider)
	return r.Restore(ctx, opts)
}

// capturesNoted is an emergency provider whose Capture reports, through the
// step's progress, the backup it took. It passes the optional interfaces
// the runner looks for through to the provider; where the provider lacks
// one, its answer means what the interface's absence means (no state to
// keep, no scratch database found, nothing to quiesce).
type capturesNoted struct{ drill.EmergencyProvider }

var (
	_ drill.StateKeeper   = capturesNoted{}
	_ drill.ScratchFinder = capturesNoted{}
	_ drill.Quiescer      = capturesNoted{}
	_ drill.CallCounter   = capturesNoted{}
)

// noteCaptures wraps an emergency provider; any other is returned as is.
func noteCaptures(p drill.Provider) drill.Provider {
	if ep, ok := p.(drill.EmergencyProvider); ok {
		return capturesNoted{ep}
	}
	return p
}

// Capture captures and then reports the backup's id, size and time.
func (p capturesNoted) Capture(ctx context.Context, app string, fingerprint bool, progress drill.ProgressFunc) (drill.Capture, error) {
	c, err := p.EmergencyProvider.Capture(ctx, app, fingerprint, progress)
	if err == nil && progress != nil && c.Backup.ID != "" && drill.IsEmergency(ctx) {
		progress(drill.Progress{Message: fmt.Sprintf("safety backup %s taken at %s, %s: this restore can be undone with it",
			c.Backup.ID, c.Backup.CreatedAt.UTC().Format("15:04:05 UTC"), drill.HumanBytes(c.Backup.SizeBytes))})
	}
	return c, err
}

// SaveState passes through to a drill.StateKeeper.
func (p capturesNoted) SaveState(app string) (string, error) {
	if sk, ok := p.EmergencyProvider.(drill.StateKeeper); ok {
		return sk.SaveState(app)
	}
	return "", nil
}

// LoadState passes through to a drill.StateKeeper.
func (p capturesNoted) LoadState(app, state string) error {
	if sk, ok := p.EmergencyProvider.(drill.StateKeeper); ok {
		return sk.LoadState(app, state)
	}
	return nil
}

// ForgetState passes through to a drill.StateKeeper.
func (p capturesNoted) ForgetState(app string) {
	if sk, ok := p.EmergencyProvider.(drill.StateKeeper); ok {
		sk.ForgetState(app)
	}
}

// FindScratch passes through to a drill.ScratchFinder.
func (p capturesNoted) FindScratch(ctx context.Context, app, drillID string) (drill.Database, bool, error) {
	if f, ok := p.EmergencyProvider.(drill.ScratchFinder); ok {
		return f.FindScratch(ctx, app, drillID)
	}
	return drill.Database{}, false, nil
}

// Quiesce passes through to a drill.Quiescer.
func (p capturesNoted) Quiesce(ctx context.Context, drillID string) error {
	if q, ok := p.EmergencyProvider.(drill.Quiescer); ok {
		return q.Quiesce(ctx, drillID)
	}
	return nil
}

// Calls passes through to a drill.CallCounter.
func (p capturesNoted) Calls() int {
	if c, ok := p.EmergencyProvider.(drill.CallCounter); ok {
		return c.Calls()
	}
	return 0
}

// Continue continues a parked drill or restore.
func (e *RunnerEngine) Continue(ctx context.Context, drillID, ticket string, ans drill.Answer, th Thread) (*drill.Report, error) {
	r := e.runner(th)
	r.Provider = noteCaptures(r.Provider)
	return r.Continue(ctx, drillID, ticket, ans)
}

// Capture takes a backup now.
func (e *RunnerEngine) Capture(ctx context.Context, app string) (drill.Backup, error) {
	return e.runner(Thread{}).Capture(ctx, app)
}

// Resume undoes the drills dead processes left on this provider.
func (e *RunnerEngine) Resume(ctx context.Context, j drill.ResumeJournal, s drill.Sink) ([]*drill.Report, error) {
	return e.runner(Thread{Sink: s}).Resume(ctx, j)
}
