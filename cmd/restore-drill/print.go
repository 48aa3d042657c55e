package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/restore-drill/restore-drill/drill"
)

// printer is the terminal sink: one line per step event, progress at most
// every two seconds per step.
type printer struct {
	mu           sync.Mutex
	w            io.Writer
	lastProgress map[string]time.Time
}

func newPrinter(w io.Writer) *printer {
	return &printer{w: w, lastProgress: map[string]time.Time{}}
}

func (p *printer) Event(e drill.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ts := e.At.Local().Format("15:04:05")
	switch e.Kind {
	case drill.StepStarted:
		fmt.Fprintf(p.w, "%s  …  %s\n", ts, e.Step)
	case drill.StepProgress:
		if time.Since(p.lastProgress[e.Step]) < 2*time.Second {
			return
		}
		p.lastProgress[e.Step] = time.Now()
		fmt.Fprintf(p.w, "%s     %s: %s\n", ts, e.Step, progressText(e))
	case drill.StepSucceeded:
		fmt.Fprintf(p.w, "%s  ✓  %s (%s)\n", ts, e.Step, e.Duration.Round(time.Millisecond))
	case drill.StepFailed:
		fmt.Fprintf(p.w, "%s  ✗  %s (%s): %s\n", ts, e.Step, e.Duration.Round(time.Millisecond), e.Message)
	case drill.StepSkipped:
		fmt.Fprintf(p.w, "%s  –  %s skipped: %s\n", ts, e.Step, e.Message)
	case drill.StepUndone:
		fmt.Fprintf(p.w, "%s  ↺  undone: %s\n", ts, e.Step)
	case drill.StepUndoFailed:
		fmt.Fprintf(p.w, "%s  !! %s\n", ts, e.Message)
	case drill.DrillNote:
		fmt.Fprintf(p.w, "%s  !  %s\n", ts, e.Message)
	case drill.DrillConfirmed:
		fmt.Fprintf(p.w, "%s  ✓  %s\n", ts, e.Message)
	}
}

func progressText(e drill.Event) string {
	parts := []string{}
	if e.Message != "" {
		parts = append(parts, e.Message)
	}
	if pct := e.Percent(); pct >= 0 {
		parts = append(parts, fmt.Sprintf("%.0f%%", pct))
	} else if e.Bytes > 0 {
		parts = append(parts, drill.HumanBytes(e.Bytes))
	}
	return strings.Join(parts, ", ")
}

