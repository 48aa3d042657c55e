package bot_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/heroku"
	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
)

// startRestore sends an emergency restore as u in ch and returns its id
// and parent message.
func (bd *bundle) startRestore(t *testing.T, u, ch, text string) (string, slacktest.Call) {
	t.Helper()
	env := bd.fake.SlashCommand(t, slacktest.Slash{User: u, Channel: ch, Text: text})
	ack := ackText(t, bd.fake.WaitAck(t, env))
	m := drillIDInAck.FindStringSubmatch(ack)
	if m == nil {
		t.Fatalf("ack %q does not start a restore", ack)
	}
	id := m[1]
	parent := bd.fake.WaitCall(t, "parent of "+id, func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Error == "" && c.Channel == ch && c.ThreadTS == "" && strings.Contains(c.Text, id)
	})
	if !strings.Contains(parent.Text, "Emergency restore "+id) {
		t.Fatalf("parent %q does not say it is an emergency restore", parent.Text)
	}
	return id, parent
}

// restoreVerdict waits for the broadcast verdict of restore id.
func (bd *bundle) restoreVerdict(t *testing.T, parent slacktest.Call, id string) slacktest.Call {
	t.Helper()
	return bd.fake.WaitCall(t, "verdict of restore "+id, func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Channel == parent.Channel && c.ThreadTS == parent.Reply && c.Broadcast &&
			strings.Contains(c.Text, "Emergency restore "+id)
	})
}

// confirmTyped clicks and submits typed as u; the submission must close
// the modal.
func (bd *bundle) confirmTyped(t *testing.T, u string, prompt slacktest.Call, id, typed string) {
	t.Helper()
	bd.clickModal(t, u, prompt, id)
	if e := bd.submit(t, u, id, typed); e != "" {
		t.Fatalf("%q rejected: %s", typed, e)
	}
}

var capturedID = regexp.MustCompile("captured backup `([a-z]\\d{3,})` of `([^`]+)`: ([0-9.]+ [kKMGT]?i?B), taken at <!date\\^\\d+\\^\\{date_short_pretty\\} \\{time\\}\\|(\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC)>")

// capture captures a backup of the app through Slack and returns its id.
func (bd *bundle) capture(t *testing.T) string {
	t.Helper()
	_, a := bd.command(t, alice, "capture "+bd.app)
	if !strings.Contains(ackText(t, a), "Capturing a backup of `"+bd.app+"`") {
		t.Fatalf("capture ack %q", ackText(t, a))
	}
	c := bd.fake.WaitCall(t, "captured backup", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Channel == channel && capturedID.MatchString(c.Text)
	})
	m := capturedID.FindStringSubmatch(c.Text)
	if m[2] != bd.app {
		t.Fatalf("captured %q of %q", m[1], m[2])
	}
	return m[1]
}

// count counts the rows of table in the local database db.
func count(t *testing.T, db, table string) int {
	t.Helper()
	var n int
	if err := drilltest.Connect(t, db).QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s in %s: %v", table, db, err)
	}
	return n
}

// callIndex is the index of the first call matching, or -1.
func callIndex(calls []slacktest.Call, match func(slacktest.Call) bool) int {
	return slices.IndexFunc(calls, match)
}

