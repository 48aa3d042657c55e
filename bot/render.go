package bot

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/restore-drill/restore-drill/drill"
)

// Limits the renderer keeps under (Slack's are 3000 per section and 50
// blocks per message).
const (
	sectionLimit = 2900
	blocksLimit  = 45
	textLimit    = 3000
)

// slackTime shows t in each reader's own time zone (Slack's date
// formatting), with UTC as the fallback where it cannot.
func slackTime(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
}

// clipRunes cuts s to at most n runes. It never cuts inside a word: a
// credential cut in half (a URL before its @, part of a secret) would no
// longer be recognised by the redactor, so the cut word goes whole.
// Redact before clipping all the same.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	keep := r[:n-1]
	if !unicode.IsSpace(r[n-1]) {
		i := len(keep)
		for i > 0 && !unicode.IsSpace(keep[i-1]) {
			i--
		}
		keep = keep[:i]
	}
	return string(keep) + "…"
}

// splitText cuts mrkdwn text into pieces of at most limit runes, at line
// ends where possible.
func splitText(s string, limit int) []string {
	var out []string
	var cur strings.Builder
	n := 0
	flush := func() {
		if n > 0 {
			out = append(out, cur.String())
			cur.Reset()
			n = 0
		}
	}
	for _, line := range strings.Split(s, "\n") {
		line = clipRunes(line, limit)
		l := utf8.RuneCountInString(line)
		if n > 0 && n+1+l > limit {
			flush()
		}
		if n > 0 {
			cur.WriteByte('\n')
			n++
		}
		cur.WriteString(line)
		n += l
	}
	flush()
	return out
}

// sections renders mrkdwn text as as many section blocks as it needs.
func sections(s string) []slack.Block {
	var out []slack.Block
	for _, part := range splitText(s, sectionLimit) {
		if strings.TrimSpace(part) == "" {
			continue
		}
		out = append(out, slack.NewSectionBlock(mrkdwn(part), nil, nil))
	}
	return out
}

// capBlocks keeps at most blocksLimit blocks (Slack takes 50 per
// message), the last one saying what was cut.
func capBlocks(blocks []slack.Block) []slack.Block {
	if len(blocks) <= blocksLimit {
		return blocks
	}
	out := append([]slack.Block(nil), blocks[:blocksLimit-1]...)
	return append(out, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("_… %d more blocks cut: Slack shows at most 50 per message._", len(blocks)-blocksLimit+1))))
}

// textMessage is a message of mrkdwn text, within Slack's block limit.
func textMessage(s string) Message {
	return Message{Text: clipRunes(s, textLimit), Blocks: capBlocks(sections(s))}
}

// longTextMessage is a message of mrkdwn text with as many blocks as it
// needs: only for an ack, which posts it in several messages when it is
// too big (ackPayload).
func longTextMessage(s string) Message {
	return Message{Text: clipRunes(s, textLimit), Blocks: sections(s)}
}

func code(s string) string { return "`" + Escape(strings.ReplaceAll(s, "`", "'")) + "`" }

func user(id string) string {
	if id == "" {
		return "someone"
	}
	if strings.HasPrefix(id, "U") || strings.HasPrefix(id, "W") {
		return "<@" + Escape(id) + ">"
	}
	return Escape(id)
}

// usageMessage says what is wrong and the usage line; a code span holds
// no backtick, so the pointer to help goes after it.
func usageMessage(err *UsageError) Message {
	s := fmt.Sprintf(":warning: %s.\nUsage: %s", err.Problem, code(err.Usage()))
	if _, ok := Lookup(err.Verb); !ok {
		s += fmt.Sprintf(" (see %s)", code(SlashCommand+" help"))
	}
	return textMessage(s)
}

func errorMessage(err error) Message {
	return textMessage(":warning: " + Escape(drill.ErrorMessage(err)))
}

