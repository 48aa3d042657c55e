package bot

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/restore-drill/restore-drill/drill"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	fresh := drill.BackupRef{Kind: drill.BackupFresh}
	b2 := drill.BackupRef{Kind: drill.BackupByID, Num: 2}
	tests := []struct {
		name    string
		text    string
		want    Command
		wantErr string // substring of the problem
		verb    string // usage shown with the error
	}{
		{name: "Empty", text: "", want: Command{Verb: VerbHelp}},
		{name: "Help", text: "help", want: Command{Verb: VerbHelp}},
		{name: "HelpUpper", text: "  HELP ", want: Command{Verb: VerbHelp}},
		{name: "Backups", text: "backups my-app", want: Command{Verb: VerbBackups, App: "my-app"}},
		{name: "BackupsLocalName", text: "backups App_DB_1", want: Command{Verb: VerbBackups, App: "App_DB_1"}},
		{name: "PlanDefaults", text: "plan my-app", want: Command{Verb: VerbPlan, App: "my-app", Mode: drill.ModeVerify, Backup: fresh}},
		{name: "PlanFull", text: "plan my-app --mode full --backup b002", want: Command{Verb: VerbPlan, App: "my-app", Mode: drill.ModeFull, Backup: b2, BackupSet: true}},
		{name: "RunDefaults", text: "run demo", want: Command{Verb: VerbRun, App: "demo", Mode: drill.ModeVerify, Backup: fresh}},
		{name: "RunAll", text: "run demo --mode=full --backup latest --keep", want: Command{Verb: VerbRun, App: "demo", Mode: drill.ModeFull, Backup: drill.BackupRef{Kind: drill.BackupLatest}, BackupSet: true, Keep: true}},
		{name: "RunFlagsFirst", text: "run --keep demo", want: Command{Verb: VerbRun, App: "demo", Mode: drill.ModeVerify, Backup: fresh, Keep: true}},
		{name: "Status", text: "status", want: Command{Verb: VerbStatus}},
		{name: "StatusOne", text: "status d7k2m9qx", want: Command{Verb: VerbStatus, DrillID: "d7k2m9qx"}},
		{name: "Cancel", text: "cancel d7k2m9qx", want: Command{Verb: VerbCancel, DrillID: "d7k2m9qx"}},
		{name: "History", text: "history my-app", want: Command{Verb: VerbHistory, App: "my-app"}},
		{name: "Restore", text: "restore my-app b002", want: Command{Verb: VerbRestore, App: "my-app", Backup: b2, BackupSet: true, Into: IntoNew}},
		{name: "RestoreProd", text: "restore my-app b002 --into production --no-safety-backup --force", want: Command{Verb: VerbRestore, App: "my-app", Backup: b2, BackupSet: true, Into: IntoProduction, NoSafetyBackup: true, Force: true}},
		{name: "Capture", text: "capture my-app", want: Command{Verb: VerbCapture, App: "my-app"}},
		{name: "Freeze", text: "freeze  incident 42:   failover", want: Command{Verb: VerbFreeze, Reason: "incident 42: failover"}},
		{name: "FreezeFlagLikeReason", text: "freeze --force everything", want: Command{Verb: VerbFreeze, Reason: "--force everything"}},
		{name: "Unfreeze", text: "unfreeze", want: Command{Verb: VerbUnfreeze}},
		{name: "Unlock", text: "unlock my-app", want: Command{Verb: VerbUnlock, App: "my-app"}},
		{name: "ScheduleDaily", text: "schedule my-app DAILY", want: Command{Verb: VerbSchedule, App: "my-app", Spec: "daily", Mode: drill.ModeVerify}},
		{name: "ScheduleCron", text: `schedule my-app "30 2 * * 0" --mode full --channel C0PS0001`, want: Command{Verb: VerbSchedule, App: "my-app", Spec: "30 2 * * 0", Mode: drill.ModeFull, Channel: "C0PS0001"}},
		{name: "ScheduleSmartQuotes", text: "schedule my-app “0 4 * * 1”", want: Command{Verb: VerbSchedule, App: "my-app", Spec: "0 4 * * 1", Mode: drill.ModeVerify}},
		{name: "ScheduleChannelLink", text: "schedule my-app weekly --channel <#C0PS0001|ops>", want: Command{Verb: VerbSchedule, App: "my-app", Spec: "weekly", Mode: drill.ModeVerify, Channel: "C0PS0001"}},
		{name: "ScheduleHashChannel", text: "schedule my-app weekly --channel=#C0PS0001", want: Command{Verb: VerbSchedule, App: "my-app", Spec: "weekly", Mode: drill.ModeVerify, Channel: "C0PS0001"}},
		{name: "Schedules", text: "schedules", want: Command{Verb: VerbSchedules}},
		{name: "Unschedule", text: "unschedule my-app", want: Command{Verb: VerbUnschedule, App: "my-app"}},
		{name: "FreezeNoReason", text: "freeze", wantErr: "the reason is missing", verb: VerbFreeze},
		{name: "FreezeHere", text: "freeze <!here> incident", wantErr: "would notify everyone", verb: VerbFreeze},
		{name: "FreezeMentionsPeople", text: "freeze failover, ask <@U0BOB> in <#C0PS|ops>", want: Command{Verb: VerbFreeze, Reason: "failover, ask <@U0BOB> in <#C0PS|ops>"}},
		{name: "FreezeTooLong", text: "freeze " + strings.Repeat("x ", 120), wantErr: "longer than 200", verb: VerbFreeze},
		{name: "UnfreezeArg", text: "unfreeze now", wantErr: "`now` is one argument too many", verb: VerbUnfreeze},
		{name: "UnlockMissing", text: "unlock", wantErr: "the app is missing", verb: VerbUnlock},
		{name: "ScheduleMissing", text: "schedule my-app", wantErr: "the schedule", verb: VerbSchedule},
		{name: "ScheduleUnquotedCron", text: "schedule my-app 0 4 * * 1", wantErr: "quote a cron expression", verb: VerbSchedule},
		{name: "ScheduleBadCron", text: `schedule my-app "every day"`, wantErr: "is not a schedule", verb: VerbSchedule},
		{name: "ScheduleTooOften", text: `schedule my-app "*/5 * * * *"`, wantErr: "more than once an hour", verb: VerbSchedule},
		{name: "ScheduleUnclosed", text: `schedule my-app "0 4 * * 1`, wantErr: "not closed", verb: VerbSchedule},
		{name: "ScheduleMidQuote", text: `schedule my-app da"ily"`, wantErr: "must start a word", verb: VerbSchedule},
		{name: "ScheduleBadChannel", text: "schedule my-app daily --channel ops", wantErr: "is not a channel", verb: VerbSchedule},
		{name: "ScheduleBadMode", text: "schedule my-app daily --mode restore", wantErr: "is not a mode", verb: VerbSchedule},
		{name: "ScheduleMentionApp", text: "schedule <@U1> daily", wantErr: "is not an app name", verb: VerbSchedule},
		{name: "SchedulesArg", text: "schedules x", wantErr: "one argument too many", verb: VerbSchedules},

		{name: "UnknownVerb", text: "destroy my-app", wantErr: "`destroy` is not a command"},
		{name: "MissingApp", text: "run", wantErr: "the app is missing", verb: VerbRun},
		{name: "MalformedApp", text: "run -my-app", wantErr: "is not a flag", verb: VerbRun},
		{name: "AppWithDot", text: "run my.app", wantErr: "`my.app` is not an app name", verb: VerbRun},
		{name: "UnknownFlag", text: "run demo --fast", wantErr: "`--fast` is not a flag of run", verb: VerbRun},
		{name: "SingleDashFlag", text: "run demo -k", wantErr: "`-k` is not a flag", verb: VerbRun},
		{name: "FlagOfOtherVerb", text: "plan demo --keep", wantErr: "`--keep` is not a flag of plan", verb: VerbPlan},
		{name: "BadMode", text: "run demo --mode fast", wantErr: "`fast` is not a mode", verb: VerbRun},
		{name: "MissingValue", text: "run demo --mode", wantErr: "--mode needs a value", verb: VerbRun},
		{name: "FlagTwice", text: "run demo --keep --keep", wantErr: "--keep is given twice", verb: VerbRun},
		{name: "ValueOnBool", text: "run demo --keep=yes", wantErr: "--keep takes no value", verb: VerbRun},
		{name: "BadBackup", text: "run demo --backup x99", wantErr: "`x99` is not a backup", verb: VerbRun},
		{name: "RestoreFresh", text: "restore demo fresh", wantErr: "`fresh` is not a backup id", verb: VerbRestore},
		{name: "RestoreNoBackup", text: "restore demo", wantErr: "the backup id is missing", verb: VerbRestore},
		{name: "RestoreBadInto", text: "restore demo b1 --into staging", wantErr: "use new or production", verb: VerbRestore},
		{name: "TooMany", text: "backups a b", wantErr: "`b` is one argument too many", verb: VerbBackups},
		{name: "Quotes", text: `run "demo"`, wantErr: "no quotes", verb: VerbRun},
		{name: "SmartQuotes", text: "run “demo”", wantErr: "no quotes", verb: VerbRun},
		{name: "Mention", text: "run <@U123ABC>", wantErr: "mentions and channel links", verb: VerbRun},
		{name: "ChannelLink", text: "history <#C123|general>", wantErr: "mentions and channel links", verb: VerbHistory},
		{name: "Unicode", text: "run démo", wantErr: "`démo` is not an app name", verb: VerbRun},
		{name: "Emoji", text: "run 🔥", wantErr: "is not an app name", verb: VerbRun},
		{name: "TooLong", text: "run " + strings.Repeat("a", 500), wantErr: "commands are short"},
		{name: "BadDrillID", text: "cancel 123", wantErr: "`123` is not a drill id", verb: VerbCancel},
		{name: "CancelMissing", text: "cancel", wantErr: "the drill id is missing", verb: VerbCancel},
		{name: "HTMLInApp", text: "run a<b>", wantErr: "`a&lt;b&gt;` is not an app name", verb: VerbRun},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCommand(tt.text)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseCommand(%q): %v", tt.text, err)
				}
				if got != tt.want {
					t.Fatalf("ParseCommand(%q) = %+v, want %+v", tt.text, got, tt.want)
				}
				return
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseCommand(%q) = %+v, %v; want a usage error", tt.text, got, err)
			}
			if !strings.Contains(ue.Problem, tt.wantErr) {
				t.Fatalf("problem %q does not contain %q", ue.Problem, tt.wantErr)
			}
			if ue.Verb != tt.verb {
				t.Fatalf("usage verb %q, want %q", ue.Verb, tt.verb)
			}
			if !strings.HasPrefix(ue.Usage(), SlashCommand+" ") {
				t.Fatalf("usage %q", ue.Usage())
			}
		})
	}
}