func requireAll(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// TestCapture_ThroughSlack: capture replies with the new backup's id, size
// and time, and the backup is on the platform.
func TestCapture_ThroughSlack(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	id := bd.capture(t)
	l, err := bd.provider.Backups(context.Background(), bd.app)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := l.NewestSucceeded()
	if !ok || b.ID != id || b.SizeBytes <= 0 {
		t.Fatalf("the platform's newest backup is %+v, the thread says %s", b, id)
	}
	c := bd.fake.WaitCall(t, "capture message", func(c slacktest.Call) bool { return strings.Contains(c.Text, "captured backup `"+id+"`") })
	if !strings.Contains(c.Text, "restore "+bd.app+" "+id) {
		t.Errorf("capture message %q does not say how to restore it", c.Text)
	}
}

// TestRestoreIntoNew_Local: /restore-drill restore APP BACKUP on the local
// provider, end to end: plan, confirmation, safety backup, restore,
// checksums, promote confirmation, verdict, and the platform's state.
func TestRestoreIntoNew_Local(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	ctx := context.Background()
	bk := bd.capture(t)
	drilltest.Exec(t, bd.app, `DELETE FROM items WHERE id > 50`) // the incident

	id, parent := bd.startRestore(t, alice, channel, "restore "+bd.app+" "+bk)
	requireAll(t, "parent", parent.BlockText(), "backup `"+bk+"` into a new database", "requested by <@"+alice+">")
	prompt, cid := bd.prompt(t, parent.Reply, 1)

	// The plan is stated once, in the prompt, and nothing changed yet.
	calls := bd.fake.Calls()
	requireAll(t, "plan in the prompt", prompt.BlockText(),
		"Backup "+bk+" of "+bd.app+": taken ", " old, ", " kB.", // id, when, age, size
		"First, a safety backup of "+bd.app, "restored into a new database", "(the app restarts)",
		"The current database "+bd.app+" is kept, untouched, for forensics", "Estimated time:", "drill-verified")
	if n := strings.Count(strings.Join(threadTexts(calls, parent.Reply), "\n"), "First, a safety backup of "+bd.app); n != 1 {
		t.Errorf("the thread states the plan %d times, want once (in the prompt)", n)
	}
	if containsAny(threadTexts(calls, parent.Reply), "`safety_backup`") {
		t.Fatalf("the safety backup ran before the confirmation")
	}
	if l, _ := bd.provider.Backups(ctx, bd.app); len(l.Backups) != 1 {
		t.Fatalf("a backup was taken before the confirmation: %+v", l.Backups)
	}
	if !prompt.Broadcast || !strings.Contains(prompt.Text, "restore backup "+bk+" of "+bd.app+" into a new database") ||
		!strings.Contains(prompt.BlockText(), "Type `"+bd.app+"` to confirm") {
		t.Fatalf("prompt %q: %s", prompt.Text, prompt.BlockText())
	}
	bd.confirmTyped(t, alice, prompt, cid, bd.app)

	// The safety backup is named as soon as it exists.
	safety := bd.waitThread(t, parent.Reply, "`safety_backup` done in")
	m := regexp.MustCompile(`safety backup ([a-z]\d{3,}) taken at`).FindStringSubmatch(safety)
	if m == nil || m[1] == bk {
		t.Fatalf("the safety backup step does not name a new backup: %q", safety)
	}
	safetyID := m[1]

	// Restored and checked, then the second confirmation to promote.
	prompt2, cid2 := bd.prompt(t, parent.Reply, 2)
	requireAll(t, "promote prompt", prompt2.Text+"\n"+prompt2.BlockText(), "promote ", "restored from "+bk, "match",
		bd.app+" stays for forensics")
	requireAll(t, "thread before the promote", strings.Join(threadTexts(bd.fake.Calls(), parent.Reply), "\n"),
		"`provision` done in", "`restore` done in", "`verify` done in")
	if e := bd.submit(t, bob, cid2, bd.app+" "+bk); !strings.Contains(e, "Type "+bd.app+" exactly") {
		t.Fatalf("a wrong promote text: %q", e)
	}
	bd.confirmTyped(t, bob, prompt2, cid2, bd.app)

	v := bd.restoreVerdict(t, parent, id)
	kept := bd.app + "_orig_" + id
	requireAll(t, "verdict", v.Text+"\n"+v.BlockText(),
		"PASSED",
		"Now serving `"+bd.app+"` (its `DATABASE_URL`): `"+bd.app+"`",
		"Backup `"+bk+"`", "; restore time ",
		"Safety backup: `"+safetyID+"`",
		"Kept for forensics (the damaged database): `"+kept+"` — remove it when it is no longer needed: dropdb "+kept,
		"To roll back: `/restore-drill restore "+bd.app+" "+safetyID+" --into new`",
		"*Production:* "+bd.app+" is served by "+bd.app+", restored from "+bk+"; the previous database is kept as "+kept,
		"confirmed `restore` by typing `"+bd.app+"`", "<@"+bob+"> confirmed `promote` by typing `"+bd.app+"`")
	if !containsAny(threadTexts(bd.fake.Calls(), parent.Reply), "Checksums of drill "+id) {
		t.Error("no checksum table in the thread")
	}
	bd.fake.WaitCall(t, "parent shows production's state", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.TS == parent.Reply && strings.Contains(c.BlockText(), "*Production:* "+bd.app+" is served by")
	})

	// The platform: the app's name serves the backup's rows, the damaged
	// database is kept, nothing else is left.
	if n := count(t, bd.app, "items"); n != 200 {
		t.Errorf("%s serves %d items, want the backup's 200", bd.app, n)
	}
	if n := count(t, kept, "items"); n != 50 {
		t.Errorf("the kept database %s holds %d items, want the damaged 50", kept, n)
	}
	if left := scratchLeft(t, bd.app); len(left) > 0 {
		t.Errorf("scratch databases left: %v", left)
	}
}

