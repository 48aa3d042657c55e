package heroku_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/heroku"
	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
)

// snapshot is what production looks like from the outside.
type snapshot struct {
	Attachments []herokutest.Attachment
	AddOns      []herokutest.AddOn
	Formation   map[string]int
	Maintenance bool
}

func snap(s *herokutest.Server, app string) snapshot {
	return snapshot{Attachments: s.Attachments(app), AddOns: s.AddOns(app), Formation: s.Formation(app), Maintenance: s.Maintenance(app)}
}

func withoutAttachmentIDs(sn snapshot) snapshot {
	out := sn
	out.Attachments = nil
	for _, a := range sn.Attachments {
		a.ID = ""
		out.Attachments = append(out.Attachments, a)
	}
	return out
}

func requireSame(t *testing.T, before, after snapshot) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		t.Errorf("production changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

// requireNoSecret fails when any credential of the fake appears in text.
func requireNoSecret(t *testing.T, s *herokutest.Server, text string) {
	t.Helper()
	for _, secret := range append(s.Passwords(), herokutest.APIKey, "X-Amz-Signature") {
		if strings.Contains(text, secret) {
			t.Errorf("a credential (%.6s…) leaked into:\n%s", secret, text)
		}
	}
}

func reportText(t *testing.T, rep *drill.Report) string {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Promote and promote back leave the app with exactly its own attachments
// and formation; while the scratch database serves, DATABASE_URL really
// points at it, workers are at 0 and maintenance is on.
func TestFull_PromoteAndBackRestoreAttachmentsAndFormation(t *testing.T) {
	t.Parallel()
	for _, sandbox := range []bool{false, true} {
		t.Run(fmt.Sprintf("sandbox=%v", sandbox), func(t *testing.T) {
			t.Parallel()
			s := herokutest.NewServer(t)
			app := newApp(t, s, func(o *herokutest.AppOptions) { o.Formation = map[string]int{"web": 2, "worker": 3, "clock": 1} })
			var mutate []func(*heroku.Config)
			if sandbox {
				if _, err := s.AddApp("sandbox-"+app, herokutest.AppOptions{NoDatabase: true}); err != nil {
					t.Fatal(err)
				}
				mutate = append(mutate, func(c *heroku.Config) { c.SandboxApp = "sandbox-" + app })
			}
			before := snap(s, app)
			f := drilltest.NewFaulty(newProvider(t, s, mutate...))
			var during []herokutest.Attachment
			var duringForm map[string]int
			var duringMaint bool
			f.After = func(method string, args ...any) {
				if method == "Promote" && during == nil {
					during, duringForm, duringMaint = s.Attachments(app), s.Formation(app), s.Maintenance(app)
				}
			}
			rep, err := run(t, f, drill.Options{App: app, Mode: drill.ModeFull})
			if err != nil || rep.Result != drill.Passed {
				t.Fatalf("drill: %v %+v", err, rep.Steps)
			}
			// Promote back makes a new DATABASE attachment, as on Heroku: the
			// same names on the same add-ons, not the same attachment ids.
			requireSame(t, withoutAttachmentIDs(before), withoutAttachmentIDs(snap(s, app)))
			if left := leftovers(s, app, "sandbox-"+app); len(left) > 0 {
				t.Errorf("leftovers: %v", left)
			}
			i := slices.IndexFunc(during, func(a herokutest.Attachment) bool { return a.Name == "DATABASE" })
			if i < 0 || during[i].AddonID != rep.Scratch.ID {
				t.Errorf("while promoted, DATABASE was %+v, want the scratch %s", during, rep.Scratch.ID)
			}
			if !duringMaint || duringForm["worker"] != 0 || duringForm["clock"] != 0 || duringForm["web"] != 2 {
				t.Errorf("while promoted: maintenance %v formation %v, want on and only web", duringMaint, duringForm)
			}
			if sandbox {
				for _, c := range s.Calls() {
					if c.Method == http.MethodPost && c.Path == "/apps/"+app+"/addons" {
						t.Errorf("with a sandbox app the scratch database was provisioned on production: %v", c)
					}
				}
			}
			if !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "worker=3") }) {
				t.Errorf("no note about the workers: %v", rep.Warnings)
			}
		})
	}
}

