package heroku_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/heroku"
	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
)

// pooledApp is a Standard app with a connection pooler; release adds a
// release phase to its formation.
func pooledApp(t *testing.T, s *herokutest.Server, release bool) string {
	t.Helper()
	return newApp(t, s, func(o *herokutest.AppOptions) {
		o.Plan, o.Pooler = "standard-0", true
		o.Formation = map[string]int{"web": 1}
		if release {
			o.Formation["release"] = 0
		}
	})
}

// where says which add-on DATABASE and the pooler of app are on, and which
// real database each config var reaches.
type where struct {
	Database, Pooler       string // add-on ids
	DatabaseURL, PoolerURL string // real database names in the URLs
}

func whereIs(s *herokutest.Server, app string) where {
	var w where
	for _, a := range s.Attachments(app) {
		switch {
		case a.Name == "DATABASE" && a.Namespace == "":
			w.Database = a.AddonID
		case a.Name == herokutest.PoolerName && a.Namespace == herokutest.PoolerNamespace:
			w.Pooler = a.AddonID
		}
	}
	dbname := func(url string) string { return url[strings.LastIndex(url, "/")+1:] }
	w.DatabaseURL = dbname(s.ConfigVar(app, "DATABASE_URL"))
	w.PoolerURL = dbname(s.ConfigVar(app, "DATABASE_CONNECTION_POOL_URL"))
	return w
}

// at is where for DATABASE and the pooler both on addonID.
func at(s *herokutest.Server, addonID string) where {
	db := s.DatabaseOf(addonID)
	return where{Database: addonID, Pooler: addonID, DatabaseURL: db, PoolerURL: db}
}

// A full drill moves the pooler with DATABASE to the scratch database and
// back; restore --into new leaves both on the restored database. Checked
// through the attachments and through the config vars the dynos read.
func TestPooler_MovesWithDatabase(t *testing.T) {
	t.Parallel()
	t.Run("FullDrill", func(t *testing.T) {
		t.Parallel()
		s := herokutest.NewServer(t)
		app := pooledApp(t, s, false)
		prod := s.Attachments(app)[0].AddonID
		f := drilltest.NewFaulty(newProvider(t, s))
		var during, want where
		f.After = func(method string, args ...any) {
			if method == "Promote" && during.Database == "" {
				during = whereIs(s, app)
				want = at(s, args[1].(drill.Database).ID)
			}
		}
		rep, err := run(t, f, drill.Options{App: app, Mode: drill.ModeFull})
		if err != nil || rep.Result != drill.Passed {
			t.Fatalf("drill: %v %+v", err, rep.Steps)
		}
		if during != want || want.Database != rep.Scratch.ID {
			t.Errorf("while promoted: %+v, want DATABASE and pooler on the scratch %+v", during, want)
		}
		if got, want := whereIs(s, app), at(s, prod); got != want {
			t.Errorf("after the drill: %+v, want both back on production %+v", got, want)
		}
	})
	t.Run("RestoreIntoNew", func(t *testing.T) {
		t.Parallel()
		s := herokutest.NewServer(t)
		app := pooledApp(t, s, false)
		p := newProvider(t, s)
		b, err := (&drill.Runner{Provider: p}).Capture(context.Background(), app)
		if err != nil {
			t.Fatal(err)
		}
		r := &drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U-ONCALL"), UndoTimeout: time.Minute}
		rep, err := r.Restore(context.Background(), drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}})
		if err != nil || rep.Result != drill.Passed {
			t.Fatalf("restore: %v %+v", err, rep.Steps)
		}
		serving, err := p.Serving(context.Background(), app)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := whereIs(s, app), at(s, serving.ID); got != want || serving.Name != rep.NowServing {
			t.Errorf("after restore --into new: %+v serving %s, want both on the restored %s %+v", got, serving.Name, rep.NowServing, want)
		}
	})
}

// A scratch plan that cannot carry a pooler (Essential) cannot stand in for
// a pooled database: full mode is refused before anything changes.
func TestPooler_EssentialScratchRefusesFullMode(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := pooledApp(t, s, false)
	before := snap(s, app)
	p := newProvider(t, s, func(c *heroku.Config) { c.ScratchPlan = "essential-0" })
	rep, err := run(t, p, drill.Options{App: app, Mode: drill.ModeFull})
	if drill.ErrorCode(err) != drill.EREFUSED || !strings.Contains(rep.Error, "connection pooler") {
		t.Fatalf("err %v (%q), want full mode refused", err, rep.Error)
	}
	requireSame(t, before, snap(s, app))
}