func progressText(e drill.Event) string {
	var parts []string
	if e.Message != "" {
		parts = append(parts, Escape(e.Message))
	}
	if pct := e.Percent(); pct >= 0 {
		parts = append(parts, fmt.Sprintf("%.0f%% of %s", pct, drill.HumanBytes(e.Total)))
	} else if e.Bytes > 0 {
		parts = append(parts, drill.HumanBytes(e.Bytes))
	}
	return strings.Join(parts, ", ")
}

// drillView is what the parent message shows.
type drillView struct {
	ID, App, Verb, Requester string
	Mode                     drill.Mode
	Backup                   string
	// Into is an emergency restore's target (IntoNew or IntoProduction).
	Into     string
	Step     string
	Progress string
	Started  time.Time
	Report   *drill.Report
	// Scheduled: a schedule started it, on behalf of Requester.
	Scheduled bool
	// Waiting is the confirmation the drill waits for, if it does.
	Waiting *waitView
}

// waitView is a confirmation a drill waits for: what, until when, and a
// link to its prompt (empty when none is known).
type waitView struct {
	Action string
	Until  time.Time
	Link   string
}

// text is the waiting state, as the parent and status show it.
func (w *waitView) text() string {
	s := fmt.Sprintf(":double_vertical_bar: *waiting for confirmation* of *%s* until %s", Escape(w.Action), slackTime(w.Until))
	if w.Link != "" {
		s += fmt.Sprintf(" — <%s|answer it here>", w.Link)
	}
	return s
}

func (v drillView) restore() bool { return v.Verb == VerbRestore }

// intoText says where an emergency restore goes, in words.
func intoText(into string) string {
	if into == IntoProduction {
		return "*IN PLACE onto production*"
	}
	return "into a new database"
}

func (v drillView) parent() Message {
	return v.parentIn("")
}

// parentIn is the parent message; origin, when set, is the channel whose
// thread it mirrors (the incident channel's copy).
func (v drillView) parentIn(origin string) Message {
	by := "requested by " + user(v.Requester)
	if v.Scheduled {
		by = "scheduled by " + user(v.Requester)
	}
	title := fmt.Sprintf("*Drill %s* of %s — %s mode, backup %s, %s", code(v.ID), code(v.App), v.Mode, code(v.Backup), by)
	label := "Drill"
	if v.restore() {
		label = "Emergency restore"
		title = fmt.Sprintf(":rotating_light: *Emergency restore %s* of %s — backup %s %s, requested by %s", code(v.ID), code(v.App), code(v.Backup), intoText(v.Into), user(v.Requester))
	}
	if origin != "" {
		title += fmt.Sprintf("\nStarted in <#%s>: its thread there has the plan, the confirmations and every step.", Escape(origin))
	}
	var status string
	switch {
	case v.Report == nil && v.Waiting != nil:
		status = v.Waiting.text()
	case v.Report == nil && v.Step == "":
		status = ":hourglass_flowing_sand: starting…"
	case v.Report == nil:
		status = ":arrows_counterclockwise: running " + code(v.Step)
		if v.Progress != "" {
			status += " (" + v.Progress + ")"
		}
	default:
		status = verdictLine(v.Report)
		if v.restore() && v.Report.ProductionState != "" {
			status += "\n*Production:* " + Escape(v.Report.ProductionState)
		}
	}
	text := title + "\n" + status
	blocks := sections(text)
	if v.Report == nil {
		blocks = append(blocks, cancelActions(v))
	}
	return Message{Text: clipRunes(fmt.Sprintf("%s %s of %s: %s", label, v.ID, v.App, stripMarks(status)), textLimit), Blocks: blocks}
}

// cancelActions is the parent's Cancel drill button, for as long as the
// drill runs: slash commands cannot be typed in a thread. Its dialog asks
// "are you sure"; only someone allowed to run drills may use it.
func cancelActions(v drillView) slack.Block {
	what := "drill"
	if v.restore() {
		what = "emergency restore"
	}
	btn := slack.NewButtonBlockElement(actionCancel, v.ID, plain("Cancel "+what))
	btn.Style = slack.StyleDanger
	btn.Confirm = slack.NewConfirmationBlockObject(plain(clipRunes("Cancel "+what+" "+v.ID+"?", 100)),
		plain(clipRunes(fmt.Sprintf("The %s of %s stops and its undo stack runs: whatever it changed is put back.", what, v.App), 300)),
		plain("Cancel it"), plain("Keep it running"))
	return slack.NewActionBlock(parentActionsB, btn)
}

