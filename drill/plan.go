package drill

import (
	"context"
	"fmt"
	"time"
)

// Plan says what a drill would do, before it does anything: the preflight
// findings, the backup, each step, what is created, promoted and destroyed,
// what restarts, and an estimate of the time.
type Plan struct {
	App      string `json:"app"`
	Provider string `json:"provider"`
	Mode     Mode   `json:"mode"`
	// Backup is the backup to restore, or nil when the drill captures one.
	Backup *Backup `json:"backup,omitempty"`
	// BackupAge is Backup's age now.
	BackupAge time.Duration `json:"backup_age,omitempty"`
	// Production is the database that serves the app.
	Production Database   `json:"production"`
	SizeBytes  int64      `json:"size_bytes"`
	Steps      []PlanStep `json:"steps"`
	Checks     []Check    `json:"checks"`
	Notes      []string   `json:"notes,omitempty"`
	// RPOSeconds: see Report.RPOSeconds.
	RPOSeconds *float64 `json:"rpo_seconds"`
	// Estimate is a rough duration of the whole drill from the database's
	// size; Slack and the terminal present it as an estimate.
	Estimate time.Duration `json:"estimate"`
	// Refusal, when set, is why the drill cannot run as asked.
	Refusal string `json:"refusal,omitempty"`
}

// PlanStep is one step of a plan.
type PlanStep struct {
	Name string `json:"name"`
	// What says what the step does, with the names it touches.
	What string `json:"what"`
	// Confirm is true when the step waits for a typed confirmation.
	Confirm bool `json:"confirm"`
}

// Throughputs the estimate assumes; measured on a 2-core machine (see
// README). They err on the slow side.
const (
	estimateDumpBytesPerSec    = 60 << 20
	estimateRestoreBytesPerSec = 40 << 20
	estimateHashBytesPerSec    = 200 << 20
	estimateFixed              = 5 * time.Second
)

// Plan inspects the app and its backups and describes the drill opts asks
// for, changing nothing. A drill that could not run (unknown app or backup)
// is an error; one that would be refused (full mode on a Fir app) is a plan
// with Refusal set.
func (r *Runner) Plan(ctx context.Context, opts Options) (*Plan, error) {
	d := r.newRun(opts)
	d.r = &Runner{Provider: r.Provider, Now: r.Now, MaxBackupAge: r.MaxBackupAge, Redactor: r.Redactor, Logger: r.Logger}
	err := d.inspect(ctx)
	if err != nil && ErrorCode(err) != EREFUSED {
		return nil, err
	}
	opts = d.opts
	p := &Plan{
		App: opts.App, Provider: r.Provider.Name(), Mode: opts.Mode, Production: d.app.Database,
		SizeBytes: d.app.SizeBytes, Checks: d.report.Checks, Notes: d.report.Warnings, RPOSeconds: d.report.RPOSeconds,
	}
	if err != nil {
		p.Refusal = ErrorMessage(err)
	}
	scratch := "a new scratch database tagged with the drill's id"
	add := func(name, what string, confirm bool) {
		p.Steps = append(p.Steps, PlanStep{Name: name, What: what, Confirm: confirm})
	}
	add(StepProvision, "Provision "+scratch+".", false)
	fresh := opts.Backup.Kind == BackupFresh
	if fresh {
		add(StepCanary, fmt.Sprintf("Write one canary row into %s (table restore_drill.canary, in the drill's own schema).", d.app.Database.Name), false)
	}
	if opts.Mode == ModeFull {
		add(StepMaintenanceOn, fmt.Sprintf("Turn on maintenance mode for %s.", opts.App), true)
	}
	if fresh {
		add(StepCapture, fmt.Sprintf("Capture a backup of %s.", d.app.Database.Name), false)
	} else {
		b := d.backup
		p.Backup = &b
		p.BackupAge = r.now().Sub(b.CreatedAt)
	}
	add(StepRestore, fmt.Sprintf("Restore %s onto the scratch database (never onto production).", opts.Backup), false)
	add(StepVerify, "Compare per-table row counts and hashes, the schema and the canary.", false)
	if opts.Mode == ModeFull {
		add(StepPromote, fmt.Sprintf("Promote the scratch database to serve %s (dynos restart).", opts.App), true)
		add(StepCheckPromoted, fmt.Sprintf("Check the canary through %s.", opts.App), false)
		add(StepPromoteBack, fmt.Sprintf("Promote %s back (dynos restart).", d.app.Database.Name), false)
		add(StepMaintenanceOff, "Set maintenance mode back to what it was.", false)
	}
	if opts.Keep {
		add(StepDestroy, "Keep the scratch database (--keep): destroy it by hand when done.", false)
	} else {
		add(StepDestroy, "Destroy the scratch database.", false)
	}
	p.Estimate = estimate(d.app.SizeBytes, fresh)
	return p, nil
}

// estimate guesses a drill's duration from the database's size.
func estimate(size int64, fresh bool) time.Duration {
	secs := float64(size) / estimateRestoreBytesPerSec
	secs += 2 * float64(size) / estimateHashBytesPerSec
	if fresh {
		secs += float64(size) / estimateDumpBytesPerSec
	}
	return (estimateFixed + time.Duration(secs*float64(time.Second))).Round(time.Second)
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
