// Package bot is the Slack adapter of restore-drill: it turns /restore-drill
// commands, button clicks and modal submissions into drill calls, and drill
// events into Slack messages, nothing more. Slack is reached only through
// Transport (Socket Mode and the Web API in production, a terminal in the
// console adapter); the drills run through Engine.
package bot

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/schedule"
)

// Verbs of the /restore-drill command.
const (
	VerbHelp       = "help"
	VerbBackups    = "backups"
	VerbPlan       = "plan"
	VerbRun        = "run"
	VerbStatus     = "status"
	VerbCancel     = "cancel"
	VerbHistory    = "history"
	VerbRestore    = "restore"
	VerbCapture    = "capture"
	VerbFreeze     = "freeze"
	VerbUnfreeze   = "unfreeze"
	VerbUnlock     = "unlock"
	VerbSchedule   = "schedule"
	VerbSchedules  = "schedules"
	VerbUnschedule = "unschedule"
)

// MaxReasonLength is the longest freeze reason.
const MaxReasonLength = 200

// SlashCommand is the command the Slack app registers.
const SlashCommand = "/restore-drill"

// MaxCommandLength is the longest command text the parser reads.
const MaxCommandLength = 400

// Definition describes one verb: the registry help and usage replies are
// generated from.
type Definition struct {
	Name        string
	Usage       string
	Description string
	Examples    []string
	// Destructive verbs change something and need an authorized user.
	Destructive bool
}

// Definitions returns the command registry, in the order help lists it.
func Definitions() []Definition {
	return []Definition{
		{Name: VerbHelp, Usage: "help", Description: "Show this help."},
		{Name: VerbBackups, Usage: "backups APP", Description: "List APP's backups and schedules, and how old the newest is (RPO).",
			Examples: []string{"backups my-app"}},
		{Name: VerbPlan, Usage: "plan APP [--mode verify|full] [--backup fresh|latest|ID]", Description: "Say what a drill would do, changing nothing.",
			Examples: []string{"plan my-app --mode full"}},
		{Name: VerbRun, Usage: "run APP [--mode verify|full] [--backup fresh|latest|ID] [--keep]", Destructive: true,
			Description: "Run a restore drill: restore a backup onto a scratch database and compare checksums; full mode also promotes it and back, after typed confirmations.",
			Examples:    []string{"run my-app", "run my-app --mode full --backup b002"}},
		{Name: VerbStatus, Usage: "status [DRILL]", Description: "Show the drills running now, or one drill.",
			Examples: []string{"status", "status d7k2m9qx"}},
		{Name: VerbCancel, Usage: "cancel DRILL", Destructive: true, Description: "Cancel a running drill; its undo stack runs.",
			Examples: []string{"cancel d7k2m9qx"}},
		{Name: VerbHistory, Usage: "history APP", Description: "List APP's last drills (result, RTO, RPO, canary, tables, who confirmed) with a trend chart.",
			Examples: []string{"history my-app"}},
		{Name: VerbRestore, Usage: "restore APP BACKUP [--into new|production] [--no-safety-backup] [--force]", Destructive: true,
			Description: "Emergency restore of BACKUP, after a safety backup and a typed confirmation.",
			Examples:    []string{"restore my-app b002", "restore my-app b002 --into production"}},
		{Name: VerbCapture, Usage: "capture APP", Destructive: true, Description: "Capture a new backup of APP now.",
			Examples: []string{"capture my-app"}},
		{Name: VerbFreeze, Usage: "freeze REASON...", Destructive: true,
			Description: "Stop every new drill, restore and capture during an incident (a restore with --force still runs, and is logged).",
			Examples:    []string{"freeze incident 4312: database failover"}},
		{Name: VerbUnfreeze, Usage: "unfreeze", Destructive: true, Description: "Lift the freeze."},
		{Name: VerbUnlock, Usage: "unlock APP", Destructive: true,
			Description: "Free APP from a drill whose process died, undoing what it left; a live drill is only named.",
			Examples:    []string{"unlock my-app"}},
		{Name: VerbSchedule, Usage: `schedule APP daily|weekly|"CRON" [--mode verify|full] [--channel #CHANNEL]`, Destructive: true,
			Description: "Drill APP on a schedule (UTC; daily and weekly run at 04:00), posting in the channel; full mode still asks a person for every confirmation.",
			Examples:    []string{"schedule my-app weekly", `schedule my-app "30 2 * * 0" --mode full --channel C0PS0001`}},
		{Name: VerbSchedules, Usage: "schedules", Description: "List the schedules and when each runs next."},
		{Name: VerbUnschedule, Usage: "unschedule APP", Destructive: true, Description: "Remove APP's schedule.",
			Examples: []string{"unschedule my-app"}},
	}
}