// A storm of 429s slows the drill down but it finishes, and each retry
// waits what Retry-After said.
func TestRateLimitStorm_DrillFinishesHonouringRetryAfter(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	p := newProvider(t, s)
	s.RateLimitStorm(2, 1)
	rep, err := run(t, p, drill.Options{App: app})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("drill: %v %+v", err, rep.Steps)
	}
	calls := s.Calls()
	storms := 0
	for i, c := range calls {
		if c.Status != http.StatusTooManyRequests {
			continue
		}
		storms++
		if i+1 >= len(calls) {
			t.Fatalf("no retry after the 429")
		}
		if gap := calls[i+1].At.Sub(c.At); gap < 900*time.Millisecond {
			t.Errorf("retried %s after %s, Retry-After said 1s", calls[i+1], gap)
		}
	}
	if storms != 2 {
		t.Errorf("%d answers were 429, want 2", storms)
	}
	if rep.APICalls < len(calls)-2 {
		t.Errorf("report counts %d calls, the server saw %d", rep.APICalls, len(calls))
	}
}

// 503s on a fifth of all requests, POSTs included, are retried away.
func TestFailRate_DrillFinishes(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	s.FailRate(0.2)
	rep, err := run(t, newProvider(t, s), drill.Options{App: app, Mode: drill.ModeFull})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("drill: %v %+v", err, rep.Steps)
	}
	failed := 0
	for _, c := range s.Calls() {
		if c.Status == http.StatusServiceUnavailable {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no request failed: the test proves nothing")
	}
}

// A restore Heroku calls succeeded but with warnings fails the drill, with
// the count and the log lines in the report.
func TestRestoreWarnings_FailTheDrill(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	s.RestoreWarnings(true)
	rep, err := run(t, newProvider(t, s), drill.Options{App: app})
	if drill.ErrorCode(err) != drill.EFAILED || rep.Result != drill.Failed {
		t.Fatalf("err %v result %s, want failed", err, rep.Result)
	}
	if !strings.Contains(rep.Error, "finished with 1 warning,") || !strings.Contains(rep.Error, "errors ignored on restore") || !strings.Contains(rep.Error, "Heroku itself calls this restore succeeded") {
		t.Errorf("report error %q does not give the warnings", rep.Error)
	}
	if !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "Restore warning: pg_restore") }) {
		t.Errorf("warnings not in the report: %v", rep.Warnings)
	}
	if left := leftovers(s, app); len(left) > 0 {
		t.Errorf("leftovers: %v", left)
	}
	requireNoSecret(t, s, reportText(t, rep))
}

// Maintenance mode is not available on Fir: full mode is refused before
// anything changes; verify mode still runs.
func TestFir_RefusesFullMode(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s, func(o *herokutest.AppOptions) { o.Generation = "fir" })
	before := snap(s, app)
	p := newProvider(t, s)
	rep, err := run(t, p, drill.Options{App: app, Mode: drill.ModeFull})
	if drill.ErrorCode(err) != drill.EREFUSED || !strings.Contains(rep.Error, "maintenance mode is not available on Fir apps") {
		t.Fatalf("err %v (%q), want a refusal saying why", err, rep.Error)
	}
	for _, c := range s.Calls() {
		if c.Method != http.MethodGet {
			t.Errorf("full mode on Fir changed something: %v", c)
		}
	}
	requireSame(t, before, snap(s, app))
	rep, err = run(t, p, drill.Options{App: app})
	if err != nil {
		t.Fatalf("verify on Fir: %v %+v", err, rep.Steps)
	}
}