// A pooler someone pointed at another database is not the drill's to move:
// it stays where it was.
func TestPooler_OnAThirdDatabaseIsLeftAlone(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s, func(o *herokutest.AppOptions) { o.Plan = "standard-0" })
	other := pooledApp(t, s, false)
	third := s.Attachments(other)[0].AddonID
	if code := post(t, s, "/addon-attachments", `{"addon":"`+third+`","app":"`+app+`","name":"DATABASE_CONNECTION_POOL","namespace":"connection-pooling:default"}`); code != http.StatusCreated {
		t.Fatalf("pooler on a third database: %d", code)
	}
	rep, err := run(t, newProvider(t, s), drill.Options{App: app, Mode: drill.ModeFull})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("drill: %v %+v", err, rep.Steps)
	}
	if w := whereIs(s, app); w.Pooler != third {
		t.Errorf("the pooler moved from the third database: %+v", w)
	}
}

// releaseProvider is a provider whose polls advance clock, the fake's, so a
// release phase of seconds passes in no wall time, polled every 1 to 5 s as
// pg:promote polls every 5 s.
func releaseProvider(t *testing.T, s *herokutest.Server, clock *herokutest.Clock, mutate ...func(*heroku.Config)) *heroku.Provider {
	return newProvider(t, s, append([]func(*heroku.Config){func(c *heroku.Config) {
		c.Sleep, c.Now = clock.Sleep, clock.Now
		c.PollInterval, c.MaxPollInterval = time.Second, 5*time.Second
	}}, mutate...)...)
}

// A release phase of 10 s after each promote is waited for: the canary is
// checked through the app only once the release that attached DATABASE
// (and the one that attached the pooler) is live.
func TestReleasePhase_SlowIsWaitedFor(t *testing.T) {
	t.Parallel()
	clock := herokutest.NewClock()
	s := herokutest.NewServer(t, herokutest.WithClock(clock.Now))
	app := pooledApp(t, s, true)
	s.SetReleasePhase(10 * time.Second)
	f := drilltest.NewFaulty(releaseProvider(t, s, clock))
	var promoted []time.Time
	var live []string
	f.After = func(method string, args ...any) {
		if method != "Promote" {
			return
		}
		promoted = append(promoted, clock.Now())
		rels := s.Releases(app)
		for _, name := range []string{"Attach DATABASE (", "Attach DATABASE_CONNECTION_POOL ("} {
			for j := len(rels) - 1; j >= 0; j-- {
				if strings.HasPrefix(rels[j].Description, name) {
					live = append(live, rels[j].Status)
					if clock.Now().Before(rels[j].Ends) {
						t.Errorf("promote returned at %s, before the release phase of %q ended at %s", clock.Now(), rels[j].Description, rels[j].Ends)
					}
					break
				}
			}
		}
	}
	rec := &drill.Recorder{}
	r := &drill.Runner{Provider: f, Confirmer: drilltest.AppConfirmer("tester"), Sink: rec, UndoTimeout: time.Minute}
	start := time.Now()
	rep, err := r.Run(context.Background(), drill.Options{App: app, Mode: drill.ModeFull})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("drill: %v %+v", err, rep.Steps)
	}
	if len(promoted) != 2 || !slices.Equal(live, []string{"succeeded", "succeeded", "succeeded", "succeeded"}) {
		t.Errorf("after the promote and the promote back, the attach releases were %v, want all succeeded", live)
	}
	waited := slices.ContainsFunc(rec.Events(), func(e drill.Event) bool {
		return e.Step == drill.StepPromote && strings.Contains(e.Message, "waiting for the release phase")
	})
	if !waited {
		t.Error("no progress while the release phase ran")
	}
	t.Logf("two 10 s release phases waited for in %s of wall time", time.Since(start).Round(time.Millisecond))
}

