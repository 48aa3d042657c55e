package bot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// TestFreeze: a frozen bot refuses run and capture with the freeze
// sentence; only authorized users freeze; unfreeze lets drills run again.
func TestFreeze(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{store: drilltest.NewStateStore(t)})
	if _, a := bd.command(t, mallory, "freeze because"); !strings.Contains(ackText(t, a), "not allowed") {
		t.Fatalf("mallory froze: %q", ackText(t, a))
	}
	// Typed as a person types it: Slack escapes & and links @bob.
	if _, a := bd.command(t, alice, "freeze incident 42 & failover, ask @bob"); !strings.Contains(ackText(t, a), "Frozen") {
		t.Fatalf("freeze ack %q", ackText(t, a))
	}
	bd.fake.WaitCall(t, "freeze announced, & escaped once and @bob a mention", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && strings.Contains(c.Text, "Drills are frozen") && strings.Contains(c.Text, "incident 42 &amp; failover, ask <@"+bob+">")
	})
	for _, cmd := range []string{"run " + bd.app, "capture " + bd.app, "restore " + bd.app + " latest"} {
		_, a := bd.command(t, bob, cmd)
		if txt := ackText(t, a); !strings.Contains(txt, "frozen since") || !strings.Contains(txt, "<@"+alice+">") || !strings.Contains(txt, "incident 42") {
			t.Fatalf("%s while frozen: %q", cmd, txt)
		}
	}
	if _, a := bd.command(t, bob, "unfreeze"); ackText(t, a) != "Unfrozen." {
		t.Fatalf("unfreeze ack %q", ackText(t, a))
	}
	id, parent := bd.run(t, "run "+bd.app)
	if v := bd.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("drill after unfreeze: %q", v.Text)
	}
}

// TestFreeze_ForcedRestoreRuns: while frozen a restore is refused, and
// with --force it runs to its verdict and the audit log records it.
func TestFreeze_ForcedRestoreRuns(t *testing.T) {
	t.Parallel()
	store, stateDB := drilltest.NewNamedStateStore(t)
	bd := setup(t, options{store: store})
	bk := bd.capture(t)
	if err := store.SetFreeze(context.Background(), true, alice, "incident"); err != nil {
		t.Fatal(err)
	}
	_, a := bd.command(t, alice, "restore "+bd.app+" "+bk)
	if txt := ackText(t, a); !strings.Contains(txt, "frozen since") {
		t.Fatalf("restore without --force while frozen: %q", txt)
	}
	_, a = bd.command(t, alice, "restore "+bd.app+" "+bk+" --force")
	txt := ackText(t, a)
	m := drillIDInAck.FindStringSubmatch(txt)
	if m == nil || !strings.Contains(txt, "--force: it runs even if drills are frozen, and that is logged") {
		t.Fatalf("forced restore refused: %q", txt)
	}
	id := m[1]
	parent := bd.fake.WaitCall(t, "parent", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.ThreadTS == "" && strings.Contains(c.Text, "Emergency restore "+id)
	})
	prompt, cid := bd.prompt(t, parent.Reply, 1)
	bd.confirm(t, bob, prompt, cid)
	prompt2, cid2 := bd.prompt(t, parent.Reply, 2)
	bd.confirm(t, bob, prompt2, cid2)
	if v := bd.restoreVerdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("forced restore: %q", v.Text)
	}
	var n int
	if err := drilltest.Connect(t, stateDB).QueryRow(context.Background(),
		`SELECT count(*) FROM audit_log WHERE action = 'freeze_forced' AND drill_id = $1 AND actor = $2 AND app = $3`, id, alice, bd.app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("the audit log has %d freeze_forced records for %s, want 1", n, id)
	}
}