// A stale newest backup, or no schedule, fails preflight checks: the drill
// still runs but its verdict is failed, and the check says what to do.
func TestPreflight_StaleOrUnscheduledBackupsFail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		opts  func(*herokutest.AppOptions)
		check string
		want  string
	}{
		{"Stale", func(o *herokutest.AppOptions) { o.Backups = []time.Duration{30 * time.Hour} }, "backup_age", "over the 26h0m0s limit"},
		{"NoBackup", func(o *herokutest.AppOptions) { o.Backups = nil }, "backup_age", "has no successful backup"},
		{"NoSchedule", func(o *herokutest.AppOptions) { o.NoSchedule = true }, "backup_schedule", "has no backup schedule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := herokutest.NewServer(t)
			app := newApp(t, s, tc.opts)
			rep, err := run(t, newProvider(t, s), drill.Options{App: app})
			if drill.ErrorCode(err) != drill.EFAILED || rep.Result != drill.Failed {
				t.Fatalf("err %v result %s, want failed", err, rep.Result)
			}
			i := slices.IndexFunc(rep.Checks, func(c drill.Check) bool { return c.Name == tc.check })
			if i < 0 || rep.Checks[i].OK || !strings.Contains(rep.Checks[i].Message, tc.want) {
				t.Errorf("checks %+v, want %s failed saying %q", rep.Checks, tc.check, tc.want)
			}
			if !strings.Contains(rep.Error, "preflight checks failed") {
				t.Errorf("error %q", rep.Error)
			}
		})
	}
}