// Lookup returns the definition of verb.
func Lookup(verb string) (Definition, bool) {
	for _, d := range Definitions() {
		if d.Name == verb {
			return d, true
		}
	}
	return Definition{}, false
}

// Into says where an emergency restore goes.
const (
	IntoNew        = "new"
	IntoProduction = "production"
)

// Command is one parsed /restore-drill command.
type Command struct {
	Verb string
	App  string
	Mode drill.Mode
	// Backup is the backup for plan, run and restore; BackupSet is true when
	// the command named one.
	Backup    drill.BackupRef
	BackupSet bool
	Keep      bool
	// DrillID is the drill for status and cancel.
	DrillID string
	// Into, NoSafetyBackup and Force are restore's options.
	Into           string
	NoSafetyBackup bool
	Force          bool
	// Reason is freeze's.
	Reason string
	// Spec is schedule's ("daily", "weekly" or a cron expression), and
	// Channel where its drills post ("" for the channel it was asked in).
	Spec    string
	Channel string
}

// Destructive reports whether the command changes something.
func (c Command) Destructive() bool {
	d, _ := Lookup(c.Verb)
	return d.Destructive
}

// UsageError is a command that does not parse: Problem says what is wrong,
// Verb which verb's usage to show ("" for the general help).
type UsageError struct {
	Verb    string
	Problem string
}

func (e *UsageError) Error() string { return e.Problem }

// Usage returns the usage line of the verb, or the list of verbs.
func (e *UsageError) Usage() string {
	if d, ok := Lookup(e.Verb); ok {
		return SlashCommand + " " + d.Usage
	}
	var names []string
	for _, d := range Definitions() {
		names = append(names, d.Name)
	}
	return SlashCommand + " " + strings.Join(names, "|") + " …"
}

var (
	herokuAppPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,29}$`)
	localAppPattern  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$`)
	mentionPattern   = regexp.MustCompile(`<[@#!][^>]*>`)
	broadcastPattern = regexp.MustCompile(`<![^>]*>`)
)

// ValidAppName reports whether s can be an app: a Heroku app name or a local
// database name. The provider checks again with its own rule.
func ValidAppName(s string) bool {
	return herokuAppPattern.MatchString(s) || localAppPattern.MatchString(s)
}

// flagSpec says which flags a verb takes and whether each takes a value.
type flagSpec map[string]bool

func verbFlags(verb string) flagSpec {
	switch verb {
	case VerbPlan:
		return flagSpec{"mode": true, "backup": true}
	case VerbRun:
		return flagSpec{"mode": true, "backup": true, "keep": false}
	case VerbRestore:
		return flagSpec{"into": true, "no-safety-backup": false, "force": false}
	case VerbSchedule:
		return flagSpec{"mode": true, "channel": true}
	}
	return flagSpec{}
}