func stripMarks(s string) string {
	return strings.NewReplacer("*", "", "`", "", ":white_check_mark: ", "", ":x: ", "", ":no_entry_sign: ", "", ":double_vertical_bar: ", "", ":arrows_counterclockwise: ", "", ":hourglass_flowing_sand: ", "").Replace(s)
}

func verdictLine(r *drill.Report) string {
	if r.Cancelled {
		by := ""
		if r.CancelledBy != "" {
			by = " by " + user(r.CancelledBy)
		}
		return fmt.Sprintf(":no_entry_sign: *CANCELLED*%s after %s", by, drill.Seconds(r.TotalSeconds))
	}
	if r.Result == drill.Passed {
		return fmt.Sprintf(":white_check_mark: *PASSED* in %s", drill.Seconds(r.TotalSeconds))
	}
	return fmt.Sprintf(":x: *FAILED* after %s: %s", drill.Seconds(r.TotalSeconds), Escape(r.Why()))
}

var stepMarks = map[drill.EventKind]string{
	drill.StepSucceeded: ":white_check_mark:", drill.StepFailed: ":x:", drill.StepSkipped: ":fast_forward:",
	drill.StepUndone: ":leftwards_arrow_with_hook:", drill.StepUndoFailed: ":rotating_light:", drill.DrillNote: ":information_source:",
}

// stepText is the line of a finished, failed, skipped or undone step, or a
// note, in a steps reply; last is the step's last progress, if any.
func stepText(e drill.Event, last string) string {
	mark := stepMarks[e.Kind]
	var s string
	switch e.Kind {
	case drill.StepSucceeded:
		s = fmt.Sprintf("%s %s done in %s", mark, code(e.Step), drill.RoundDuration(e.Duration))
	case drill.StepFailed:
		s = fmt.Sprintf("%s %s failed after %s: %s", mark, code(e.Step), drill.RoundDuration(e.Duration), Escape(e.Message))
	case drill.StepSkipped:
		s = fmt.Sprintf("%s %s skipped: %s", mark, code(e.Step), Escape(e.Message))
	case drill.StepUndone:
		s = fmt.Sprintf("%s undone: %s", mark, code(e.Step))
	case drill.StepUndoFailed:
		s = fmt.Sprintf("%s *%s*", mark, Escape(e.Message))
	default:
		s = fmt.Sprintf("%s %s", mark, Escape(e.Message))
	}
	if last != "" && (e.Kind == drill.StepSucceeded || e.Kind == drill.StepFailed) {
		s += " — " + last
	}
	return s
}

// schemaDiffLines shows each schema difference from both sides, as a diff
// does: "-" the source's line, "+" the restore's.
func schemaDiffLines(diffs []drill.SchemaDiff) []string {
	if len(diffs) == 0 {
		return nil
	}
	lines := []string{"", fmt.Sprintf("✗ schema: %s (- source, + restore)", drill.Plural(len(diffs), "difference", "differences"))}
	side := func(mark, l string) string {
		if l == "" {
			l = "(absent)"
		}
		return Escape(strings.ReplaceAll(mark+" "+clipRunes(l, 300), "```", "'''"))
	}
	for _, d := range diffs {
		lines = append(lines, side("-", d.Source), side("+", d.Restored))
	}
	return lines
}

