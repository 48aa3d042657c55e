package drill

import (
	"fmt"
	"strings"
	"time"
)

// Markdown renders the report as the full evidence for auditors: the
// verdict, the numbers, every step with its time, the checksums, who
// confirmed what, and what was undone.
func (r *Report) Markdown() string {
	var b strings.Builder
	title := "Restore drill"
	if r.Mode == ModeRestore {
		title = "Emergency restore"
	}
	fmt.Fprintf(&b, "# %s %s of %s: %s\n\n", title, r.DrillID, r.App, strings.ToUpper(string(r.Result)))
	if why := r.Why(); why != "" {
		fmt.Fprintf(&b, "**%s**\n\n", mdEscape(why))
	}
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, v) }
	b.WriteString("| | |\n|---|---|\n")
	row("provider", r.Provider)
	row("mode", string(r.Mode))
	row("requested by", mdEscape(r.Requester))
	row("started", r.StartedAt.UTC().Format(time.RFC3339))
	row("ended", r.EndedAt.UTC().Format(time.RFC3339))
	if r.Backup != nil {
		row("backup", fmt.Sprintf("%s, %d bytes, taken %s", r.Backup.ID, r.Backup.SizeBytes, r.Backup.CreatedAt.UTC().Format(time.RFC3339)))
	}
	if r.RPOSeconds != nil {
		row("RPO", fmt.Sprintf("%.0f s, %s (age of the newest backup before the drill)", *r.RPOSeconds, HumanDuration(time.Duration(*r.RPOSeconds*float64(time.Second)))))
	} else {
		row("RPO", "unknown: no backup before the drill")
	}
	row("RTO", fmt.Sprintf("restore %.1f s, whole drill %.1f s", r.RestoreSeconds, r.TotalSeconds))
	if r.Canary.Expected {
		row("canary", map[bool]string{true: "found in the restore", false: "MISSING"}[r.Canary.Found])
	}
	if r.ShowVerification() {
		row("checksums", mdEscape(r.Verification))
	}
	if r.SafetyBackup != nil {
		row("safety backup", r.SafetyBackup.ID)
	}
	if r.NowServing != "" {
		row("now serving", mdEscape(r.NowServing))
	}
	if r.ProductionState != "" {
		row("production", mdEscape(r.ProductionState))
	}
	if r.Rollback != "" {
		row("roll back", "`"+r.Rollback+"`")
	}
	for _, f := range r.Freshness {
		row("newest data", mdEscape(f.Line(r.StartedAt, "the restore")))
	}
	if r.APICalls > 0 {
		row("API calls", fmt.Sprint(r.APICalls))
	}
	if len(r.Checks) > 0 {
		b.WriteString("\n## Preflight checks\n\n")
		for _, c := range r.Checks {
			mark := "ok"
			if !c.OK {
				mark = "**FAILED**"
			}
			fmt.Fprintf(&b, "- %s: %s: %s\n", c.Name, mark, mdEscape(c.Message))
		}
	}
	b.WriteString("\n## Steps\n\n| step | status | seconds | note |\n|---|---|---|---|\n")
	for _, s := range r.Steps {
		note := s.Error
		if note == "" {
			note = s.Note
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %s |\n", s.Name, s.Status, s.Seconds, mdEscape(note))
	}
	b.WriteString("\n## Confirmations\n\n")
	if len(r.Confirmations) == 0 {
		b.WriteString("None were needed.\n")
	}
	for _, c := range r.Confirmations {
		fmt.Fprintf(&b, "- %s: %s typed `%s` at %s\n", c.Step, mdEscape(c.User), c.Typed, c.At.UTC().Format(time.RFC3339))
	}
	b.WriteString("\n## Undo\n\n")
	switch {
	case len(r.Undone) == 0 && len(r.UndoFailed) == 0:
		b.WriteString("Nothing needed undoing.\n")
	default:
		if len(r.Undone) > 0 {
			fmt.Fprintf(&b, "Undone: %s.\n", strings.Join(r.Undone, ", "))
		}
		if len(r.UndoFailed) > 0 {
			fmt.Fprintf(&b, "**Undo FAILED: %s.**\n", strings.Join(r.UndoFailed, ", "))
		}
	}
	if len(r.SchemaDiffs) > 0 {
		b.WriteString("\n## Schema differences\n\n| source | restore |\n|---|---|\n")
		for _, d := range r.SchemaDiffs {
			fmt.Fprintf(&b, "| %s | %s |\n", mdSide(d.Source), mdSide(d.Restored))
		}
	}
	if len(r.Tables) > 0 {
		b.WriteString("\n## Checksums\n\n| table | source rows | restored rows | source hash | restored hash | match |\n|---|---|---|---|---|---|\n")
		for _, t := range r.Tables {
			match := "yes"
			if !t.Match {
				match = "**no**: " + mdEscape(t.Problem)
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s |\n", mdEscape(t.Key()), t.SourceRows, t.RestoredRows, t.SourceHash, t.RestoredHash, match)
		}
	}
	return b.String()
}

// mdEscape keeps table cells and emphasis intact.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "*", `\*`, "_", `\_`).Replace(s)
}

// mdSide is one side of a schema difference as a table cell.
func mdSide(l string) string {
	if l == "" {
		return "*(absent)*"
	}
	return "`" + strings.NewReplacer("|", `\|`, "`", "'", "\n", " ").Replace(l) + "`"
}
