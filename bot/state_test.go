package bot_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/trend"
)

// TestTwoBots_SharedState runs two bot processes on one state database,
// each with its own Slack connection. A full drill runs on the first: the
// second refuses the same app saying who holds it and since when, lists
// it in status, and handles one of its confirmations (click on one
// process, submission on the other, both ways round). The history of the
// second then shows the drill with its trend chart uploaded in the thread.
func TestTwoBots_SharedState(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	a := setup(t, options{store: store})
	b := setup(t, options{store: store, app: a.app})
	ctx := context.Background()

	id, parent := a.run(t, "run "+a.app+" --mode full")
	prompt1, cid1 := a.prompt(t, parent.Reply, 1)

	running, err := store.RunningDrills(ctx)
	if err != nil || len(running) != 1 || running[0].DrillID != id {
		t.Fatalf("running drills %+v, %v", running, err)
	}
	if r := running[0]; r.Channel != channel || r.ThreadTS != parent.Reply || r.Requester != alice {
		t.Fatalf("the journal does not know the drill's thread: %+v (thread %s)", r, parent.Reply)
	}

	_, ack := b.command(t, bob, "run "+a.app)
	if txt := ackText(t, ack); !strings.Contains(txt, "is held by drill `"+id+"`") || !strings.Contains(txt, "<@"+alice+">") || !strings.Contains(txt, "since ") {
		t.Fatalf("second process let a second drill of the app start, or did not say who holds it: %q", txt)
	}
	_, ack = b.command(t, bob, "status")
	if txt := ackText(t, ack); !strings.Contains(txt, id) || !strings.Contains(txt, "in another process") {
		t.Fatalf("status on the other process: %q", txt)
	}

	// Clicked on A, submitted on B.
	a.click(t, bob, prompt1, cid1)
	a.fake.WaitCall(t, "views.open on A", func(c slacktest.Call) bool { return c.Method == "views.open" })
	if e := b.submit(t, bob, cid1, a.app); e != "" {
		t.Fatalf("submission on the other process rejected: %q", e)
	}
	a.fake.WaitCall(t, "A's prompt says bob confirmed", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.TS == prompt1.Reply && strings.Contains(c.BlockText(), "<@"+bob+"> confirmed")
	})
	// Clicked on B, submitted on A.
	prompt2, cid2 := a.prompt(t, parent.Reply, 2)
	env := b.fake.Click(t, slacktest.Click{User: alice, Channel: channel, MessageTS: prompt2.Reply, ActionID: "restore_drill_confirm", BlockID: "confirm_actions", Value: cid2})
	b.fake.WaitAck(t, env)
	b.fake.WaitCall(t, "views.open on B", func(c slacktest.Call) bool {
		return c.Method == "views.open" && strings.Contains(string(c.View), `"private_metadata":"`+cid2+`"`)
	})
	if e := a.submit(t, alice, cid2, a.app); e != "" {
		t.Fatalf("second confirmation rejected: %q", e)
	}
	if v := a.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q", v.Text)
	}
	a.bot.Wait()

	hist, err := store.History(ctx, a.app, 10)
	if err != nil || len(hist) != 1 || hist[0].DrillID != id || hist[0].Result != drill.Passed || len(hist[0].Confirmations) != 2 {
		t.Fatalf("history in the state database: %+v, %v", hist, err)
	}

	// History on B, which did not run the drill, reads the state database.
	_, ack = b.command(t, alice, "history "+a.app)
	if txt := ackText(t, ack); !strings.Contains(txt, "Reading the drills") {
		t.Fatalf("history ack %q", txt)
	}
	table := b.fake.WaitCall(t, "history table", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.ThreadTS == "" && strings.Contains(c.Text, "the last 1 (newest first")
	})
	for _, want := range []string{id, "full", "PASSED", "RTO ", "RPO ", "canary found", "tables", "confirmed by <@" + bob + ">, <@" + alice + ">"} {
		if !strings.Contains(table.Text, want) {
			t.Errorf("history table lacks %q:\n%s", want, table.Text)
		}
	}
	shared := b.fake.WaitCall(t, "trend chart shared in the thread", func(c slacktest.Call) bool {
		return c.Method == "files.completeUploadExternal" && c.Error == ""
	})
	want, err := trend.PNG(hist)
	if err != nil {
		t.Fatal(err)
	}
	if shared.Channel != channel || shared.ThreadTS != table.Reply || !bytes.Equal(shared.File, want) || !bytes.HasPrefix(shared.File, []byte("\x89PNG")) {
		t.Fatalf("chart shared in %s thread %s (want %s), %d bytes (want the %d bytes of trend.PNG)", shared.Channel, shared.ThreadTS, table.Reply, len(shared.File), len(want))
	}
}