// verdictMessage is the final result, broadcast to the channel.
func verdictMessage(r *drill.Report) Message {
	if r.Mode == drill.ModeRestore {
		return restoreVerdictMessage(r)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Drill %s of %s:* %s\n", code(r.DrillID), code(r.App), verdictLine(r))
	if r.Backup != nil {
		fmt.Fprintf(&b, "• Backup %s, %s\n", code(r.Backup.ID), drill.HumanBytes(r.Backup.SizeBytes))
	}
	if r.Cancelled {
		b.WriteString("• RTO: none, a cancelled drill measures no restore\n")
	} else {
		fmt.Fprintf(&b, "• RTO: restore %s, whole drill %s\n", drill.Seconds(r.RestoreSeconds), drill.Seconds(r.TotalSeconds))
	}
	if r.RPOSeconds != nil {
		fmt.Fprintf(&b, "• RPO: %s (age of the newest backup before the drill)\n", drill.Seconds(*r.RPOSeconds))
	} else {
		b.WriteString("• RPO: unknown, no backup existed before the drill\n")
	}
	if r.Canary.Expected {
		fmt.Fprintf(&b, "• Canary: %s\n", map[bool]string{true: "found in the restore", false: "*missing* from the restore"}[r.Canary.Found])
	}
	if r.ShowVerification() {
		fmt.Fprintf(&b, "• Checksums: %s\n", Escape(r.Verification))
	}
	for _, c := range r.Checks {
		if !c.OK {
			fmt.Fprintf(&b, "• :warning: %s\n", Escape(c.Message))
		}
	}
	writeConfirmationsAndUndo(&b, r)
	if r.Kept && r.Scratch != nil {
		fmt.Fprintf(&b, "• Kept %s: destroy it when done\n", code(r.Scratch.Name))
	}
	return Message{Text: clipRunes(fmt.Sprintf("Drill %s of %s %s", r.DrillID, r.App, resultWord(r)), textLimit), Blocks: sections(b.String())}
}

// writeConfirmationsAndUndo lists, in a verdict, who confirmed what and
// what was undone, or failed to be.
func writeConfirmationsAndUndo(b *strings.Builder, r *drill.Report) {
	for _, c := range r.Confirmations {
		fmt.Fprintf(b, "• %s confirmed %s by typing %s at %s\n", user(c.User), code(c.Step), code(c.Typed), slackTime(c.At))
	}
	if len(r.Undone) > 0 {
		fmt.Fprintf(b, "• Undone: %s\n", Escape(strings.Join(r.Undone, ", ")))
	} else if r.Cancelled && len(r.UndoFailed) == 0 {
		b.WriteString("• Nothing needed undoing\n")
	}
	if len(r.UndoFailed) > 0 {
		fmt.Fprintf(b, "• :rotating_light: *UNDO FAILED, act by hand:* %s\n", Escape(strings.Join(r.UndoFailed, ", ")))
	}
}

// restoreVerdictMessage is an emergency restore's verdict: what serves the
// app now, how long the restore took, the safety backup, the kept
// database and how to remove it, the rollback command, and in every case
// the state production is in.
func restoreVerdictMessage(r *drill.Report) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "*Emergency restore %s of %s:* %s\n", code(r.DrillID), code(r.App), verdictLine(r))
	if r.ProductionState != "" {
		fmt.Fprintf(&b, "*Production:* %s\n", Escape(r.ProductionState))
	}
	if r.NowServing != "" {
		fmt.Fprintf(&b, "• Now serving %s (its `DATABASE_URL`): %s\n", code(r.App), code(r.NowServing))
	}
	if r.Backup != nil && r.Cancelled {
		fmt.Fprintf(&b, "• Backup %s (%s, taken %s): the restore %s was cancelled; what it had done is undone (below)\n", code(r.Backup.ID), drill.HumanBytes(r.Backup.SizeBytes), slackTime(r.Backup.CreatedAt), intoText(string(r.Into)))
	} else if r.Backup != nil {
		fmt.Fprintf(&b, "• Backup %s (%s, taken %s) restored %s", code(r.Backup.ID), drill.HumanBytes(r.Backup.SizeBytes), slackTime(r.Backup.CreatedAt), intoText(string(r.Into)))
		if r.RestoreSeconds > 0 {
			fmt.Fprintf(&b, "; restore time %s", drill.Seconds(r.RestoreSeconds))
		}
		fmt.Fprintf(&b, ", whole restore %s\n", drill.Seconds(r.TotalSeconds))
	}
	if r.SafetyBackup != nil {
		fmt.Fprintf(&b, "• Safety backup: %s (%s), taken before anything changed\n", code(r.SafetyBackup.ID), drill.HumanBytes(r.SafetyBackup.SizeBytes))
	} else if hasSkipped(r, drill.StepSafetyBackup) {
		b.WriteString("• *No safety backup* (--no-safety-backup): this restore cannot be undone\n")
	}
	if r.KeptDatabase != "" {
		fmt.Fprintf(&b, "• Kept for forensics (the damaged database): %s — remove it %s\n", code(r.KeptDatabase), Escape(r.RemoveKept))
	}
	if r.Result == drill.Passed && r.Rollback != "" {
		fmt.Fprintf(&b, "• To roll back: %s\n", code(slashCommand(r.Rollback)))
	}
	if r.ShowVerification() {
		fmt.Fprintf(&b, "• Checksums: %s\n", Escape(r.Verification))
	}
	writeConfirmationsAndUndo(&b, r)
	head := fmt.Sprintf("Emergency restore %s of %s %s", r.DrillID, r.App, resultWord(r))
	if r.ProductionState != "" {
		head += ": " + r.ProductionState
	}
	return Message{Text: clipRunes(head, textLimit), Blocks: sections(b.String())}
}