func TestCommandStringRoundTrips(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"run demo --mode full --backup b002 --keep", "restore my-app b002 --into production --force", "plan x1 --backup latest", "cancel d7k2m9qx",
		"freeze incident 42", `schedule a "0 4 * * 1" --mode full --channel C1X`, "schedule a daily", "unlock a", "unschedule a", "schedules", "unfreeze"} {
		c, err := ParseCommand(text)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseCommand(c.String())
		if err != nil || c2 != c {
			t.Fatalf("%q → %q → %+v, %v", text, c.String(), c2, err)
		}
	}
}

func TestHelpTextListsEveryVerb(t *testing.T) {
	t.Parallel()
	help := HelpText()
	for _, d := range Definitions() {
		if !strings.Contains(help, "`"+SlashCommand+" "+d.Usage+"`") {
			t.Errorf("help lacks %s", d.Usage)
		}
		for _, e := range d.Examples {
			if _, err := ParseCommand(e); err != nil {
				t.Errorf("example %q does not parse: %v", e, err)
			}
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"", "help", "run demo --mode full", "restore a b002 --into production", "cancel d7k2m9qx", "run <@U1>", "run “x”", "status", "run --mode=full x --backup=b1",
		"freeze db down", `schedule a "0 4 * * 1" --channel <#C1X|x>`, "schedule a ‘@every 2h’", "unlock a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseCommand(text)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("non-usage error %T %v", err, err)
			}
			if ue.Problem == "" || ue.Usage() == "" || !utf8.ValidString(ue.Problem) {
				t.Fatalf("empty or invalid problem for %q", text)
			}
			if strings.ContainsAny(strings.NewReplacer("&amp;", "", "&lt;", "", "&gt;", "").Replace(ue.Problem), "<>") {
				t.Fatalf("unescaped problem %q", ue.Problem)
			}
			return
		}
		if _, ok := Lookup(c.Verb); !ok {
			t.Fatalf("verb %q", c.Verb)
		}
		if c.App != "" && !ValidAppName(c.App) {
			t.Fatalf("app %q accepted", c.App)
		}
		if c2, err := ParseCommand(c.String()); err != nil || c2 != c {
			t.Fatalf("%q does not round-trip: %q → %+v, %v", text, c.String(), c2, err)
		}
	})
}