// TestHistory_UploadFailsTableStays: when the upload fails the table is
// posted anyway, and the thread says the chart is missing.
func TestHistory_UploadFailsTableStays(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	bd := setup(t, options{store: store})
	id, parent := bd.run(t, "run "+bd.app)
	bd.verdict(t, parent, id)
	bd.bot.Wait()
	bd.fake.Fail("files.getUploadURLExternal", "internal_error", 1)
	bd.command(t, alice, "history "+bd.app)
	table := bd.fake.WaitCall(t, "history table", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && strings.Contains(c.Text, "the last 1 (newest first") && strings.Contains(c.Text, id)
	})
	bd.fake.WaitCall(t, "chart missing note", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.ThreadTS == table.Reply && strings.Contains(c.Text, "could not be uploaded")
	})
}

// TestResumeOnStart: a drill left by a dead process (its journal says it
// made a scratch database and turned maintenance on, and it really did) is
// undone when a bot starts, and the bot says so in the drill's own thread.
func TestResumeOnStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := drilltest.NewStateStore(t)
	app := newApp(t, appSQL)
	dir := t.TempDir() // BACKUP_DIR, the same after the restart
	p := localProvider(t, dir)
	const thread = "1700000000.000042"
	rec := drill.DrillRecord{DrillID: drill.NewDrillID(), App: app, Provider: p.Name(), Mode: drill.ModeFull, Requester: alice,
		Channel: channel, ThreadTS: thread, StartedAt: time.Now()}
	release, err := store.Begin(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	dctx := drill.WithDrill(ctx, rec.DrillID)
	u := drill.UndoRecord{Step: drill.StepProvision, Kind: drill.UndoDestroyScratch, App: app, DrillID: rec.DrillID}
	if u.ID, err = store.PushUndo(ctx, rec.DrillID, u); err != nil {
		t.Fatal(err)
	}
	if u.Database, err = p.CreateScratch(dctx, app, rec.DrillID, nil); err != nil {
		t.Fatal(err)
	}
	must(t, store.UpdateUndo(ctx, rec.DrillID, u))
	must(t, store.Step(ctx, rec.DrillID, drill.StepRecord{Name: drill.StepProvision, Status: drill.StatusSucceeded}))
	if _, err := store.PushUndo(ctx, rec.DrillID, drill.UndoRecord{Step: drill.StepMaintenanceOn, Kind: drill.UndoMaintenance, App: app, DrillID: rec.DrillID}); err != nil {
		t.Fatal(err)
	}
	must(t, p.SetMaintenance(dctx, app, true))
	must(t, store.Step(ctx, rec.DrillID, drill.StepRecord{Name: drill.StepMaintenanceOn, Status: drill.StatusSucceeded}))
	release() // the process dies: Postgres drops its locks
	must(t, store.ExpireOwner(ctx, rec.DrillID))
	if len(scratchLeft(t, app)) != 1 {
		t.Fatal("the dead drill's scratch database is missing")
	}

	bd := setup(t, options{store: store, app: app, backupDir: dir})
	m := bd.fake.WaitCall(t, "resume note in the drill's thread", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Channel == channel && c.ThreadTS == thread
	})
	for _, want := range []string{"`" + rec.DrillID + "`", "died at step `maintenance_on`", "Undone: `maintenance_on`, `provision`", "Nothing it did is left behind"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("resume note lacks %q: %q", want, m.Text)
		}
	}
	if !m.Broadcast {
		t.Error("the resume note is not broadcast to the channel")
	}
	if left := scratchLeft(t, app); len(left) != 0 {
		t.Fatalf("scratch databases left: %v", left)
	}
	if a, err := p.Describe(ctx, app); err != nil || a.Maintenance {
		t.Fatalf("app still in maintenance: %+v %v", a, err)
	}
	hist, err := store.History(ctx, app, 1)
	if err != nil || len(hist) != 1 || hist[0].DrillID != rec.DrillID || hist[0].Result != drill.Failed || !strings.Contains(hist[0].Error, "died") {
		t.Fatalf("history after resume: %+v %v", hist, err)
	}
	// The app is free again.
	id, parent := bd.run(t, "run "+app)
	if v := bd.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("drill after resume: %q", v.Text)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestTwoBots_RaceForOneApp: the same drill asked of two bot processes at