// Nothing the drill did not create is destroyed, restored onto or
// promoted, even when asked directly and even when a scratch database now
// serves the app; the call log shows no such request.
func TestSafety_NeverTouchesWhatTheDrillDidNotCreate(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	other := newApp(t, s)
	p := newProvider(t, s)
	ctx := context.Background()
	desc, err := p.Describe(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	prod := desc.Database
	otherDB, err := p.Serving(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Capture(ctx, app, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	mark := len(s.Calls())
	for _, target := range []drill.Database{
		{ID: prod.ID, Name: prod.Name, DrillID: "dabcdefg"},       // forged tag
		{ID: otherDB.ID, Name: otherDB.Name, DrillID: "dabcdefg"}, // another app's database
		{ID: prod.ID, Name: "DRILL_DABCDEFG", DrillID: ""},        // no tag at all
	} {
		if err := p.DestroyScratch(ctx, target); drill.ErrorCode(err) != drill.EREFUSED {
			t.Errorf("destroy %+v: %v, want refused", target, err)
		}
		if _, err := p.Restore(ctx, c.Backup, target, nil); drill.ErrorCode(err) != drill.EREFUSED {
			t.Errorf("restore onto %+v: %v, want refused", target, err)
		}
		if target.ID != prod.ID {
			if err := p.Promote(ctx, app, target); drill.ErrorCode(err) != drill.EREFUSED {
				t.Errorf("promote %+v: %v, want refused", target, err)
			}
		}
	}
	// A scratch database that serves the app is refused too.
	scratch, err := p.CreateScratch(ctx, app, "dsafety1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Promote(ctx, app, scratch); err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyScratch(ctx, scratch); drill.ErrorCode(err) != drill.EREFUSED {
		t.Errorf("destroy the serving scratch: %v, want refused", err)
	}
	if _, err := p.Restore(ctx, c.Backup, scratch, nil); drill.ErrorCode(err) != drill.EREFUSED {
		t.Errorf("restore onto the serving scratch: %v, want refused", err)
	}
	calls := s.Calls()[mark:]
	for _, c := range calls {
		touchesProd := strings.Contains(c.Path, prod.ID) || strings.Contains(c.Path, otherDB.ID)
		switch {
		case c.Method == http.MethodDelete:
			t.Errorf("deleted something: %v", c)
		case strings.HasSuffix(c.Path, "/restores"):
			t.Errorf("restored onto something: %v", c)
		case c.Method != http.MethodGet && touchesProd:
			t.Errorf("changed production: %v", c)
		}
	}
	// Clean up the normal way: promote back, destroy.
	if err := p.Promote(ctx, app, prod); err != nil {
		t.Fatal(err)
	}
	if err := p.DestroyScratch(ctx, scratch); err != nil {
		t.Fatal(err)
	}
	now, err := p.Serving(ctx, app)
	if err != nil || now.ID != prod.ID {
		t.Fatalf("serving %+v %v", now, err)
	}
	if got := s.Attachments(app); len(got) != 1 || got[0].Name != "DATABASE" || got[0].AddonID != prod.ID {
		t.Errorf("attachments after promote back: %+v", got)
	}
}

// A drill that finds DATABASE pointing at an add-on it did not record
// refuses to promote.
func TestSafety_UnexpectedDatabaseStopsPromote(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	p := newProvider(t, s)
	ctx := context.Background()
	desc, err := p.Describe(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	scratch, err := p.CreateScratch(ctx, app, "dunexpt1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.DestroyScratch(context.Background(), scratch) })
	// Someone else makes another app's database the DATABASE of app
	// behind the drill's back (with a spare attachment for the old one).
	if _, err := s.AddApp("x-"+app, herokutest.AppOptions{SQL: "SELECT 1"}); err != nil {
		t.Fatal(err)
	}
	foreign := s.Attachments("x-" + app)[0]
	if code := post(t, s, "/addon-attachments", fmt.Sprintf(`{"addon":%q,"app":%q,"name":"OLD_DB"}`, desc.Database.ID, app)); code != http.StatusCreated {
		t.Fatalf("spare attachment: %d", code)
	}
	if code := post(t, s, "/addon-attachments", fmt.Sprintf(`{"addon":%q,"app":%q,"name":"DATABASE","confirm":%q}`, foreign.AddonID, app, app)); code != http.StatusCreated {
		t.Fatalf("re-attach DATABASE: %d", code)
	}
	before := snap(s, app)
	err = p.Promote(ctx, app, scratch)
	if drill.ErrorCode(err) != drill.EREFUSED || !strings.Contains(drill.ErrorMessage(err), "neither its original database") {
		t.Fatalf("promote with DATABASE moved: %v, want refused", err)
	}
	requireSame(t, before, snap(s, app))
}

// post sends a raw Platform API POST to the fake and returns the status.
func post(t *testing.T, s *herokutest.Server, path, body string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+herokutest.APIKey)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The API calls a drill makes stay bounded.
func TestCallCount_IsBounded(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode drill.Mode
		max  int
		// pooled: a Standard app with a connection pooler and a release
		// phase, whose promotes move the pooler and wait for releases.
		pooled bool
	}{{drill.ModeVerify, 40, false}, {drill.ModeFull, 60, false}, {drill.ModeVerify, 40, true}, {drill.ModeFull, 70, true}} {
		t.Run(fmt.Sprintf("%s/pooled=%v", tc.mode, tc.pooled), func(t *testing.T) {
			t.Parallel()
			s := herokutest.NewServer(t)
			app := newApp(t, s, func(o *herokutest.AppOptions) {
				o.Formation = map[string]int{"web": 1, "worker": 1}
				if tc.pooled {
					o.Plan, o.Pooler, o.Formation["release"] = "standard-0", true, 0
				}
			})
			rep, err := run(t, newProvider(t, s), drill.Options{App: app, Mode: tc.mode})
			if err != nil {
				t.Fatalf("drill: %v", err)
			}
			t.Logf("%s drill (pooled %v): %d API calls (server saw %d)", tc.mode, tc.pooled, rep.APICalls, len(s.Calls()))
			if rep.APICalls <= 0 || rep.APICalls > tc.max {
				t.Errorf("%s drill made %d API calls, want 1..%d", tc.mode, rep.APICalls, tc.max)
			}
			if rep.APICalls != len(s.Calls()) {
				t.Errorf("report counts %d calls, the server saw %d", rep.APICalls, len(s.Calls()))
			}
		})
	}
}

// Every error a user can meet ends in one clear sentence with the right
// code, and leaves production as it was.
func TestUserErrors_OneSentenceRightCodeNothingChanged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		setup  func(s *herokutest.Server, app string, cfg *heroku.Config, opts *drill.Options)
		code   string
		want   string
		scrubs bool // a scratch database was made and must be gone
	}{
		{"BadToken", func(_ *herokutest.Server, _ string, cfg *heroku.Config, _ *drill.Options) {
			cfg.APIKey = "HRKU-not-the-right-token"
		},
			drill.ECONFIG, "the Heroku token in HEROKU_API_KEY is invalid or expired", false},
		{"Forbidden", func(s *herokutest.Server, app string, _ *heroku.Config, _ *drill.Options) {
			s.Fail(http.MethodGet, "/apps/"+app, http.StatusForbidden, 0, "You do not have access to the app "+app+".")
		}, drill.ECONFIG, "You do not have access to the app", false},
		{"UnknownApp", func(_ *herokutest.Server, app string, _ *heroku.Config, o *drill.Options) { o.App = "nope-" + app },
			drill.ENOTFOUND, "there is no Heroku app named nope-", false},
		{"UnknownBackup", func(_ *herokutest.Server, _ string, _ *heroku.Config, o *drill.Options) {
			o.Backup = drill.BackupRef{Kind: drill.BackupByID, Num: 42}
		}, drill.ENOTFOUND, "backup b042 not found", false},
		{"PlanRefused", func(_ *herokutest.Server, _ string, cfg *heroku.Config, _ *drill.Options) {
			cfg.ScratchPlan = "hobby-dev"
		},
			drill.EFAILED, `Couldn't find either the add-on service or the add-on plan of "heroku-postgresql:hobby-dev"`, false},
		{"ShieldNoBackups", func(s *herokutest.Server, _ string, _ *heroku.Config, _ *drill.Options) {
			s.Fail(http.MethodPost, "/client/v11/databases/[^/]+/backups", http.StatusUnprocessableEntity, 0,
				"Logical backups are not available on Shield databases: use Continuous Protection.")
		}, drill.EFAILED, "Logical backups are not available on Shield databases", true},
		{"CaptureFails", func(s *herokutest.Server, _ string, _ *heroku.Config, _ *drill.Options) { s.CaptureFails() },
			drill.EFAILED, "pg_dump: error", true},
		{"RateLimitExhausted", func(s *herokutest.Server, _ string, _ *heroku.Config, _ *drill.Options) {
			s.Fail(http.MethodGet, "/apps/[^/]+", http.StatusTooManyRequests, 0)
		}, drill.EFAILED, "rate limit", false},
		{"NeverProvisions", func(s *herokutest.Server, _ string, cfg *heroku.Config, _ *drill.Options) {
			s.NeverProvision()
			cfg.ProvisionTimeout = 200 * time.Millisecond
		}, drill.EFAILED, "was not ready after", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := herokutest.NewServer(t)
			app := newApp(t, s)
			cfg := heroku.Config{APIKey: herokutest.APIKey, APIURL: s.URL, DataAPIURL: s.URL,
				PollInterval: time.Millisecond, MaxPollInterval: 4 * time.Millisecond, Transport: fastTransport()}
			opts := drill.Options{App: app}
			tc.setup(s, app, &cfg, &opts)
			p, err := heroku.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := snap(s, app)
			rep, err := run(t, p, opts)
			if drill.ErrorCode(err) != tc.code {
				t.Fatalf("code %q (%v), want %q", drill.ErrorCode(err), err, tc.code)
			}
			msg := drill.ErrorMessage(err)
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("message %q, want one line saying %q", msg, tc.want)
			}
			if wantUsage := tc.code != drill.EFAILED; drill.IsUsage(err) != wantUsage {
				t.Errorf("IsUsage %v for %s", drill.IsUsage(err), tc.code)
			}
			after := snap(s, app)
			requireSame(t, before, after)
			if tc.scrubs && !slices.Contains(rep.Undone, drill.StepProvision) {
				t.Errorf("undone %v, want the scratch database destroyed", rep.Undone)
			}
			requireNoSecret(t, s, reportText(t, rep)+err.Error())
		})
	}
}