// ParseCommand parses the text after /restore-drill. It never panics; a
// *UsageError says what is wrong with text.
func ParseCommand(text string) (Command, error) {
	if len(text) > MaxCommandLength || utf8.RuneCountInString(text) > MaxCommandLength {
		return Command{}, &UsageError{Problem: fmt.Sprintf("that command is %d characters long; commands are short (at most %d)", len(text), MaxCommandLength)}
	}
	if !utf8.ValidString(text) {
		return Command{}, &UsageError{Problem: "the command is not valid text"}
	}
	words := strings.Fields(text)
	if len(words) == 0 {
		return Command{Verb: VerbHelp}, nil
	}
	verb := strings.ToLower(words[0])
	def, ok := Lookup(verb)
	if !ok {
		return Command{}, &UsageError{Problem: fmt.Sprintf("%s is not a command", quote(words[0]))}
	}
	fail := func(format string, args ...any) (Command, error) {
		return Command{}, &UsageError{Verb: def.Name, Problem: fmt.Sprintf(format, args...)}
	}
	if def.Name == VerbFreeze {
		// Free text: mentions of people and channels in it stay links;
		// @here, @channel and groups would ping everyone.
		if m := broadcastPattern.FindString(text); m != "" {
			return fail("%s would notify everyone: name people or the incident instead", quote(m))
		}
		cmd := Command{Verb: def.Name, Reason: strings.Join(words[1:], " ")}
		if cmd.Reason == "" {
			return fail("the reason is missing: say why, e.g. the incident")
		}
		if utf8.RuneCountInString(cmd.Reason) > MaxReasonLength {
			return fail("the reason is longer than %d characters", MaxReasonLength)
		}
		return cmd, nil
	}
	var fields []token
	if def.Name == VerbSchedule {
		// A cron expression is quoted, and --channel may be a channel link;
		// the app, the schedule and the channel are each checked below.
		var err error
		if fields, err = splitQuoted(text); err != nil {
			return fail("%s", err.Error())
		}
	} else {
		if m := mentionPattern.FindString(text); m != "" {
			return fail("mentions and channel links such as %s are not arguments: name the app", quote(m))
		}
		if strings.ContainsAny(text, "\"'`“”‘’«»") {
			return fail("no quotes are needed: write the app name as is")
		}
		for _, w := range words {
			fields = append(fields, token{s: w})
		}
	}
	cmd := Command{Verb: def.Name}
	spec := verbFlags(def.Name)
	var args []string
	seen := map[string]bool{}
	for i := 1; i < len(fields); i++ {
		f := fields[i].s
		if fields[i].quoted || !strings.HasPrefix(f, "-") || f == "-" {
			args = append(args, f)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(f, "-"), "=")
		name = strings.ToLower(name)
		takesValue, known := spec[name]
		if !known || !strings.HasPrefix(f, "--") {
			return fail("%s is not a flag of %s", quote(f), def.Name)
		}
		if seen[name] {
			return fail("--%s is given twice", name)
		}
		seen[name] = true
		if !takesValue {
			if hasValue {
				return fail("--%s takes no value", name)
			}
		} else if !hasValue {
			if i+1 >= len(fields) || (!fields[i+1].quoted && strings.HasPrefix(fields[i+1].s, "--")) {
				return fail("--%s needs a value", name)
			}
			i++
			value = fields[i].s
		}
		if err := cmd.setFlag(name, value); err != nil {
			return fail("%s", err.Error())
		}
	}
	return cmd.positional(def, args)
}

func (c *Command) setFlag(name, value string) error {
	switch name {
	case "mode":
		m, err := drill.ParseMode(strings.ToLower(value))
		if err != nil {
			return fmt.Errorf("%s is not a mode: use verify or full", quote(value))
		}
		c.Mode = m
	case "backup":
		b, err := drill.ParseBackupRef(strings.ToLower(value))
		if err != nil {
			return fmt.Errorf("%s is not a backup: use fresh, latest, or an id such as b002", quote(value))
		}
		c.Backup, c.BackupSet = b, true
	case "keep":
		c.Keep = true
	case "into":
		switch v := strings.ToLower(value); v {
		case IntoNew, IntoProduction:
			c.Into = v
		default:
			return fmt.Errorf("--into %s: use new or production", quote(value))
		}
	case "no-safety-backup":
		c.NoSafetyBackup = true
	case "force":
		c.Force = true
	case "channel":
		m := channelPattern.FindStringSubmatch(value)
		if m == nil {
			return fmt.Errorf("%s is not a channel: pick it with # so Slack links it, or give its id such as C0123ABCD", quote(value))
		}
		c.Channel = m[1] + m[2]
	}
	return nil
}