// once runs in exactly one; the other says who holds the app.
func TestTwoBots_RaceForOneApp(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	a := setup(t, options{store: store})
	b := setup(t, options{store: store, app: a.app})
	envs := make(chan string, 2)
	for _, bd := range []*bundle{a, b} {
		go func() {
			envs <- bd.fake.SlashCommand(t, slacktest.Slash{User: alice, Channel: channel, Text: "run " + a.app})
		}()
	}
	<-envs
	<-envs
	started, refused := 0, 0
	for _, bd := range []*bundle{a, b} {
		acks := bd.fake.Acks()
		if len(acks) != 1 {
			acks = []slacktest.Ack{bd.fake.WaitAck(t, "env-000001")}
		}
		switch txt := ackText(t, acks[0]); {
		case strings.Contains(txt, "Starting drill"):
			started++
		case strings.Contains(txt, "is held by drill"):
			refused++
		default:
			t.Fatalf("ack %q", txt)
		}
	}
	// Both may pass the ack's check; the journal's app lock then refuses
	// one at Begin, in its thread.
	passed, held := 0, 0
	for _, bd := range []*bundle{a, b} {
		if len(bd.fake.Acks()) == 0 || !strings.Contains(ackText(t, bd.fake.Acks()[0]), "Starting drill") {
			continue
		}
		v := bd.fake.WaitCall(t, "verdict", func(c slacktest.Call) bool {
			return c.Method == "chat.postMessage" && c.Broadcast && strings.Contains(c.Text, "Drill ")
		})
		if strings.Contains(v.Text, "PASSED") {
			passed++
		} else if thread := threadTexts(bd.fake.Calls(), v.ThreadTS); containsAny(thread, "is held by drill") || containsAny(thread, "is held by another drill") {
			held++
		} else {
			t.Fatalf("verdict %q: %q", v.Text, thread)
		}
	}
	if passed != 1 || refused+held != 1 {
		t.Fatalf("started %d (passed %d, held at begin %d), refused at ack %d: want exactly one drill", started, passed, held, refused)
	}
}

// cancel typed where the drill does not run reaches the process that runs
// it, through the state database: that process stops the drill and its undo
// stack runs there.
func TestTwoBots_CancelReachesTheOwner(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	a := setup(t, options{store: store})
	b := setup(t, options{store: store, app: a.app})
	id, parent := a.run(t, "run "+a.app+" --mode full")
	a.prompt(t, parent.Reply, 1) // the drill waits for its first confirmation
	_, ack := b.command(t, bob, "cancel "+id)
	if txt := ackText(t, ack); !strings.Contains(txt, "requested") {
		t.Fatalf("cancel on the other process: %q", txt)
	}
	v := a.verdict(t, parent, id)
	if all := v.Text + v.BlockText(); !strings.Contains(all, "CANCELLED") || !strings.Contains(all, "<@"+bob+">") {
		t.Fatalf("verdict %q, want the drill cancelled by the person on the other process", v.Text+v.BlockText())
	}
	if left := scratchLeft(t, a.app); len(left) != 0 {
		t.Errorf("scratch databases left: %v", left)
	}
}