// TestManifestUsageHintNamesEveryVerb: the slash command's hint in the
// manifest lists every verb the command takes.
func TestManifestUsageHintNamesEveryVerb(t *testing.T) {
	t.Parallel()
	var hint string
	for _, line := range strings.Split(Manifest(), "\n") {
		if h, ok := strings.CutPrefix(strings.TrimSpace(line), "usage_hint:"); ok {
			hint = strings.Trim(strings.TrimSpace(h), `"`)
		}
	}
	verbs := strings.Split(strings.Fields(hint + " ")[0], "|")
	for _, d := range Definitions() {
		if !slices.Contains(verbs, d.Name) {
			t.Errorf("the manifest's usage_hint %q lacks %s", hint, d.Name)
		}
	}
}

// TestUsageLines_OneCodeSpanNoNesting: a usage reply never puts a code
// span inside another (Slack then shows stray backticks).
func TestUsageLines_OneCodeSpanNoNesting(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"bogus", "run", "schedule x", "restore app"} {
		_, err := ParseCommand(in)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Fatalf("%q: %v", in, err)
		}
		for _, line := range strings.Split(ue.Usage(), "\n") {
			if strings.Contains(line, "`") {
				t.Errorf("%q: the usage line %q holds a backtick, which would nest code spans", in, line)
			}
		}
	}
}