// TestRestoreIntoProduction_LocalTwoPerson: --into production needs
// "APP BACKUP" typed, by someone other than the requester; production then
// holds the backup, out of maintenance.
func TestRestoreIntoProduction_LocalTwoPerson(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{twoPerson: true})
	bk := bd.capture(t)
	drilltest.Exec(t, bd.app, `DELETE FROM items`)

	id, parent := bd.startRestore(t, alice, channel, "restore "+bd.app+" "+bk+" --into production")
	requireAll(t, "parent", parent.BlockText(), "*IN PLACE onto production*")
	prompt, cid := bd.prompt(t, parent.Reply, 1)
	proof := bd.app + " " + bk
	requireAll(t, "prompt", prompt.Text+"\n"+prompt.BlockText(), "IN PLACE onto "+bd.app, "Type `"+proof+"` to confirm",
		"REPLACED by "+bk+" in place")

	// The requester cannot confirm alone.
	if e := bd.submit(t, alice, cid, proof); !strings.Contains(e, "Two people are required") {
		t.Fatalf("the requester's own confirmation: %q", e)
	}
	// The app name alone is not enough: rejected inline.
	bd.click(t, bob, prompt, cid)
	view := bd.modal(t, cid, 1)
	if !strings.Contains(string(view.View), "Type "+proof+" to confirm") {
		t.Fatalf("the modal does not ask for %q: %s", proof, view.View)
	}
	if e := bd.submit(t, bob, cid, bd.app); !strings.Contains(e, "Type "+proof+" exactly") {
		t.Fatalf("the app name alone: %q", e)
	}
	if e := bd.submit(t, bob, cid, bd.app+" b999"); !strings.Contains(e, "Type "+proof+" exactly") {
		t.Fatalf("a wrong backup id: %q", e)
	}
	if n := count(t, bd.app, "items"); n != 0 {
		t.Fatalf("production changed before the confirmation: %d items", n)
	}
	if e := bd.submit(t, bob, cid, proof); e != "" {
		t.Fatalf("the right text was rejected: %q", e)
	}

	v := bd.restoreVerdict(t, parent, id)
	requireAll(t, "verdict", v.Text+"\n"+v.BlockText(), "PASSED",
		"Now serving `"+bd.app+"` (its `DATABASE_URL`): `"+bd.app+"`",
		"*IN PLACE onto production*; restore time ", "Safety backup: `",
		"*Production:* "+bd.app+" is served by "+bd.app+", its contents replaced by "+bk,
		"<@"+bob+"> confirmed `restore` by typing `"+proof+"`")
	requireAll(t, "thread", strings.Join(threadTexts(bd.fake.Calls(), parent.Reply), "\n"),
		"`maintenance_on` done in", "`restore_in_place` done in", "`maintenance_off` done in")
	if n := count(t, bd.app, "items"); n != 200 {
		t.Errorf("production holds %d items, want the backup's 200", n)
	}
	var limit int
	if err := drilltest.Connect(t, "").QueryRow(context.Background(), `SELECT datconnlimit FROM pg_database WHERE datname = $1`, bd.app).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if limit == 0 {
		t.Error("production is left in maintenance (connection limit 0)")
	}
}

