// Package bot is the Slack adapter of restore-drill: it turns /restore-drill
// commands, button clicks and modal submissions into drill calls, and drill
// events into Slack messages, nothing more. Slack is reached only through
// Transport (Socket Mode and the Web API in production, a terminal in the
// console adapter); the drills run through Engine.
package bot

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/restore-drill/restore-drill/drill"
)

// Verbs of the /restore-drill command.
const (
	VerbHelp    = "help"
	VerbBackups = "backups"
	VerbPlan    = "plan"
	VerbRun     = "run"
	VerbStatus  = "status"
	VerbCancel  = "cancel"
	VerbHistory = "history"
	VerbRestore = "restore"
	VerbCapture = "capture"
)

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
		{Name: VerbHistory, Usage: "history APP", Description: "List the drills of APP this bot has seen finish.",
			Examples: []string{"history my-app"}},
		{Name: VerbRestore, Usage: "restore APP BACKUP [--into new|production] [--no-safety-backup] [--force]", Destructive: true,
			Description: "Emergency restore of BACKUP, after a safety backup and a typed confirmation.",
			Examples:    []string{"restore my-app b002", "restore my-app b002 --into production"}},
		{Name: VerbCapture, Usage: "capture APP", Destructive: true, Description: "Capture a new backup of APP now.",
			Examples: []string{"capture my-app"}},
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
	return SlashCommand + " " + strings.Join(names, "|") + " …  (try `" + SlashCommand + " help`)"
}

var (
	herokuAppPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,29}$`)
	localAppPattern  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$`)
	mentionPattern   = regexp.MustCompile(`<[@#!][^>]*>`)
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
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return Command{Verb: VerbHelp}, nil
	}
	verb := strings.ToLower(fields[0])
	def, ok := Lookup(verb)
	if !ok {
		return Command{}, &UsageError{Problem: fmt.Sprintf("%s is not a command", quote(fields[0]))}
	}
	fail := func(format string, args ...any) (Command, error) {
		return Command{}, &UsageError{Verb: def.Name, Problem: fmt.Sprintf(format, args...)}
	}
	if m := mentionPattern.FindString(text); m != "" {
		return fail("mentions and channel links such as %s are not arguments: name the app", quote(m))
	}
	if strings.ContainsAny(text, "\"'`“”‘’«»") {
		return fail("no quotes are needed: write the app name as is")
	}
	cmd := Command{Verb: def.Name}
	spec := verbFlags(def.Name)
	var args []string
	seen := map[string]bool{}
	for i := 1; i < len(fields); i++ {
		f := fields[i]
		if !strings.HasPrefix(f, "-") || f == "-" {
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
			if i+1 >= len(fields) || strings.HasPrefix(fields[i+1], "--") {
				return fail("--%s needs a value", name)
			}
			i++
			value = fields[i]
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
	}
	return nil
}

func (c Command) positional(def Definition, args []string) (Command, error) {
	fail := func(format string, a ...any) (Command, error) {
		return Command{}, &UsageError{Verb: def.Name, Problem: fmt.Sprintf(format, a...)}
	}
	want := 0
	switch def.Name {
	case VerbBackups, VerbPlan, VerbRun, VerbHistory, VerbCapture:
		want = 1
	case VerbRestore:
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
		}
		return fail("%s is missing", what)
	}
	if len(args) > want {
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