// Lists longer than a page are followed through 206 and Next-Range.
func TestPagination_FollowsNextRange(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t, herokutest.WithPageSize(1))
	app := newApp(t, s, func(o *herokutest.AppOptions) { o.Formation = map[string]int{"web": 1, "worker": 1, "clock": 1} })
	rep, err := run(t, newProvider(t, s), drill.Options{App: app, Mode: drill.ModeFull})
	if err != nil {
		t.Fatalf("drill: %v %+v", err, rep.Steps)
	}
	partial := 0
	for _, c := range s.Calls() {
		if c.Status == http.StatusPartialContent {
			partial++
		}
	}
	if partial == 0 {
		t.Error("no list was long enough to page: the test proves nothing")
	}
	if !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "clock=1, worker=1") }) {
		t.Errorf("the formation's later pages were not read: %v", rep.Warnings)
	}
}

// The call without confirm that would move DATABASE is refused by the
// fake with confirmation_required, as by Heroku.
func TestFake_ConfirmationRequired(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	other := newApp(t, s)
	addon := s.Attachments(other)[0].AddonID
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/addon-attachments",
		strings.NewReader(fmt.Sprintf(`{"addon":%q,"app":%q,"name":"DATABASE"}`, addon, app)))
	req.Header.Set("Authorization", "Bearer "+herokutest.APIKey)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ ID, Message string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode < 400 || body.ID != "confirmation_required" || body.Message == "" {
		t.Errorf("status %d body %+v, want confirmation_required", resp.StatusCode, body)
	}
}