// A release phase that fails fails the promote, and the undo leaves the app
// on its original database, pooler included.
func TestReleasePhase_FailingFailsThePromoteAndUndoes(t *testing.T) {
	t.Parallel()
	clock := herokutest.NewClock()
	s := herokutest.NewServer(t, herokutest.WithClock(clock.Now))
	app := pooledApp(t, s, true)
	prod := s.Attachments(app)[0].AddonID
	s.SetReleasePhase(10 * time.Second)
	s.FailReleases("Attach DATABASE (", 1)
	rep, err := run(t, releaseProvider(t, s, clock), drill.Options{App: app, Mode: drill.ModeFull})
	if drill.ErrorCode(err) != drill.EFAILED || !strings.Contains(rep.Error, "release phase of release") || !strings.Contains(rep.Error, "failed") {
		t.Fatalf("err %v (%q), want the promote failed by its release phase", err, rep.Error)
	}
	if !slices.ContainsFunc(rep.Steps, func(st drill.StepRecord) bool { return st.Name == drill.StepPromote && st.Status == drill.StatusFailed }) {
		t.Errorf("the promote step did not fail: %+v", rep.Steps)
	}
	if got, want := whereIs(s, app), at(s, prod); got != want {
		t.Errorf("after the undo: %+v, want DATABASE and pooler on production %+v", got, want)
	}
	if s.Maintenance(app) || len(leftovers(s, app)) > 0 {
		t.Errorf("maintenance %v, leftovers %v", s.Maintenance(app), leftovers(s, app))
	}
}

// A release phase that never ends stops the promote after ReleaseTimeout
// (15 minutes, as pg:promote), on the clock.
func TestReleasePhase_NeverEndingIsBounded(t *testing.T) {
	t.Parallel()
	clock := herokutest.NewClock()
	s := herokutest.NewServer(t, herokutest.WithClock(clock.Now))
	app := pooledApp(t, s, true)
	s.SetReleasePhase(24 * time.Hour)
	p := releaseProvider(t, s, clock, func(c *heroku.Config) { c.MaxPollInterval = 30 * time.Second })
	rep, err := run(t, p, drill.Options{App: app, Mode: drill.ModeFull})
	if drill.ErrorCode(err) != drill.EFAILED || !strings.Contains(rep.Error, "did not end within 15m0s") {
		t.Fatalf("err %v (%q), want the wait bounded at 15 minutes", err, rep.Error)
	}
	polls := 0
	for _, c := range s.Calls() {
		if strings.Contains(c.Path, "/releases") {
			polls++
		}
	}
	// The promote and the promote back of the undo each wait 15 minutes,
	// polls growing from 1 s to 30 s: about 37 rounds each. Polling every
	// second would be 900 each.
	if polls > 2*40 {
		t.Errorf("%d polls of releases: the wait does not back off", polls)
	}
}

// A database of the Advanced tier is refused at preflight, in one
// sentence naming the tier, with nothing provisioned or changed.
func TestAdvancedTier_RefusedAtOnce(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s, func(o *herokutest.AppOptions) { o.Plan = "advanced-beta" })
	p := newProvider(t, s)
	before := snap(s, app)
	start := time.Now()
	for _, mode := range []drill.Mode{drill.ModeVerify, drill.ModeFull} {
		rep, err := run(t, p, drill.Options{App: app, Mode: mode})
		if drill.ErrorCode(err) != drill.EREFUSED || !strings.Contains(rep.Error, "Advanced tier (plan heroku-postgresql:advanced-beta)") || strings.Contains(rep.Error, "\n") {
			t.Errorf("%s: err %v (%q), want one sentence naming the tier", mode, err, rep.Error)
		}
	}
	r := &drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U"), UndoTimeout: time.Minute}
	if _, err := r.Restore(context.Background(), drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupLatest}}); drill.ErrorCode(err) != drill.EREFUSED {
		t.Errorf("restore: %v, want refused", err)
	}
	if _, err := p.Backups(context.Background(), app); drill.ErrorCode(err) != drill.EREFUSED || !strings.Contains(drill.ErrorMessage(err), "Advanced tier") {
		t.Errorf("backups: %v, want refused naming the tier", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("refusing took %s", d)
	}
	for _, c := range s.Calls() {
		if c.Method != http.MethodGet {
			t.Errorf("changed something: %v", c)
		}
	}
	requireSame(t, before, snap(s, app))
}

