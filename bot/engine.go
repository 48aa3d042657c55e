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
	Run(ctx context.Context, opts drill.Options, c drill.Confirmer, s drill.Sink) (*drill.Report, error)
	Restore(ctx context.Context, opts drill.RestoreOptions, c drill.Confirmer, s drill.Sink) (*drill.Report, error)
	Capture(ctx context.Context, app string) (drill.Backup, error)
}

// RunnerEngine is the Engine of a drill.Runner on one provider: each drill
// gets a Runner with its own confirmer and sink.
type RunnerEngine struct {
	Provider     drill.Provider
	Logger       *slog.Logger
	Redactor     *drill.Redactor
	MaxBackupAge time.Duration
	UndoTimeout  time.Duration
}

var _ Engine = (*RunnerEngine)(nil)

func (e *RunnerEngine) runner(c drill.Confirmer, s drill.Sink) *drill.Runner {
	return &drill.Runner{Provider: e.Provider, Confirmer: c, Sink: s, Logger: e.Logger, Redactor: e.Redactor,
		MaxBackupAge: e.MaxBackupAge, UndoTimeout: e.UndoTimeout}
}

// CheckAppName asks the provider.
func (e *RunnerEngine) CheckAppName(app string) error { return e.Provider.CheckAppName(app) }

// Backups lists app's backups.
func (e *RunnerEngine) Backups(ctx context.Context, app string) (drill.BackupList, error) {
	return e.Provider.Backups(ctx, app)
}

// Plan describes a drill.
func (e *RunnerEngine) Plan(ctx context.Context, opts drill.Options) (*drill.Plan, error) {
	return e.runner(nil, nil).Plan(ctx, opts)
}

// Run runs a drill.
func (e *RunnerEngine) Run(ctx context.Context, opts drill.Options, c drill.Confirmer, s drill.Sink) (*drill.Report, error) {
	return e.runner(c, s).Run(ctx, opts)
}

// Restore runs an emergency restore.
func (e *RunnerEngine) Restore(ctx context.Context, opts drill.RestoreOptions, c drill.Confirmer, s drill.Sink) (*drill.Report, error) {
	return e.runner(c, s).Restore(ctx, opts)
}

// Capture takes a backup now.
func (e *RunnerEngine) Capture(ctx context.Context, app string) (drill.Backup, error) {
	return e.runner(nil, nil).Capture(ctx, app)
}