// The billing app's transfers hold every database's backups; the drill's
// list, its RPO and "latest" are those of the database behind DATABASE.
func TestBackups_OnlyTheProductionDatabase(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	p := newProvider(t, s)
	ctx := context.Background()
	before, err := p.Backups(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	other, err := p.CreateScratch(ctx, app, drill.NewDrillID(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.DestroyScratch(context.Background(), other) })
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/client/v11/databases/"+other.ID+"/backups", nil)
	req.Header.Set("Authorization", "Bearer "+herokutest.APIKey)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("capture of the other database: %d %s", resp.StatusCode, b)
	}
	after, err := p.Backups(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Backups) != len(before.Backups) {
		t.Errorf("another database's backup is listed as the app's: %+v", after.Backups)
	}
}

// Cancelling an in-place restore while Heroku runs it: the transfer is
// cancelled and seen to stop before the rollback to the safety backup
// starts, so two restores never write production at once.
func TestRestoreInPlace_CancelStopsTheTransferBeforeTheRollback(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t, herokutest.WithTransferSteps(200))
	app := newApp(t, s)
	p := newProvider(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := (&drill.Runner{Provider: p}).Capture(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	sink := drill.SinkFunc(func(e drill.Event) {
		if e.Step == drill.StepRestoreInPlace && e.Kind == drill.StepProgress && strings.Contains(e.Message, "started") {
			cancel()
		}
	})
	r := &drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U-ONCALL"), Sink: sink, UndoTimeout: time.Minute}
	rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}, Into: drill.IntoProduction})
	if drill.ErrorCode(err) != drill.ECANCELED {
		t.Fatalf("err %v, want cancelled; steps %+v", err, rep.Steps)
	}
	var restores, cancels []time.Time
	for _, c := range s.Calls() {
		switch {
		case c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/restores"):
			restores = append(restores, c.At)
		case c.Method == http.MethodPost && strings.HasSuffix(c.Path, "/actions/cancel"):
			cancels = append(cancels, c.At)
		}
	}
	if len(restores) != 2 || len(cancels) != 1 || !cancels[0].Before(restores[1]) {
		t.Fatalf("restores at %v, cancels at %v: want the restore, its cancel, then the rollback", restores, cancels)
	}
	if s.Maintenance(app) {
		t.Errorf("left in maintenance after the rollback")
	}
	if !strings.Contains(rep.ProductionState, "rolled back to the safety backup") {
		t.Errorf("production state %q", rep.ProductionState)
	}
}