// Only the DATABASE_URL schedule is the app's: another name's schedule on
// the same database neither passes preflight nor is listed, and restore
// --into new gives the restored database only that one.
func TestSchedules_OnlyDatabaseURLCounts(t *testing.T) {
	t.Parallel()
	other := herokutest.Schedule{Name: "HEROKU_POSTGRESQL_RED_URL", Hour: 5, Timezone: "Europe/Paris"}
	t.Run("OtherNameOnly", func(t *testing.T) {
		t.Parallel()
		s := herokutest.NewServer(t)
		app := newApp(t, s, func(o *herokutest.AppOptions) { o.NoSchedule, o.Schedules = true, []herokutest.Schedule{other} })
		rep, err := run(t, newProvider(t, s), drill.Options{App: app})
		i := slices.IndexFunc(rep.Checks, func(c drill.Check) bool { return c.Name == "backup_schedule" })
		if err == nil || i < 0 || rep.Checks[i].OK {
			t.Errorf("err %v checks %+v, want backup_schedule failed", err, rep.Checks)
		}
	})
	t.Run("TwoNames", func(t *testing.T) {
		t.Parallel()
		s := herokutest.NewServer(t)
		app := newApp(t, s, func(o *herokutest.AppOptions) { o.Schedules = []herokutest.Schedule{other} })
		p := newProvider(t, s)
		list, err := p.Backups(context.Background(), app)
		if err != nil || len(list.Schedules) != 1 || list.Schedules[0] != (drill.Schedule{Hour: 2, Timezone: "UTC"}) {
			t.Fatalf("schedules %+v %v, want only DATABASE_URL's at 02:00 UTC", list.Schedules, err)
		}
		r := &drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U"), UndoTimeout: time.Minute}
		rep, err := r.Restore(context.Background(), drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupLatest}})
		if err != nil {
			t.Fatalf("restore: %v %+v", err, rep.Steps)
		}
		serving, _ := p.Serving(context.Background(), app)
		got := s.Schedules(serving.ID)
		if len(got) != 1 || got[0].Name != "DATABASE_URL" || got[0].Hour != 2 {
			t.Errorf("the restored database's schedules %+v, want DATABASE_URL's only", got)
		}
	})
}

// Failed polls of a transfer (a 404 while Heroku creates it) are tolerated
// up to 20 times, as the CLI tolerates them; the 21st stops the drill.
func TestTransferPoll_ToleratesTwentyFailures(t *testing.T) {
	t.Parallel()
	const transferPoll = "/client/v11/apps/[^/]+/transfers/[0-9]+"
	t.Run("Twenty", func(t *testing.T) {
		t.Parallel()
		s := herokutest.NewServer(t)
		app := newApp(t, s)
		s.FailTimes(http.MethodGet, transferPoll, http.StatusNotFound, 20)
		rep, err := run(t, newProvider(t, s), drill.Options{App: app})
		if err != nil || rep.Result != drill.Passed {
			t.Fatalf("drill: %v %+v", err, rep.Steps)
		}
	})
	t.Run("TwentyOne", func(t *testing.T) {
		t.Parallel()
		s := herokutest.NewServer(t)
		app := newApp(t, s)
		s.Fail(http.MethodGet, transferPoll, http.StatusNotFound, 0)
		rep, err := run(t, newProvider(t, s), drill.Options{App: app})
		if drill.ErrorCode(err) != drill.ENOTFOUND && drill.ErrorCode(err) != drill.EFAILED {
			t.Fatalf("err %v, want the drill stopped", err)
		}
		polls := 0
		for _, c := range s.Calls() {
			if c.Method == http.MethodGet && strings.Contains(c.Path, "/transfers/") && c.Query == "" {
				polls++
			}
		}
		if polls != 21 {
			t.Errorf("%d failed polls before giving up, want 21 (%s)", polls, rep.Error)
		}
	})
}

// The app's DATABASE add-on is also attached to another app: it still
// needs a spare attachment on this app before DATABASE moves (Heroku
// refuses to move its last billing attachment).
func TestPromote_SpareNeededUnlessAnotherAttachmentOnThisApp(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	reader := newApp(t, s)
	prod := s.Attachments(app)[0].AddonID
	if code := post(t, s, "/addon-attachments", `{"addon":"`+prod+`","app":"`+reader+`","name":"SHARED_DB"}`); code != http.StatusCreated {
		t.Fatalf("share the database: %d", code)
	}
	before := snap(s, app)
	rep, err := run(t, newProvider(t, s), drill.Options{App: app, Mode: drill.ModeFull})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("drill: %v %+v", err, rep.Steps)
	}
	requireSame(t, withoutAttachmentIDs(before), withoutAttachmentIDs(snap(s, app)))
}

