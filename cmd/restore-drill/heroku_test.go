package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
)

// newHerokuApp starts a fake Heroku with one app and returns the
// environment that points the binary at it. Transfers and provisioning
// finish at once, so the binary's real poll intervals never wait.
func newHerokuApp(t *testing.T, opts herokutest.AppOptions) (*herokutest.Server, string, []string) {
	t.Helper()
	s := herokutest.NewServer(t, herokutest.WithTransferSteps(-1), herokutest.WithProvisionPolls(-1))
	app := "cli-" + drilltest.RandomSuffix()
	if opts.SQL == "" {
		opts.SQL = `CREATE TABLE drill_items (id int PRIMARY KEY, note text);
			INSERT INTO drill_items SELECT g, 'n' || g FROM generate_series(1, 100) g;
			CREATE TABLE "Events 2026" (at timestamptz, payload jsonb);
			INSERT INTO "Events 2026" SELECT now(), jsonb_build_object('g', g) FROM generate_series(1, 10) g;`
	}
	if _, err := s.AddApp(app, opts); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"HEROKU_API_KEY=" + herokutest.APIKey, "HEROKU_API_URL=" + s.URL, "HEROKU_DATA_API_URL=" + s.URL,
		"BACKUP_DIR=" + t.TempDir(), "LOG_LEVEL=debug",
	}
	return s, app, env
}

// requireNoCredential fails when the API key or a database password of the
// fake shows in the binary's output.
func requireNoCredential(t *testing.T, s *herokutest.Server, r result) {
	t.Helper()
	out := r.stdout + r.stderr
	for _, secret := range append(s.Passwords(), herokutest.APIKey, "X-Amz-Signature") {
		if strings.Contains(out, secret) {
			t.Errorf("a credential (%.6s…) leaked into the output:\n%s", secret, out)
		}
	}
}