// resultWord is a report's result in capitals: PASSED, FAILED or
// CANCELLED.
func resultWord(r *drill.Report) string {
	if r.Cancelled {
		return "CANCELLED"
	}
	return strings.ToUpper(string(r.Result))
}

// slashCommand turns a terminal command line of the drill's
// ("restore-drill restore …") into the slash command that does the same
// in Slack.
func slashCommand(line string) string {
	if rest, ok := strings.CutPrefix(line, "restore-drill "); ok {
		return SlashCommand + " " + rest
	}
	return line
}

func hasSkipped(r *drill.Report, step string) bool {
	for _, s := range r.Steps {
		if s.Name == step && s.Status == drill.StatusSkipped {
			return true
		}
	}
	return false
}

// captureMessage says which backup capture took: its id, size and time.
func captureMessage(u, app string, bk drill.Backup) Message {
	at := bk.CreatedAt
	if bk.FinishedAt != nil {
		at = *bk.FinishedAt
	}
	return textMessage(fmt.Sprintf(":floppy_disk: %s captured backup %s of %s: %s, taken at %s. Restore it with `%s restore %s %s`.",
		user(u), code(bk.ID), code(app), drill.HumanBytes(bk.SizeBytes), slackTime(at), SlashCommand, Escape(app), Escape(bk.ID)))
}

// Confirmation prompt rendering.

const (
	actionConfirm  = "restore_drill_confirm"
	actionCancel   = "restore_drill_cancel"
	parentActionsB = "drill_actions"
	callbackTyped  = "restore_drill_typed"
	inputBlockID   = "typed_confirmation"
	inputActionID  = "typed"
	promptActionsB = "confirm_actions"
)

func promptText(p Pending) string {
	var b strings.Builder
	fmt.Fprintf(&b, ":warning: *Confirmation needed* for drill %s of %s: *%s*\n", code(p.DrillID), code(p.App), Escape(p.Action))
	for _, l := range p.Plan {
		fmt.Fprintf(&b, "• %s\n", Escape(l))
	}
	fmt.Fprintf(&b, "Requested by %s. Type %s to confirm; expires at %s.", user(p.Requester), code(p.Expect), slackTime(p.ExpiresAt))
	return b.String()
}

// promptMessage is the confirmation prompt; while pending it carries the
// danger button, afterwards the outcome instead.
func promptMessage(p Pending) Message {
	blocks := sections(promptText(p))
	if p.State == StatePending {
		btn := slack.NewButtonBlockElement(actionConfirm, p.ID, plain("Confirm…"))
		btn.Style = slack.StyleDanger
		blocks = append(blocks, slack.NewActionBlock(promptActionsB, btn))
	} else {
		blocks = append(blocks, sections(outcomeText(p))...)
	}
	return Message{Text: clipRunes(fmt.Sprintf("Confirmation needed: %s (type %s)", p.Action, p.Expect), textLimit), Blocks: blocks}
}

