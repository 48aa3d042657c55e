package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/restore-drill/restore-drill/drill"
)

// restoreCommand runs an emergency restore from the terminal.
func restoreCommand(ctx context.Context, cfg Config, a restoreArgs, tio IO, logger *slog.Logger, redactor *drill.Redactor) int {
	fail := failer(tio, redactor, true)
	p, err := appProvider(cfg, a.provider, a.opts.App, logger, redactor)
	if err != nil {
		return fail(err)
	}
	switch {
	case a.confirm == "" && !tio.InteractiveIn:
		hint := a.opts.App
		if a.opts.Into == drill.IntoProduction {
			hint = fmt.Sprintf("%q", drill.ProductionProof(a.opts.App, a.opts.Backup.String()))
		}
		return fail(drill.Errorf(drill.EINVALID, "a restore needs typed confirmations and there is no terminal to ask: run it in a terminal or pass --confirm %s", hint))
	case a.confirm != "" && a.opts.Into == drill.IntoNew && a.confirm != a.opts.App:
		return fail(drill.Errorf(drill.EINVALID, "--confirm %s does not match the app %s: pass --confirm %s", clip(a.confirm), a.opts.App, a.opts.App))
	case a.confirm != "" && a.opts.Into == drill.IntoProduction && !strings.HasPrefix(a.confirm, a.opts.App+" "):
		return fail(drill.Errorf(drill.EINVALID, "an in-place restore is confirmed with the app and the backup id, e.g. --confirm %q", drill.ProductionProof(a.opts.App, a.opts.Backup.String())))
	}
	runner, closeState, err := terminalRunner(ctx, cfg, p, a.confirm, tio, logger, redactor)
	if err != nil {
		return fail(err)
	}
	defer closeState()
	a.opts.Requester = currentUser()
	rep, err := runner.Restore(ctx, a.opts)
	if rep == nil {
		return fail(err)
	}
	return outcome(tio, rep, err, a.json, fail)
}

// planCommand prints what a drill would do; it changes nothing.
func planCommand(ctx context.Context, cfg Config, a runArgs, tio IO, logger *slog.Logger, redactor *drill.Redactor) int {
	fail := failer(tio, redactor, false)
	p, err := newProvider(cfg, a.provider, logger, redactor)
	if err != nil {
		return fail(err)
	}
	plan, err := (&drill.Runner{Provider: p, Logger: logger, Redactor: redactor, MaxBackupAge: cfg.MaxBackupAge}).Plan(ctx, a.opts)
	if err != nil {
		return fail(err)
	}
	if a.json {
		return writeJSON(tio.Out, plan, fail)
	}
	printPlan(tio.Out, plan)
	return exitPassed
}

func printPlan(w io.Writer, p *drill.Plan) {
	fmt.Fprintf(w, "Plan: %s drill of %s (%s), about %s\n", p.Mode, p.App, p.Provider, p.Estimate)
	if p.Refusal != "" {
		fmt.Fprintf(w, "  REFUSED: %s\n", p.Refusal)
	}
	fmt.Fprintf(w, "  production database: %s (%s)\n", p.Production.Name, drill.HumanBytes(p.SizeBytes))
	if p.Backup != nil {
		fmt.Fprintf(w, "  backup: %s, taken %s (%s old), %s\n", p.Backup.ID, p.Backup.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"), p.BackupAge.Round(time.Second), drill.HumanBytes(p.Backup.SizeBytes))
	} else {
		fmt.Fprintln(w, "  backup: a fresh one, captured by the drill")
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, c := range p.Checks {
		mark := "ok"
		if !c.OK {
			mark = "FAILED"
		}
		fmt.Fprintf(w, "  check %s: %s: %s\n", c.Name, mark, c.Message)
	}
	for i, s := range p.Steps {
		confirm := ""
		if s.Confirm {
			confirm = "  [typed confirmation]"
		}
		fmt.Fprintf(w, "  %2d. %s%s\n", i+1, s.What, confirm)
	}
}

// captureCommand takes a backup now.
func captureCommand(ctx context.Context, cfg Config, a backupsArgs, tio IO, logger *slog.Logger, redactor *drill.Redactor) int {
	fail := failer(tio, redactor, false)
	p, err := newProvider(cfg, a.provider, logger, redactor)
	if err != nil {
		return fail(err)
	}
	b, err := (&drill.Runner{Provider: p, Sink: newPrinter(tio.Err), Logger: logger, Redactor: redactor}).Capture(ctx, a.app)
	if err != nil {
		return fail(err)
	}
	if a.json {
		return writeJSON(tio.Out, struct {
			App string `json:"app"`
			drill.Backup
		}{a.app, b}, fail)
	}
	fmt.Fprintf(tio.Out, "Captured %s of %s: %s, taken %s.\n", b.ID, a.app, drill.HumanBytes(b.SizeBytes), b.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	return exitPassed
}