// TestSchedules: schedule, list, fire on the injected clock in the chosen
// channel (once across ticks), and unschedule. A full-mode schedule waits
// for a person: nobody confirms, so it expires and undoes.
func TestSchedules(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{store: drilltest.NewStateStore(t), confirmTimeout: 2 * time.Second})
	const other = "C0THER001"
	// Typed as a person types it: Slack sends #drills as <#C0THER001|drills>
	// (should_escape), which is the only way --channel can name a channel.
	bd.fake.AddChannel(other, "drills")
	_, a := bd.command(t, alice, "schedule "+bd.app+" daily --channel #drills")
	if txt := ackText(t, a); !strings.Contains(txt, "Scheduled a verify drill of `"+bd.app+"` `daily`, in <#"+other+">") {
		t.Fatalf("schedule ack %q", txt)
	}
	if _, a := bd.command(t, alice, "schedules"); !strings.Contains(ackText(t, a), "`"+bd.app+"` `daily` verify in <#"+other+">") {
		t.Fatalf("schedules %q", ackText(t, a))
	}
	ctx := context.Background()
	at := time.Now().Add(48 * time.Hour)
	bd.bot.Tick(ctx, at)
	parent := bd.fake.WaitCall(t, "scheduled drill's parent", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Channel == other && c.ThreadTS == "" && strings.Contains(c.Text, bd.app)
	})
	bd.fake.WaitCall(t, "scheduled verdict", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.ThreadTS == parent.Reply && c.Broadcast && strings.Contains(c.Text, "PASSED")
	})
	bd.bot.Wait()
	bd.bot.Tick(ctx, at.Add(time.Minute)) // already fired for this slot
	bd.bot.Wait()
	if n := len(parents(bd.fake.Calls(), other)); n != 1 {
		t.Fatalf("%d scheduled drills started, want 1", n)
	}

	_, a = bd.command(t, alice, `schedule `+bd.app+` "0 * * * *" --mode full --channel `+other)
	if txt := ackText(t, a); !strings.Contains(txt, "waits for someone to confirm") {
		t.Fatalf("full schedule ack %q", txt)
	}
	bd.bot.Tick(ctx, at.Add(3*time.Hour))
	full := bd.fake.WaitCalls(t, "full scheduled parent", 2, func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Channel == other && c.ThreadTS == "" && strings.Contains(c.Text, bd.app)
	})[1]
	bd.prompt(t, full.Reply, 1)
	v := bd.fake.WaitCall(t, "full scheduled verdict", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.ThreadTS == full.Reply && c.Broadcast && strings.Contains(c.Text, "Drill ")
	})
	if strings.Contains(v.Text, "PASSED") || containsAny(threadTexts(bd.fake.Calls(), full.Reply), "> confirmed *") || !containsAny(threadTexts(bd.fake.Calls(), full.Reply), "the confirmation expired") {
		t.Fatalf("a scheduled full drill went on without a person: %q", v.Text)
	}
	bd.bot.Wait()
	if left := scratchLeft(t, bd.app); len(left) != 0 {
		t.Fatalf("left %v", left)
	}
	if _, a := bd.command(t, alice, "unschedule "+bd.app); !strings.Contains(ackText(t, a), "Removed the schedule") {
		t.Fatalf("unschedule %q", ackText(t, a))
	}
	if _, a := bd.command(t, alice, "schedules"); !strings.Contains(ackText(t, a), "No schedules") {
		t.Fatalf("schedules after unschedule %q", ackText(t, a))
	}
}

func parents(calls []slacktest.Call, ch string) []slacktest.Call {
	var out []slacktest.Call
	for _, c := range calls {
		if c.Method == "chat.postMessage" && c.Channel == ch && c.ThreadTS == "" && strings.Contains(c.Text, "Drill ") {
			out = append(out, c)
		}
	}
	return out
}

// TestUnlock: a live holder is only named; a dead one is resumed now.
func TestUnlock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := drilltest.NewStateStore(t)
	bd := setup(t, options{store: store})
	if _, a := bd.command(t, alice, "unlock "+bd.app); !strings.Contains(ackText(t, a), "is not held by any drill") {
		t.Fatalf("unlock of a free app: %q", ackText(t, a))
	}
	// Another process's drill: its own connection holds the locks.
	rec := drill.DrillRecord{DrillID: drill.NewDrillID(), App: bd.app, Provider: "local", Mode: drill.ModeVerify, Requester: bob, StartedAt: time.Now()}
	release, err := store.Begin(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, a := bd.command(t, alice, "unlock "+bd.app); !strings.Contains(ackText(t, a), "its process is alive") {
		t.Fatalf("unlock of a live drill: %q", ackText(t, a))
	}
	release()
	if err := store.ExpireOwner(ctx, rec.DrillID); err != nil { // its process is gone too
		t.Fatal(err)
	}
	env, a := bd.command(t, alice, "unlock "+bd.app)
	if !strings.Contains(ackText(t, a), "undoing what it left now") {
		t.Fatalf("unlock of a dead drill: %q", ackText(t, a))
	}
	bd.fake.WaitCall(t, "unlock report", func(c slacktest.Call) bool {
		return c.Method == "response_url" && c.TS == env && strings.Contains(c.Text, "died at step")
	})
	if running, err := store.RunningDrills(ctx); err != nil || len(running) != 0 {
		t.Fatalf("still running after unlock: %+v %v", running, err)
	}
}