// printReport prints the drill's evidence for people.
func printReport(w io.Writer, r *drill.Report) {
	what := fmt.Sprintf("Drill %s of %s (%s, %s mode)", r.DrillID, r.App, r.Provider, r.Mode)
	if r.Mode == drill.ModeRestore {
		what = fmt.Sprintf("Restore %s of %s (%s, into %s)", r.DrillID, r.App, r.Provider, r.Into)
	}
	fmt.Fprintf(w, "\n%s: %s\n", what, strings.ToUpper(string(r.Result)))
	if why := r.Why(); why != "" {
		fmt.Fprintf(w, "  why:      %s\n", why)
	}
	if r.Backup != nil {
		fresh := ""
		if r.Backup.Fresh {
			fresh = ", captured by this drill"
		}
		fmt.Fprintf(w, "  backup:   %s, %s, taken %s%s\n", r.Backup.ID, drill.HumanBytes(r.Backup.SizeBytes), r.Backup.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"), fresh)
	}
	if r.RPOSeconds != nil {
		fmt.Fprintf(w, "  RPO:      %s (age of the newest backup before this drill)\n", drill.HumanDuration(time.Duration(*r.RPOSeconds*float64(time.Second))))
	} else {
		fmt.Fprintf(w, "  RPO:      unknown: there was no successful backup before this drill\n")
	}
	fmt.Fprintf(w, "  RTO:      restore %s, whole drill %s\n", drill.Seconds(r.RestoreSeconds), drill.Seconds(r.TotalSeconds))
	if r.Canary.Expected {
		fmt.Fprintf(w, "  canary:   %s\n", map[bool]string{true: "found in the restore", false: "MISSING from the restore"}[r.Canary.Found])
	}
	if r.ShowVerification() {
		fmt.Fprintf(w, "  checksums: %s\n", r.Verification)
	}
	for _, c := range r.Checks {
		mark := "ok"
		if !c.OK {
			mark = "FAILED"
		}
		fmt.Fprintf(w, "  check %s: %s: %s\n", c.Name, mark, c.Message)
	}
	for _, c := range r.Confirmations {
		fmt.Fprintf(w, "  confirmed: %s by %s typing %q at %s\n", c.Step, c.User, c.Typed, c.At.UTC().Format(time.RFC3339))
	}
	if len(r.Undone) > 0 {
		fmt.Fprintf(w, "  undone:   %s\n", strings.Join(r.Undone, ", "))
	}
	if len(r.UndoFailed) > 0 {
		fmt.Fprintf(w, "  UNDO FAILED, act by hand: %s\n", strings.Join(r.UndoFailed, ", "))
	}
	if r.SafetyBackup != nil {
		fmt.Fprintf(w, "  safety backup: %s (taken before the restore)\n", r.SafetyBackup.ID)
	}
	if r.NowServing != "" {
		fmt.Fprintf(w, "  now serving %s: %s\n", r.App, r.NowServing)
	}
	if r.KeptDatabase != "" {
		fmt.Fprintf(w, "  kept for forensics: %s (%s)\n", r.KeptDatabase, r.RemoveKept)
	}
	if r.ProductionState != "" {
		fmt.Fprintf(w, "  production: %s\n", r.ProductionState)
	}
	if r.Rollback != "" {
		fmt.Fprintf(w, "  to roll back: %s\n", r.Rollback)
	}
	for _, f := range r.Freshness {
		fmt.Fprintf(w, "  newest data: %s\n", f.Line(r.StartedAt, "the restore"))
	}
	if r.Kept && r.Scratch != nil {
		fmt.Fprintf(w, "  kept:     %s (drop it when done)\n", r.Scratch.Name)
	}
	printSchemaDiffs(w, r.SchemaDiffs)
	if len(r.Tables) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  TABLE\tSOURCE ROWS\tRESTORED ROWS\tMATCH")
	for _, t := range r.Tables {
		match := "yes"
		if !t.Match {
			match = "NO: " + t.Problem
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", drill.QuoteIdent(t.Schema)+"."+drill.QuoteIdent(t.Name), rows(t.SourceRows), rows(t.RestoredRows), match)
	}
	tw.Flush()
}

// shownSchemaDiffs is how many schema differences the terminal shows; the
// report (restore-drill report ID) has them all.
const shownSchemaDiffs = 20

// printSchemaDiffs shows each schema difference from both sides.
func printSchemaDiffs(w io.Writer, diffs []drill.SchemaDiff) {
	if len(diffs) == 0 {
		return
	}
	side := func(l string) string {
		if l == "" {
			return "(absent)"
		}
		return l
	}
	fmt.Fprintf(w, "\n  Schema differences (%d):\n", len(diffs))
	for i, d := range diffs {
		if i == shownSchemaDiffs {
			fmt.Fprintf(w, "    … and %d more: restore-drill report shows them all\n", len(diffs)-i)
			break
		}
		fmt.Fprintf(w, "    source:  %s\n    restore: %s\n", side(d.Source), side(d.Restored))
	}
}

func rows(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// backupsReport is the JSON of the backups command.
type backupsReport struct {
	App        string           `json:"app"`
	RPOSeconds *float64         `json:"rpo_seconds"`
	Scheduling bool             `json:"scheduling"`
	Schedules  []drill.Schedule `json:"schedules"`
	Backups    []drill.Backup   `json:"backups"`
}

func backupsJSON(l drill.BackupList, now time.Time) backupsReport {
	r := backupsReport{App: l.App, Scheduling: l.Scheduling, Schedules: l.Schedules, Backups: l.Backups}
	if r.Schedules == nil {
		r.Schedules = []drill.Schedule{}
	}
	if r.Backups == nil {
		r.Backups = []drill.Backup{}
	}
	if b, ok := l.NewestSucceeded(); ok {
		s := now.Sub(*b.FinishedAt).Seconds()
		r.RPOSeconds = &s
	}
	return r
}

func printBackups(w io.Writer, l drill.BackupList, now time.Time) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED (UTC)\tSTATUS\tSIZE\tFINISHED (UTC)")
	for _, b := range l.Backups {
		finished := "-"
		if b.FinishedAt != nil {
			finished = b.FinishedAt.UTC().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.ID, b.CreatedAt.UTC().Format("2006-01-02 15:04:05"), b.Status, drill.HumanBytes(b.SizeBytes), finished)
	}
	tw.Flush()
	if len(l.Backups) == 0 {
		fmt.Fprintf(w, "%s has no backups yet: `restore-drill run %s` captures one.\n", l.App, l.App)
	}
	if b, ok := l.NewestSucceeded(); ok {
		fmt.Fprintf(w, "\nRPO: the newest successful backup, %s, is %s old.\n", b.ID, now.Sub(*b.FinishedAt).Round(time.Second))
	}
	switch {
	case !l.Scheduling:
		fmt.Fprintln(w, "Schedules: this platform takes no automatic backups.")
	case len(l.Schedules) == 0:
		fmt.Fprintln(w, "Schedules: NONE. Backups are not automated.")
	default:
		for _, s := range l.Schedules {
			fmt.Fprintf(w, "Schedule: daily at %02d:00 %s\n", s.Hour, s.Timezone)
		}
	}
}

// redactingHandler removes credentials from every log record.
type redactingHandler struct {
	slog.Handler
	redactor *drill.Redactor
}

func (h redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.redactor.Redact(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		// Errors and other values print through fmt: redact their text.
		out.AddAttrs(h.redact(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.redact(a)
	}
	return redactingHandler{h.Handler.WithAttrs(clean), h.redactor}
}

// redact removes credentials from an attribute's text.
func (h redactingHandler) redact(a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString, slog.KindAny:
		a.Value = slog.StringValue(h.redactor.Redact(a.Value.String()))
	}
	return a
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{h.Handler.WithGroup(name), h.redactor}
}
