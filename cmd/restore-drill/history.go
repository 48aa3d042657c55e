package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/trend"
)

const (
	resumeUsage   = "restore-drill resume [--provider local|heroku] [--json]"
	historyUsage  = "restore-drill history APP [--limit N] [--png FILE] [--json]"
	reportUsage   = "restore-drill report DRILL [--format md|json]"
	freezeUsage   = "restore-drill freeze REASON... | restore-drill unfreeze"
	historyLimits = 20
)

// stateCommand runs the commands that read or change the state database:
// resume, history, report, freeze, unfreeze.
func stateCommand(ctx context.Context, cfg Config, verb string, args []string, tio IO, logger *slog.Logger, redactor *drill.Redactor) int {
	fail := failer(tio, redactor, false)
	var spec flagSpec
	var usage string
	switch verb {
	case "resume":
		spec, usage = flagSpec{values: map[string]bool{"provider": true, "json": false}}, resumeUsage
	case "history":
		spec, usage = flagSpec{values: map[string]bool{"limit": true, "png": true, "json": false}}, historyUsage
	case "report":
		spec, usage = flagSpec{values: map[string]bool{"format": true}}, reportUsage
	default:
		spec, usage = flagSpec{values: map[string]bool{}}, freezeUsage
	}
	p, err := parseArgs(args, spec, usage)
	if err != nil {
		return fail(err)
	}
	store, closeState, err := openState(ctx, cfg, redactor)
	if err != nil {
		return fail(err)
	}
	defer closeState()
	switch verb {
	case "resume":
		if len(p.positional) != 0 {
			return fail(usageErrorf(usage, "resume takes no arguments"))
		}
		provider, err := parseProvider(p.values)
		if err != nil {
			return fail(err)
		}
		prov, err := newProvider(cfg, provider, logger, redactor)
		if err != nil {
			return fail(err)
		}
		reps, err := resumeAbandoned(ctx, prov, store, tio.Err, logger, redactor)
		if err != nil {
			return fail(err)
		}
		code := exitPassed
		for _, r := range reps {
			if len(r.UndoFailed) > 0 {
				code = exitFailed // someone must act: scripts must see it
			}
		}
		// Drills parked on a confirmation belong to no process and are not
		// dead: say they were left alone.
		type waitingDrill struct {
			DrillID string    `json:"drill_id"`
			App     string    `json:"app"`
			Until   time.Time `json:"until"`
		}
		waiting := []waitingDrill{}
		if running, err := store.Running(ctx); err == nil {
			for _, r := range running {
				if r.Parked() {
					waiting = append(waiting, waitingDrill{DrillID: r.DrillID, App: r.App, Until: r.ParkedUntil})
				}
			}
		}
		if p.bools["json"] {
			if reps == nil {
				reps = []*drill.Report{}
			}
			if c := writeJSON(tio.Out, map[string]any{"resumed": reps, "waiting": waiting}, fail); c != exitPassed {
				return c
			}
			return code
		}
		if len(reps) == 0 {
			fmt.Fprintln(tio.Out, "No drill was left unfinished by a dead process.")
		}
		for _, w := range waiting {
			fmt.Fprintf(tio.Out, "Drill %s of %s waits for a confirmation until %s: left alone (confirm or cancel it in Slack; nobody confirming undoes it).\n",
				w.DrillID, w.App, w.Until.UTC().Format("2006-01-02 15:04 UTC"))
		}
		return code
	case "history":
		if len(p.positional) != 1 {
			return fail(usageErrorf(usage, "history takes exactly one app"))
		}
		limit := historyLimits
		if v, ok := p.values["limit"]; ok {
			if _, err := fmt.Sscan(v, &limit); err != nil || limit < 1 || limit > 1000 {
				return fail(usageErrorf(usage, "--limit takes a number from 1 to 1000"))
			}
		}
		reps, err := store.History(ctx, p.positional[0], limit)
		if err != nil {
			return fail(err)
		}
		if file, ok := p.values["png"]; ok {
			data, err := trend.PNG(reps)
			if err == nil {
				err = os.WriteFile(file, data, 0o644)
			}
			if err != nil {
				return fail(drill.Wrap(drill.EFAILED, err, "cannot write the trend image %s", file))
			}
		}
		if p.bools["json"] {
			if reps == nil {
				reps = []*drill.Report{}
			}
			return writeJSON(tio.Out, reps, fail)
		}
		printHistory(tio.Out, p.positional[0], reps)
		return exitPassed
	case "report":
		if len(p.positional) != 1 || !drill.ValidDrillID(p.positional[0]) {
			return fail(usageErrorf(usage, "report takes one drill id such as d7k2m9qx"))
		}
		format := p.values["format"]
		if format == "" {
			format = "md"
		}
		if format != "md" && format != "json" {
			return fail(usageErrorf(usage, "%q is not a format: use md or json", clip(format)))
		}
		rep, err := store.Report(ctx, p.positional[0])
		if err != nil {
			return fail(err)
		}
		if format == "json" {
			return writeJSON(tio.Out, rep, fail)
		}
		fmt.Fprint(tio.Out, rep.Markdown())
		return exitPassed
	case "freeze", "unfreeze":
		frozen := verb == "freeze"
		reason := strings.Join(p.positional, " ")
		if frozen && reason == "" {
			return fail(usageErrorf(usage, "say why drills are frozen, e.g. freeze incident 42"))
		}
		if err := store.SetFreeze(ctx, frozen, currentUser(), reason); err != nil {
			return fail(drill.Wrap(drill.ECONFIG, err, "cannot change the freeze"))
		}
		if frozen {
			fmt.Fprintf(tio.Out, "Frozen: no drill or restore starts until `restore-drill unfreeze`, except a restore with --force.\n")
		} else {
			fmt.Fprintln(tio.Out, "Unfrozen: drills and restores may start again.")
		}
		return exitPassed
	}
	return fail(drill.Errorf(drill.EINTERNAL, "unknown state command %s", verb))
}

func printHistory(w io.Writer, app string, reps []*drill.Report) {
	if len(reps) == 0 {
		fmt.Fprintf(w, "No drill of %s is on record yet: `restore-drill run %s` runs one.\n", app, app)
		return
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "DRILL\tSTARTED (UTC)\tMODE\tRESULT\tRESTORE\tTOTAL\tRPO\tTABLES\tCANARY\tCONFIRMED BY")
	for _, r := range reps {
		rpo := "-"
		if r.RPOSeconds != nil {
			rpo = drill.Seconds(*r.RPOSeconds)
		}
		canary := "-"
		if r.Canary.Expected {
			canary = map[bool]string{true: "found", false: "MISSING"}[r.Canary.Found]
		}
		var who []string
		for _, c := range r.Confirmations {
			who = append(who, c.User)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.DrillID, r.StartedAt.UTC().Format("2006-01-02 15:04"), r.Mode, r.Result,
			drill.Seconds(r.RestoreSeconds), drill.Seconds(r.TotalSeconds), rpo, len(r.Tables), canary, strings.Join(who, ","))
	}
	tw.Flush()
}