// channelPattern is a channel link (<#C123|name>), #C123 or C123.
var channelPattern = regexp.MustCompile(`^(?:<#([CG][A-Z0-9]{2,20})(?:\|[^>]*)?>|#?([CG][A-Z0-9]{2,20}))$`)

// token is one word of a command; quoted words are never flags.
type token struct {
	s      string
	quoted bool
}

// splitQuoted splits text into words, a quoted run ("…", “…” or '…')
// making one word.
func splitQuoted(text string) ([]token, error) {
	var out []token
	var cur strings.Builder
	inWord, quoted := false, false
	var closer rune
	flush := func() {
		if inWord {
			out = append(out, token{s: cur.String(), quoted: quoted})
		}
		cur.Reset()
		inWord, quoted = false, false
	}
	for _, r := range text {
		switch {
		case closer != 0:
			if r == closer || (closer == '"' && r == '”') {
				closer = 0
				flush()
				continue
			}
			cur.WriteRune(r)
		case r == '"' || r == '“' || r == '\'' || r == '‘':
			if inWord {
				return nil, errors.New("a quote must start a word: quote the whole cron expression, e.g. \"0 4 * * 1\"")
			}
			closer = map[rune]rune{'"': '"', '“': '”', '\'': '\'', '‘': '’'}[r]
			inWord, quoted = true, true
		case unicode.IsSpace(r):
			flush()
		case strings.ContainsRune("`”’«»", r):
			return nil, errors.New("use plain double quotes around a cron expression")
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if closer != 0 {
		return nil, errors.New("a quote is not closed")
	}
	flush()
	return out, nil
}

func (c Command) positional(def Definition, args []string) (Command, error) {
	fail := func(format string, a ...any) (Command, error) {
		return Command{}, &UsageError{Verb: def.Name, Problem: fmt.Sprintf(format, a...)}
	}
	want := 0
	switch def.Name {
	case VerbBackups, VerbPlan, VerbRun, VerbHistory, VerbCapture, VerbUnlock, VerbUnschedule:
		want = 1
	case VerbRestore, VerbSchedule:
		want = 2
	case VerbCancel:
		want = 1
	case VerbStatus:
		if len(args) == 0 {
			return c, nil
		}
		want = 1
	}
	if len(args) < want {
		what := "the app"
		if def.Name == VerbCancel {
			what = "the drill id"
		} else if def.Name == VerbRestore && len(args) == 1 {
			what = "the backup id"
		} else if def.Name == VerbSchedule && len(args) == 1 {
			what = "the schedule (daily, weekly or a quoted cron expression)"
		}
		return fail("%s is missing", what)
	}
	if len(args) > want {
		if def.Name == VerbSchedule {
			return fail("%s is one argument too many: quote a cron expression, e.g. \"0 4 * * 1\"", quote(args[want]))
		}
		return fail("%s is one argument too many", quote(args[want]))
	}
	switch def.Name {
	case VerbStatus, VerbCancel:
		id := strings.ToLower(args[0])
		if !drill.ValidDrillID(id) {
			return fail("%s is not a drill id: ids look like d7k2m9qx", quote(args[0]))
		}
		c.DrillID = id
		return c, nil
	}
	if want > 0 {
		if !ValidAppName(args[0]) {
			return fail("%s is not an app name: use letters, digits, - and _", quote(args[0]))
		}
		c.App = args[0]
	}
	switch def.Name {
	case VerbPlan, VerbRun:
		if c.Mode == "" {
			c.Mode = drill.ModeVerify
		}
		if !c.BackupSet {
			c.Backup = drill.BackupRef{Kind: drill.BackupFresh}
		}
	case VerbRestore:
		b, err := drill.ParseBackupRef(strings.ToLower(args[1]))
		if err != nil || b.Kind == drill.BackupFresh {
			return fail("%s is not a backup id: use latest or an id such as b002", quote(args[1]))
		}
		c.Backup, c.BackupSet = b, true
		if c.Into == "" {
			c.Into = IntoNew
		}
	case VerbSchedule:
		spec, err := schedule.Parse(args[1])
		if err != nil {
			return fail("%s", Escape(drill.ErrorMessage(err)))
		}
		c.Spec = spec.Text
		if c.Mode == "" {
			c.Mode = drill.ModeVerify
		}
	}
	return c, nil
}

// String prints the command back in its canonical form.
func (c Command) String() string {
	parts := []string{c.Verb}
	if c.App != "" {
		parts = append(parts, c.App)
	}
	if c.DrillID != "" {
		parts = append(parts, c.DrillID)
	}
	switch c.Verb {
	case VerbPlan, VerbRun:
		parts = append(parts, "--mode", string(c.Mode))
		if c.BackupSet {
			parts = append(parts, "--backup", c.Backup.String())
		}
		if c.Keep {
			parts = append(parts, "--keep")
		}
	case VerbRestore:
		parts = append(parts, c.Backup.String(), "--into", c.Into)
		if c.NoSafetyBackup {
			parts = append(parts, "--no-safety-backup")
		}
		if c.Force {
			parts = append(parts, "--force")
		}
	case VerbFreeze:
		parts = append(parts, c.Reason)
	case VerbSchedule:
		spec := c.Spec
		if strings.ContainsFunc(spec, unicode.IsSpace) {
			spec = `"` + spec + `"`
		}
		parts = append(parts, spec, "--mode", string(c.Mode))
		if c.Channel != "" {
			parts = append(parts, "--channel", c.Channel)
		}
	}
	return strings.Join(parts, " ")
}

// quote shows user input back, clipped, in code style with anything that
// could break out of it removed.
func quote(s string) string {
	const max = 40
	if r := []rune(s); len(r) > max {
		s = string(r[:max]) + "…"
	}
	s = strings.Map(func(r rune) rune {
		if r == '`' || r < ' ' {
			return -1
		}
		return r
	}, s)
	return "`" + Escape(s) + "`"
}

// Escape escapes text for Slack mrkdwn: &, < and >, nothing else.
func Escape(s string) string {
	if !strings.ContainsAny(s, "&<>") {
		return s
	}
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackLink is a link Slack put in a person's text (should_escape): a
// mention or a channel.
var slackLink = regexp.MustCompile(`<(?:@[UW][A-Z0-9]+|#[CG][A-Z0-9]+(?:\|[a-z0-9_.-]*)?)>`)

// EscapeKeepLinks escapes a person's text like Escape, but keeps the
// mentions and channel links Slack put in it, so they still show as links.
func EscapeKeepLinks(s string) string {
	var out strings.Builder
	last := 0
	for _, loc := range slackLink.FindAllStringIndex(s, -1) {
		out.WriteString(Escape(s[last:loc[0]]))
		out.WriteString(s[loc[0]:loc[1]])
		last = loc[1]
	}
	out.WriteString(Escape(s[last:]))
	return out.String()
}

// HelpText is the help, generated from Definitions, in mrkdwn.
func HelpText() string {
	var b strings.Builder
	b.WriteString("*" + SlashCommand + "* proves Postgres restores work, and restores when it matters.\n")
	for _, d := range Definitions() {
		fmt.Fprintf(&b, "• `%s %s`\n      %s", SlashCommand, d.Usage, d.Description)
		if d.Destructive {
			b.WriteString(" _(authorized users only)_")
		}
		b.WriteString("\n")
		for _, e := range d.Examples {
			fmt.Fprintf(&b, "      e.g. `%s %s`\n", SlashCommand, e)
		}
	}
	return b.String()
}