// outcomeText is what became of a prompt: who confirmed by typing what
// (the record of the typed confirmation), or why nobody did.
func outcomeText(p Pending) string {
	switch p.State {
	case StateConfirmed:
		return fmt.Sprintf(":white_check_mark: %s confirmed *%s* by typing %s at %s.", user(p.By), Escape(p.Action), code(p.Typed), slackTime(p.At))
	case StateExpired:
		return fmt.Sprintf(":hourglass: *Expired* at %s: nobody confirmed in time, so the confirmation expired and the drill undoes what it did.", slackTime(p.ExpiresAt))
	}
	if p.By != "" {
		return fmt.Sprintf(":no_entry_sign: *Cancelled* by %s: the drill stopped before this was confirmed, and undoes what it did.", user(p.By))
	}
	return ":no_entry_sign: *Cancelled*: the drill stopped before this was confirmed."
}

func modalView(p Pending) slack.ModalViewRequest {
	input := slack.NewInputBlock(inputBlockID, plain(clipRunes("Type "+p.Expect+" to confirm", 150)), nil,
		slack.NewPlainTextInputBlockElement(plain(p.Expect), inputActionID))
	blocks := append(sections(clipRunes(promptText(p), 2*sectionLimit)), input)
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: callbackTyped, PrivateMetadata: p.ID,
		Title: plain("Confirm"), Submit: plain("Confirm"), Close: plain("Close"),
		Blocks: slack.Blocks{BlockSet: blocks},
	}
}

func backupsMessage(l drill.BackupList, now time.Time) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "*Backups of %s*\n", code(l.App))
	if len(l.Backups) == 0 {
		b.WriteString("No backups.\n")
	}
	start := max(0, len(l.Backups)-40)
	if start > 0 {
		fmt.Fprintf(&b, "_%d older backups not shown_\n", start)
	}
	for _, x := range l.Backups[start:] {
		fmt.Fprintf(&b, "• %s %s %s, %s old\n", code(x.ID), x.Status, drill.HumanBytes(x.SizeBytes), drill.RoundDuration(now.Sub(x.CreatedAt)))
	}
	for _, s := range l.Schedules {
		fmt.Fprintf(&b, "Schedule: daily at %02d:00 %s\n", s.Hour, Escape(s.Timezone))
	}
	if l.Scheduling && len(l.Schedules) == 0 {
		b.WriteString(":warning: No backup schedule.\n")
	}
	if n, ok := l.NewestSucceeded(); ok {
		age := now.Sub(*n.FinishedAt)
		flag := ""
		if age > drill.DefaultMaxBackupAge {
			flag = " :warning: stale"
		}
		fmt.Fprintf(&b, "RPO: newest successful backup %s is %s old%s\n", code(n.ID), drill.RoundDuration(age), flag)
	}
	return textMessage(b.String())
}

func planMessage(p *drill.Plan) Message {
	var b strings.Builder
	fmt.Fprintf(&b, "*Plan for a %s drill of %s* (%s), about %s\n", p.Mode, code(p.App), Escape(p.Provider), drill.RoundDuration(p.Estimate))
	if p.Refusal != "" {
		fmt.Fprintf(&b, ":no_entry: %s\n", Escape(p.Refusal))
	}
	if p.Backup != nil {
		fmt.Fprintf(&b, "Backup %s, %s old\n", code(p.Backup.ID), drill.RoundDuration(p.BackupAge))
	}
	for i, s := range p.Steps {
		c := ""
		if s.Confirm {
			c = " _(typed confirmation)_"
		}
		fmt.Fprintf(&b, "%d. %s%s\n", i+1, Escape(s.What), c)
	}
	for _, c := range p.Checks {
		if !c.OK {
			fmt.Fprintf(&b, ":warning: %s\n", Escape(c.Message))
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&b, ":information_source: %s\n", Escape(n))
	}
	return textMessage(b.String())
}