// TestRestoreFaults_Local: an unknown backup id stops before anything
// changes, with one sentence and production's state in the thread.
func TestRestoreFaults_Local(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	id, parent := bd.startRestore(t, alice, channel, "restore "+bd.app+" b042")
	v := bd.restoreVerdict(t, parent, id)
	requireAll(t, "verdict", v.Text+"\n"+v.BlockText(), "FAILED", "backup b042 not found for "+bd.app,
		"*Production:* "+bd.app+" is served by "+bd.app+", unchanged by this restore.")
	if slices.ContainsFunc(bd.fake.Calls(), isPrompt) {
		t.Error("a prompt was posted for an unknown backup")
	}
	if l, _ := bd.provider.Backups(context.Background(), bd.app); len(l.Backups) != 0 {
		t.Errorf("a safety backup was taken: %+v", l.Backups)
	}
	if n := count(t, bd.app, "items"); n != 200 {
		t.Errorf("production changed: %d items", n)
	}
}

// TestRestore_IncidentChannel: a restore started in another channel also
// posts its parent and its verdict in DRILL_INCIDENT_CHANNEL.
func TestRestore_IncidentChannel(t *testing.T) {
	t.Parallel()
	const incidents = "C0INCIDNT"
	bd := setup(t, options{incidentChannel: incidents})
	id, parent := bd.startRestore(t, alice, channel, "restore "+bd.app+" b042")
	mirror := bd.fake.WaitCall(t, "parent in the incident channel", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Channel == incidents && c.ThreadTS == "" && strings.Contains(c.Text, "Emergency restore "+id)
	})
	requireAll(t, "incident parent", mirror.BlockText(), "Started in <#"+channel+">", "backup `b042` into a new database")
	bd.restoreVerdict(t, parent, id)
	bd.fake.WaitCall(t, "verdict in the incident channel", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Channel == incidents && c.ThreadTS == mirror.Reply && c.Broadcast &&
			strings.Contains(c.Text, "Emergency restore "+id) && strings.Contains(c.BlockText(), "*Production:*")
	})
	bd.fake.WaitCall(t, "incident parent updated", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.Channel == incidents && c.TS == mirror.Reply && strings.Contains(c.Text, "FAILED")
	})

	// Started in the incident channel itself: one parent, no copy.
	bd.bot.Wait()
	id2, _ := bd.startRestore(t, alice, incidents, "restore "+bd.app+" b043")
	bd.bot.Wait()
	n := 0
	for _, c := range bd.fake.Calls() {
		if c.Method == "chat.postMessage" && c.ThreadTS == "" && strings.Contains(c.Text, "Emergency restore "+id2) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d parents for a restore started in the incident channel, want 1", n)
	}
}

// Heroku, through the bot.

const herokuSQL = `
CREATE TABLE drill_items (id int PRIMARY KEY, note text);
INSERT INTO drill_items SELECT g, 'n' || g FROM generate_series(1, 100) g;
CREATE TABLE "Events 2026" (at timestamptz, payload jsonb);
INSERT INTO "Events 2026" SELECT now(), jsonb_build_object('g', g) FROM generate_series(1, 10) g;`

type herokuApp struct {
	*bundle
	s      *herokutest.Server
	p      *heroku.Provider
	before drill.Fingerprint // production before the incident, as backup a001 holds it
	prod   herokutest.Attachment
}