func TestHeroku_BackupsThroughTheBinary(t *testing.T) {
	t.Parallel()
	s, app, env := newHerokuApp(t, herokutest.AppOptions{Backups: []time.Duration{2 * time.Hour}})
	r := cli(t, env, "backups", app, "--provider", "heroku", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var b struct {
		App        string   `json:"app"`
		RPOSeconds *float64 `json:"rpo_seconds"`
		Schedules  []struct {
			Hour     int    `json:"hour"`
			Timezone string `json:"timezone"`
		} `json:"schedules"`
		Backups []struct {
			ID         string     `json:"id"`
			Status     string     `json:"status"`
			FinishedAt *time.Time `json:"finished_at"`
			SizeBytes  int64      `json:"size_bytes"`
			Scheduled  bool       `json:"scheduled"`
		} `json:"backups"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if b.App != app || len(b.Schedules) != 1 || b.Schedules[0].Hour != 2 || b.Schedules[0].Timezone != "UTC" {
		t.Errorf("backups head: %s", r.stdout)
	}
	if len(b.Backups) != 1 || b.Backups[0].ID != "a001" || b.Backups[0].Status != "succeeded" || !b.Backups[0].Scheduled ||
		b.Backups[0].SizeBytes <= 0 || b.Backups[0].FinishedAt == nil {
		t.Errorf("backups: %s", r.stdout)
	}
	if b.RPOSeconds == nil || *b.RPOSeconds < 7000 || *b.RPOSeconds > 7300 {
		t.Errorf("rpo %v, want about 2h", b.RPOSeconds)
	}
	requireNoCredential(t, s, r)
}

func TestHeroku_RunThroughTheBinary(t *testing.T) {
	t.Parallel()
	s, app, env := newHerokuApp(t, herokutest.AppOptions{Backups: []time.Duration{time.Hour}, Formation: map[string]int{"web": 1, "worker": 2}})
	before := s.Attachments(app)
	type herokuReport struct {
		jsonReport
		APICalls int      `json:"api_calls"`
		Exact    bool     `json:"exact"`
		Warnings []string `json:"warnings"`
	}
	decode := func(r result) herokuReport {
		var rep herokuReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("stdout is not the JSON report: %v\n%s\n%s", err, r.stdout, r.stderr)
		}
		return rep
	}

	r := cli(t, env, "run", app, "--provider", "heroku", "--json")
	if r.code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep := decode(r)
	if rep.Provider != "heroku" || rep.Mode != "verify" || rep.Result != "passed" || !rep.Canary.Found || rep.APICalls <= 0 {
		t.Errorf("verify report: %+v", rep)
	}
	if rep.Backup == nil || rep.Backup.ID != "b002" || rep.RPOSeconds == nil {
		t.Errorf("backup %+v rpo %v, want the fresh b002 after a001", rep.Backup, rep.RPOSeconds)
	}
	rows := map[string]int64{}
	for _, tb := range rep.Tables {
		rows[tb.Name] = tb.RestoredRows
	}
	if rows["drill_items"] != 100 || rows["Events 2026"] != 10 {
		t.Errorf("tables %v", rows)
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "worker=2") {
		t.Errorf("warnings %v, want the workers noted", rep.Warnings)
	}
	if s.Formation(app)["worker"] != 2 || s.Maintenance(app) {
		t.Errorf("verify changed production: %v %v", s.Formation(app), s.Maintenance(app))
	}
	requireNoCredential(t, s, r)
	t.Logf("verify drill through the binary: %d API calls", rep.APICalls)

	r = cli(t, env, "run", app, "--provider", "heroku", "--mode", "full", "--confirm", app, "--json")
	if r.code != 0 {
		t.Fatalf("full: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep = decode(r)
	if rep.Result != "passed" || len(rep.Confirmations) != 2 || !rep.Exact {
		t.Errorf("full report: %+v", rep)
	}
	for _, want := range []string{"maintenance_on", "promote", "check_promoted", "promote_back", "maintenance_off", "destroy_scratch"} {
		found := false
		for _, st := range rep.Steps {
			found = found || (st.Name == want && st.Status == "succeeded")
		}
		if !found {
			t.Errorf("step %s missing: %+v", want, rep.Steps)
		}
	}
	after := s.Attachments(app)
	if len(after) != len(before) || after[0].Name != "DATABASE" || after[0].AddonID != before[0].AddonID {
		t.Errorf("attachments %+v, want %+v", after, before)
	}
	if s.Formation(app)["worker"] != 2 || s.Maintenance(app) {
		t.Errorf("full left formation %v maintenance %v", s.Formation(app), s.Maintenance(app))
	}
	if len(s.AddOns(app)) != 1 {
		t.Errorf("add-ons left: %+v", s.AddOns(app))
	}
	requireNoCredential(t, s, r)
	t.Logf("full drill through the binary: %d API calls", rep.APICalls)
}

// Bad input or set-up: one sentence, exit 2 (usage) or 1 (a drill that ran
// and failed), no credential in the output, nothing left behind.
func TestHeroku_ErrorsThroughTheBinary(t *testing.T) {
	t.Parallel()
	s, app, env := newHerokuApp(t, herokutest.AppOptions{Backups: []time.Duration{time.Hour}})
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"NoKey", []string{"run", app, "--provider", "heroku"}, []string{"HEROKU_API_KEY="}, 2, "HEROKU_API_KEY is not set"},
		{"BadKey", []string{"run", app, "--provider", "heroku"}, []string{"HEROKU_API_KEY=HRKU-wrong-wrong-wrong"}, 2, "the Heroku token in HEROKU_API_KEY is invalid or expired"},
		{"BadKeyBackups", []string{"backups", app, "--provider", "heroku"}, []string{"HEROKU_API_KEY=not-the-key-at-all"}, 2, "HEROKU_API_KEY is invalid"},
		{"UnknownApp", []string{"run", "nope-" + app, "--provider", "heroku"}, nil, 2, "there is no Heroku app named nope-" + app},
		{"MalformedApp", []string{"run", "My_App", "--provider", "heroku"}, nil, 2, "is not a Heroku app name"},
		{"UnknownBackup", []string{"run", app, "--provider", "heroku", "--backup", "b042"}, nil, 2, "backup b042 not found"},
		{"PlanRefused", []string{"run", app, "--provider", "heroku"}, []string{"DRILL_SCRATCH_PLAN=hobby-dev"}, 1, "Couldn't find either the add-on service or the add-on plan"},
		{"Unreachable", []string{"backups", app, "--provider", "heroku"}, []string{"HEROKU_API_URL=http://127.0.0.1:1", "HEROKU_DATA_API_URL=http://127.0.0.1:1"}, 2, "cannot reach the Heroku API"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, append(append([]string{}, env...), tc.env...), tc.args...)
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout+r.stderr, tc.want) {
				t.Errorf("output does not say %q:\n%s%s", tc.want, r.stdout, r.stderr)
			}
			if strings.Contains(r.stderr, "panic") {
				t.Errorf("panicked:\n%s", r.stderr)
			}
			requireNoCredential(t, s, r)
		})
	}
	if got := s.AddOns(app); len(got) != 1 || s.Maintenance(app) {
		t.Errorf("errors left add-ons %+v or maintenance on", got)
	}
}