// Promoting a follower back warns, as pg:promote does: it stays read-only.
func TestPromote_FollowerWarns(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	p := newProvider(t, s)
	desc, err := p.Describe(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	scratch, err := p.CreateScratch(context.Background(), app, "dfollow1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Promote(context.Background(), app, scratch); err != nil {
		t.Fatal(err)
	}
	s.SetFollowing(desc.Database.ID, "postgresql-leader-1234")
	var mu sync.Mutex
	var warnings []string
	ctx := drill.WithProgress(context.Background(), func(pr drill.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if pr.Warning {
			warnings = append(warnings, pr.Message)
		}
	})
	if err := p.Promote(ctx, app, desc.Database); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "read-only follower") || !strings.Contains(warnings[0], "pg:unfollow") {
		t.Errorf("warnings %q, want one about the follower", warnings)
	}
	if err := p.DestroyScratch(context.Background(), scratch); err != nil {
		t.Fatal(err)
	}
}

// A legacy PGBackups backup, which the CLI names o<name> (ob001), is found
// by that name in the app's list and restored.
func TestBackups_LegacyNameResolves(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	s.SetLegacyName(app, 1, "b001")
	ref, err := drill.ParseBackupRef("ob001")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := run(t, newProvider(t, s), drill.Options{App: app, Backup: ref})
	if err != nil || rep.Result != drill.Passed || rep.Backup == nil || rep.Backup.ID != "ob001" {
		t.Fatalf("drill of ob001: %v %+v %+v", err, rep.Backup, rep.Steps)
	}
}

// Heroku often answers 429 without Retry-After, and a response may carry
// no RateLimit-Remaining: the transport backs off by itself and the drill
// finishes.
func TestRateLimit_NoRetryAfterNoRemaining(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	s.SetRateLimitRemaining(-1)
	s.RateLimitStorm(3, -1)
	tr := &heroku.Transport{MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, LowDelay: time.Millisecond}
	p := newProvider(t, s, func(c *heroku.Config) { c.Transport = tr })
	rep, err := run(t, p, drill.Options{App: app})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("drill: %v %+v", err, rep.Steps)
	}
	if _, seen := tr.RateLimitRemaining(); seen {
		t.Error("a RateLimit-Remaining was seen: the test proves nothing")
	}
	calls := s.Calls()
	for i, c := range calls[:3] {
		if c.Status != http.StatusTooManyRequests {
			t.Fatalf("call %d answered %d, want 429", i, c.Status)
		}
		if gap := calls[i+1].At.Sub(c.At); gap < 10*time.Millisecond {
			t.Errorf("retried after %s: no backoff without Retry-After", gap)
		}
	}
}

// Heroku takes any backup_url and fails later, in the transfer: so does
// the fake, with the download's error in the logs.
func TestFake_RestoreOfAnUnknownURLFailsInTheTransfer(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s)
	addon := s.Attachments(app)[0].AddonID
	if code := post(t, s, "/client/v11/databases/"+addon+"/restores", `{"backup_url":"https://example.com/nothing.dump"}`); code != http.StatusCreated {
		t.Fatalf("restore POST: %d, want 201", code)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/client/v11/apps/"+app+"/transfers/2?verbose=true", nil)
	req.Header.Set("Authorization", "Bearer "+herokutest.APIKey)
	req.Header.Set("Accept", "application/vnd.heroku+json; version=3")
	var tr heroku.Transfer
	for i := 0; i < 5 && !tr.Finished(); i++ {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&tr)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if !tr.Finished() || tr.Succeeded || tr.ToType != "pg_restore" || len(tr.Logs) == 0 {
		t.Errorf("transfer %+v, want a restore that failed with logs", tr)
	}
}

// A capture of a database with Continuous Protection warns, as
// pg:backups:capture does, in the drill's report; one without does not.
func TestCapture_WarnsOfContinuousProtection(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	protected := newApp(t, s, func(o *herokutest.AppOptions) { o.Plan = "standard-0" })
	plain := newApp(t, s)
	p := newProvider(t, s)
	for app, want := range map[string]bool{protected: true, plain: false} {
		rep, err := run(t, p, drill.Options{App: app})
		if err != nil {
			t.Fatalf("%s: %v", app, err)
		}
		got := slices.ContainsFunc(rep.Warnings, func(n string) bool { return strings.Contains(n, "Continuous Protection is on") })
		if got != want {
			t.Errorf("%s: warnings %q, want the Continuous Protection warning %v", app, rep.Warnings, want)
		}
	}
}