// setupHeroku starts a fake Heroku with an app backed up an hour ago, the
// bot on it, and damages production the way an incident would.
func setupHeroku(t *testing.T, o options) *herokuApp {
	t.Helper()
	s := herokutest.NewServer(t, herokutest.WithTransferSteps(-1), herokutest.WithProvisionPolls(-1))
	app := "bot-" + drilltest.RandomSuffix()
	if _, err := s.AddApp(app, herokutest.AppOptions{SQL: herokuSQL, Backups: []time.Duration{time.Hour}, Formation: map[string]int{"web": 1, "worker": 1}}); err != nil {
		t.Fatal(err)
	}
	p, err := heroku.New(heroku.Config{APIKey: herokutest.APIKey, APIURL: s.URL, DataAPIURL: s.URL,
		PollInterval: time.Millisecond, MaxPollInterval: 4 * time.Millisecond,
		Transport: &heroku.Transport{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, LowDelay: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	h := &herokuApp{s: s, p: p, prod: database(t, s, app)}
	serving, err := p.Serving(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	if h.before, err = p.Fingerprint(context.Background(), serving); err != nil {
		t.Fatal(err)
	}
	if err := s.Exec(h.prod.AddonID, `DELETE FROM drill_items`); err != nil {
		t.Fatal(err)
	}
	o.provider, o.app = p, app
	h.bundle = setup(t, o)
	t.Cleanup(func() { h.requireNoSecret(t) })
	return h
}

// database is the app's DATABASE attachment.
func database(t *testing.T, s *herokutest.Server, app string) herokutest.Attachment {
	t.Helper()
	for _, a := range s.Attachments(app) {
		if a.Name == "DATABASE" {
			return a
		}
	}
	t.Fatalf("%s has no DATABASE attachment: %+v", app, s.Attachments(app))
	return herokutest.Attachment{}
}

// servesBackup says how the data behind DATABASE differs from the backup's.
func (h *herokuApp) servesBackup(t *testing.T) string {
	t.Helper()
	serving, err := h.p.Serving(context.Background(), h.app)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := h.p.Fingerprint(context.Background(), serving)
	if err != nil {
		t.Fatal(err)
	}
	if c := drill.Compare(h.before, fp, true); !c.OK() {
		return c.Summary()
	}
	return ""
}

func (h *herokuApp) requireNoSecret(t *testing.T) {
	for _, c := range h.fake.Calls() {
		for _, secret := range append(h.s.Passwords(), herokutest.APIKey) {
			if strings.Contains(c.Body+c.Text+string(c.Blocks), secret) {
				t.Errorf("%s carries a Heroku credential (%.6s…)", c.Method, secret)
			}
		}
	}
}

func addonNames(l []herokutest.AddOn) []string {
	var out []string
	for _, a := range l {
		out = append(out, a.Name)
	}
	return out
}

// TestRestoreIntoNew_Heroku: into new on the fake Heroku through Slack: a
// new add-on is DATABASE with the backup's data, the damaged add-on stays.
func TestRestoreIntoNew_Heroku(t *testing.T) {
	t.Parallel()
	h := setupHeroku(t, options{})
	id, parent := h.startRestore(t, alice, channel, "restore "+h.app+" a001")
	prompt, cid := h.prompt(t, parent.Reply, 1)
	h.confirmTyped(t, alice, prompt, cid, h.app)
	if r := h.waitThread(t, parent.Reply, "`safety_backup` done in"); !strings.Contains(r, "safety backup b002 taken") {
		t.Fatalf("the safety backup's line: %s", r)
	}
	prompt2, cid2 := h.prompt(t, parent.Reply, 2)
	h.confirmTyped(t, bob, prompt2, cid2, h.app)
	v := h.restoreVerdict(t, parent, id)
	db := database(t, h.s, h.app)
	requireAll(t, "verdict", v.Text+"\n"+v.BlockText(), "PASSED",
		"Now serving `"+h.app+"` (its `DATABASE_URL`): `"+db.AddonName+"`",
		"Safety backup: `b002`", "Kept for forensics (the damaged database): `"+h.prod.AddonName+"`",
		"heroku addons:destroy "+h.prod.AddonName+" --app "+h.app,
		"To roll back: `/restore-drill restore "+h.app+" b002 --into new`")
	if db.AddonID == h.prod.AddonID {
		t.Fatalf("DATABASE is still the damaged add-on %s", h.prod.AddonName)
	}
	if !slices.ContainsFunc(h.s.AddOns(h.app), func(a herokutest.AddOn) bool { return a.ID == h.prod.AddonID }) {
		t.Errorf("the damaged add-on %s is gone: %v", h.prod.AddonName, addonNames(h.s.AddOns(h.app)))
	}
	if d := h.servesBackup(t); d != "" {
		t.Errorf("DATABASE does not hold the backup's data: %s", d)
	}
}

// TestRestoreIntoProduction_Heroku: in place on the fake Heroku: the same
// add-on is DATABASE, holding the backup's data, out of maintenance with
// its workers back.
func TestRestoreIntoProduction_Heroku(t *testing.T) {
	t.Parallel()
	h := setupHeroku(t, options{})
	id, parent := h.startRestore(t, alice, channel, "restore "+h.app+" a001 --into production")
	prompt, cid := h.prompt(t, parent.Reply, 1)
	h.click(t, bob, prompt, cid)
	if e := h.submit(t, bob, cid, h.app); !strings.Contains(e, "Type "+h.app+" a001 exactly") {
		t.Fatalf("the app name alone: %q", e)
	}
	if e := h.submit(t, bob, cid, h.app+" a001"); e != "" {
		t.Fatalf("the right text: %q", e)
	}
	v := h.restoreVerdict(t, parent, id)
	requireAll(t, "verdict", v.Text+"\n"+v.BlockText(), "PASSED",
		"Now serving `"+h.app+"` (its `DATABASE_URL`): `"+h.prod.AddonName+"`", "Safety backup: `b002`",
		"its contents replaced by a001")
	if db := database(t, h.s, h.app); db.AddonID != h.prod.AddonID {
		t.Errorf("DATABASE moved to %s on an in-place restore", db.AddonName)
	}
	if d := h.servesBackup(t); d != "" {
		t.Errorf("DATABASE does not hold the backup's data: %s", d)
	}
	if h.s.Maintenance(h.app) || h.s.Formation(h.app)["worker"] != 1 {
		t.Errorf("maintenance %v, formation %v after the restore", h.s.Maintenance(h.app), h.s.Formation(h.app))
	}
}

// TestRestoreFaults_Heroku: a restore that ends with warnings, and a
// provider error after the promote: each ends with one sentence and the
// thread saying what state production is in.
func TestRestoreFaults_Heroku(t *testing.T) {
	t.Parallel()
	t.Run("Warnings", func(t *testing.T) {
		t.Parallel()
		h := setupHeroku(t, options{})
		h.s.RestoreWarnings(true)
		id, parent := h.startRestore(t, alice, channel, "restore "+h.app+" a001")
		prompt, cid := h.prompt(t, parent.Reply, 1)
		h.confirmTyped(t, alice, prompt, cid, h.app)
		v := h.restoreVerdict(t, parent, id)
		requireAll(t, "verdict", v.Text+"\n"+v.BlockText(), "FAILED", "finished with 1 warning,",
			"*Production:* "+h.app+" is served by "+h.prod.AddonName+", unchanged by this restore.",
			"Safety backup: `b002`", "Undone: ")
		if strings.Contains(v.BlockText(), "To roll back") {
			t.Errorf("a failed restore offers a rollback: %s", v.BlockText())
		}
		if db := database(t, h.s, h.app); db.AddonID != h.prod.AddonID {
			t.Errorf("DATABASE moved to %s", db.AddonName)
		}
		if l := h.s.AddOns(h.app); len(l) != 1 {
			t.Errorf("add-ons left: %v", addonNames(l))
		}
		if slices.ContainsFunc(h.fake.Calls(), func(c slacktest.Call) bool { return isPrompt(c) && strings.Contains(c.Text, "promote") }) {
			t.Error("a restore with warnings was offered for promotion")
		}
	})
	t.Run("ErrorAfterPromote", func(t *testing.T) {
		t.Parallel()
		h := setupHeroku(t, options{})
		// Adopting the restored add-on (renaming it) fails after it was
		// promoted and checked: the restore has gone forward, so the
		// restored database keeps serving, and the verdict says so, with
		// the kept database and what to do by hand.
		h.s.Fail("PATCH", "/apps/[^/]+/addons/[^/]+", 422, 0, "Name is invalid.")
		id, parent := h.startRestore(t, alice, channel, "restore "+h.app+" a001")
		prompt, cid := h.prompt(t, parent.Reply, 1)
		h.confirmTyped(t, alice, prompt, cid, h.app)
		prompt2, cid2 := h.prompt(t, parent.Reply, 2)
		h.confirmTyped(t, bob, prompt2, cid2, h.app)
		v := h.restoreVerdict(t, parent, id)
		requireAll(t, "verdict", v.Text+"\n"+v.BlockText(), "FAILED", "Name is invalid",
			", restored from a001; the previous database is kept as "+h.prod.AddonName, "making it the app's own database FAILED", "to roll back: ")
		if db := database(t, h.s, h.app); db.AddonID == h.prod.AddonID {
			t.Errorf("DATABASE is the damaged %s again, want the restored one", db.AddonName)
		}
		if l := h.s.AddOns(h.app); len(l) != 2 {
			t.Errorf("add-ons: %v, want the restored and the kept one", addonNames(l))
		}
		t.Logf("verdict: %s", v.BlockText())
	})
}
