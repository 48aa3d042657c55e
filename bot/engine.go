package bot

import (
	"context"
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

// Restore runs an emergency restore.
func (e *RunnerEngine) Restore(ctx context.Context, opts drill.RestoreOptions, th Thread) (*drill.Report, error) {
	return e.runner(th).Restore(ctx, opts)
}

// Capture takes a backup now.
func (e *RunnerEngine) Capture(ctx context.Context, app string) (drill.Backup, error) {
	return e.runner(Thread{}).Capture(ctx, app)
}

// Resume undoes the drills dead processes left on this provider.
func (e *RunnerEngine) Resume(ctx context.Context, j drill.ResumeJournal, s drill.Sink) ([]*drill.Report, error) {
	return e.runner(Thread{Sink: s}).Resume(ctx, j)
}
