package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image/color"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/trend"
)

// TestCancelledRestore_VerdictSaysCancelledAndHistoryHasNoRTO cancels an
// emergency restore at its promote confirmation, after the backup was
// restored into the new database: the verdict says who cancelled and what
// was undone, never that the backup was restored, and the history records
// no restore time for it.
func TestCancelledRestore_VerdictSaysCancelledAndHistoryHasNoRTO(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	bd := setup(t, options{store: store})
	bk := bd.capture(t)
	id, parent := bd.startRestore(t, alice, channel, "restore "+bd.app+" "+bk)
	prompt, cid := bd.prompt(t, parent.Reply, 1)
	bd.confirmTyped(t, alice, prompt, cid, bd.app)
	bd.prompt(t, parent.Reply, 2) // restored and checked: waits to promote

	if _, a := bd.command(t, bob, "cancel "+id); !strings.Contains(ackText(t, a), "Cancelling drill `"+id+"`") {
		t.Fatalf("cancel ack %q", ackText(t, a))
	}
	v := bd.restoreVerdict(t, parent, id)
	text := v.Text + "\n" + v.BlockText()
	requireAll(t, "verdict", text, "CANCELLED", "*CANCELLED* by <@"+bob+">", "Undone: ", "was cancelled")
	for _, bad := range []string{"restored into a new database", "PASSED", "FAILED", "restore time"} {
		if strings.Contains(text, bad) {
			t.Errorf("the verdict of a cancelled restore says %q:\n%s", bad, text)
		}
	}
	bd.bot.Wait()
	hist, err := store.History(context.Background(), bd.app, 5)
	if err != nil || len(hist) != 1 {
		t.Fatalf("history %+v, %v", hist, err)
	}
	if h := hist[0]; !h.Cancelled || h.CancelledBy != bob || h.RestoreSeconds != 0 {
		t.Errorf("history records cancelled=%v by %q with restore time %v, want cancelled by %s and no RTO", h.Cancelled, h.CancelledBy, h.RestoreSeconds, bob)
	}
	bd.command(t, alice, "history "+bd.app)
	h := bd.fake.WaitCall(t, "history table", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && strings.Contains(c.Text, "Drills of")
	})
	if !strings.Contains(h.Text, "no RTO (cancelled)") || strings.Contains(h.Text, "RTO 0s") {
		t.Errorf("history line of the cancelled restore: %q", h.Text)
	}
}

// TestConfirmModal_ClosesNotCancelsAndSpeaksPlainText: the modal's close
// button says Close (it cancels nothing); its errors name nobody by raw
// mention, which plain text would show as <@U…>; and the person who
// confirmed, submitting again, just gets the modal closed.
func TestConfirmModal_ClosesNotCancelsAndSpeaksPlainText(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{twoPerson: true})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	prompt, cid := bd.prompt(t, parent.Reply, 1)
	bd.click(t, bob, prompt, cid)
	view := bd.fake.WaitCall(t, "views.open", func(c slacktest.Call) bool { return c.Method == "views.open" })
	if !strings.Contains(string(view.View), `"close":{"type":"plain_text","text":"Close"`) {
		t.Errorf("the modal's close button is not labelled Close: %s", view.View)
	}
	noMention := func(what, e string) {
		t.Helper()
		if e == "" || strings.Contains(e, "<@") || strings.Contains(e, "UALICE01") || strings.Contains(e, "UMALLORY") || strings.Contains(e, "UBOB0002") {
			t.Errorf("%s: modal error %q is empty or shows a raw user id", what, e)
		}
	}
	noMention("not allowed", bd.submit(t, mallory, cid, bd.app))
	noMention("two-person", bd.submit(t, alice, cid, bd.app))
	if e := bd.submit(t, bob, cid, bd.app); e != "" {
		t.Fatalf("bob's confirmation rejected: %q", e)
	}
	if e := bd.submit(t, bob, cid, bd.app); e != "" {
		t.Errorf("bob submitting his own confirmation again got an error instead of the modal closing: %q", e)
	}
	e := bd.submit(t, alice, cid, bd.app)
	noMention("already confirmed", e)
	if !strings.Contains(e, "already confirmed") {
		t.Errorf("someone else's late submission: %q", e)
	}
	bd.prompt(t, parent.Reply, 2)
	bd.command(t, bob, "cancel "+id)
	bd.verdict(t, parent, id)
}

// cancelButton returns the parent's Cancel button: its value and whether
// it asks "are you sure" before it acts.
func cancelButton(t *testing.T, c slacktest.Call) (value string, confirm bool, ok bool) {
	t.Helper()
	var blocks []struct {
		BlockID  string `json:"block_id"`
		Elements []struct {
			ActionID string          `json:"action_id"`
			Value    string          `json:"value"`
			Style    string          `json:"style"`
			Confirm  json.RawMessage `json:"confirm"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(c.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID == "restore_drill_cancel" {
				return e.Value, len(e.Confirm) > 0 && e.Style == "danger", true
			}
		}
	}
	return "", false, false
}

// TestCancelButton_OnTheParentForAllowedPeopleOnly: the parent message
// carries a Cancel button (slash commands cannot be typed in a thread) with
// an "are you sure" dialog; someone not allowed is refused and the drill
// goes on; an allowed person's click cancels it, undoing what it did; the
// finished parent has no button left.
func TestCancelButton_OnTheParentForAllowedPeopleOnly(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	value, confirm, ok := cancelButton(t, parent)
	if !ok || value != id || !confirm {
		t.Fatalf("parent's cancel button: found %v, value %q, confirm dialog and danger style %v: %s", ok, value, confirm, parent.Blocks)
	}
	bd.prompt(t, parent.Reply, 1)
	click := func(u string) {
		env := bd.fake.Click(t, slacktest.Click{User: u, Channel: channel, MessageTS: parent.Reply, ActionID: "restore_drill_cancel", BlockID: "drill_actions", Value: id})
		bd.fake.WaitAck(t, env)
	}
	click(mallory)
	bd.fake.WaitCall(t, "refusal to mallory", func(c slacktest.Call) bool {
		return c.Method == "chat.postEphemeral" && c.User == mallory && strings.Contains(c.Text, "not allowed to cancel")
	})
	if _, a := bd.command(t, alice, "status "+id); strings.Contains(ackText(t, a), "cancel") {
		t.Fatalf("mallory's click cancelled the drill: %q", ackText(t, a))
	}
	click(bob)
	bd.fake.WaitCall(t, "cancel answer to bob", func(c slacktest.Call) bool {
		return c.Method == "chat.postEphemeral" && c.User == bob && strings.Contains(c.Text, "Cancelling drill `"+id+"`")
	})
	v := bd.verdict(t, parent, id)
	requireAll(t, "verdict", v.Text+"\n"+v.BlockText(), "CANCELLED", "*CANCELLED* by <@"+bob+">", "Undone: provision")
	bd.bot.Wait()
	final := bd.fake.WaitCall(t, "parent shows the cancel", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.TS == parent.Reply && strings.Contains(c.Text, "CANCELLED")
	})
	if _, _, ok := cancelButton(t, final); ok {
		t.Errorf("the finished drill's parent still has a cancel button: %s", final.Blocks)
	}
	if left := scratchLeft(t, bd.app); len(left) > 0 {
		t.Errorf("scratch databases left: %v", left)
	}
}

// replies are the thread's replies as posted (each counts once, however
// often it is edited).
func replies(calls []slacktest.Call, ts string) []slacktest.Call {
	var out []slacktest.Call
	for _, c := range calls {
		if c.Method == "chat.postMessage" && c.ThreadTS == ts && c.Error == "" {
			out = append(out, c)
		}
	}
	return out
}

// fullDrillThread runs a full drill to its verdict, bob and alice
// confirming, and returns its thread as it ends.
func fullDrillThread(t *testing.T, bd *bundle) (parent slacktest.Call, thread []string) {
	t.Helper()
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	p1, c1 := bd.prompt(t, parent.Reply, 1)
	bd.confirm(t, bob, p1, c1)
	p2, c2 := bd.prompt(t, parent.Reply, 2)
	bd.confirm(t, alice, p2, c2)
	if v := bd.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q", v.Text)
	}
	bd.bot.Wait()
	bd.fake.WaitCall(t, "prompt 2 says alice confirmed", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.TS == p2.Reply && strings.Contains(c.BlockText(), "<@"+alice+"> confirmed")
	})
	return parent, threadTexts(bd.fake.Calls(), parent.Reply)
}

// checkQuietThread holds for a full drill's thread: at most 12 replies,
// every step on one line of one reply, the plan once, confirmations as
// mentions, no word about parking.
func checkQuietThread(t *testing.T, bd *bundle, parent slacktest.Call, thread []string) {
	t.Helper()
	n := len(replies(bd.fake.Calls(), parent.Reply))
	t.Logf("a full drill's thread has %d replies", n)
	if n > 12 {
		t.Errorf("a full drill's thread has %d replies, want at most 12:\n%s", n, strings.Join(thread, "\n---\n"))
	}
	all := strings.Join(thread, "\n")
	for _, step := range []string{"preflight", "provision", "canary", "maintenance_on", "capture", "restore", "verify", "promote",
		"check_promoted", "promote_back", "maintenance_off", "destroy_scratch"} {
		done := "`" + step + "` done in"
		if k := strings.Count(all, done); k != 2 { // a section's text and the message's fallback
			t.Errorf("step %s is shown done %d times, want one line in one reply", step, k/2)
		}
	}
	if k := strings.Count(all, "Promote "+bd.app+"_drill_"); k != 2 { // in the first prompt's blocks and its fallback
		t.Errorf("the plan is stated %d times, want once, in the prompt", k/2)
	}
	for _, chatter := range []string{"no process is held", "parked", "continues", "UBOB0002 confirmed", "UALICE01 confirmed"} {
		if i := strings.Index(all, chatter); i >= 0 {
			t.Errorf("the thread says %q: …%s…", chatter, all[max(0, i-200):min(len(all), i+100)])
		}
	}
	requireAll(t, "thread", all, "<@"+bob+"> confirmed *turn on maintenance mode for "+bd.app+"* by typing `"+bd.app+"`",
		"<@"+alice+"> confirmed *promote ")
}

// TestFullDrillThread_QuietInOneProcess: a full drill run in one process
// posts at most 12 replies: the steps of each stretch in one reply edited
// in place, the two prompts (edited with who confirmed), the checksums and
// the verdict.
func TestFullDrillThread_QuietInOneProcess(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	parent, thread := fullDrillThread(t, bd)
	checkQuietThread(t, bd, parent, thread)
}

// TestFullDrillThread_QuietThroughTheQueue: the same through River, where
// the drill parks at each confirmation and continues in any process:
// no parking chatter, and each confirmation a mention, never a raw id.
func TestFullDrillThread_QuietThroughTheQueue(t *testing.T) {
	t.Parallel()
	a, _, _ := queuedPair(t, options{})
	parent, thread := fullDrillThread(t, a)
	checkQuietThread(t, a, parent, thread)
}

// TestWaitingDrill_ParentAndStatusSayWhatUntilWhenWithALink: while a
// drill waits for a confirmation, its parent and status say so, what it
// waits for, until when (in each reader's time), with a link to the
// prompt; once confirmed it reads as running again.
func TestWaitingDrill_ParentAndStatusSayWhatUntilWhenWithALink(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	prompt, cid := bd.prompt(t, parent.Reply, 1)
	link := "<https://fake-workspace.slack.com/archives/" + channel + "/p" + strings.ReplaceAll(prompt.Reply, ".", "") +
		"?thread_ts=" + parent.Reply + "&cid=" + channel + "|"
	waiting := bd.fake.WaitCall(t, "parent waiting", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.TS == parent.Reply && strings.Contains(c.BlockText(), "*waiting for confirmation*")
	})
	requireAll(t, "waiting parent", waiting.BlockText(), "of *turn on maintenance mode for "+bd.app+"* until <!date^", link)
	if strings.Contains(waiting.BlockText(), ":arrows_counterclockwise: running") {
		t.Errorf("the waiting parent still reads as running: %s", waiting.BlockText())
	}
	_, a := bd.command(t, alice, "status "+id)
	requireAll(t, "status", ackText(t, a), "*waiting for confirmation* of *turn on maintenance mode", "until <!date^", link)
	bd.confirm(t, bob, prompt, cid)
	bd.fake.WaitCall(t, "parent running again", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.TS == parent.Reply && strings.Contains(c.BlockText(), ":arrows_counterclockwise: running `") && !strings.Contains(c.BlockText(), "waiting")
	})
	bd.prompt(t, parent.Reply, 2)
	bd.command(t, bob, "cancel "+id)
	bd.verdict(t, parent, id)
}

// TestHistory_TrendChartIsALabelledPNGWithFailuresMarked: history through
// Slack shares a chart of the documented size in the table's thread, with
// the failed drill marked red.
func TestHistory_TrendChartIsALabelledPNGWithFailuresMarked(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{store: drilltest.NewStateStore(t), confirmTimeout: time.Second})
	id, parent := bd.run(t, "run "+bd.app)
	bd.verdict(t, parent, id)
	bd.bot.Wait()
	id, parent = bd.run(t, "run "+bd.app+" --mode full") // nobody confirms: it fails
	if v := bd.verdict(t, parent, id); !strings.Contains(v.Text, "FAILED") {
		t.Fatalf("verdict %q", v.Text)
	}
	bd.bot.Wait()
	bd.command(t, alice, "history "+bd.app)
	shared := bd.fake.WaitCall(t, "trend chart", func(c slacktest.Call) bool {
		return c.Method == "files.completeUploadExternal" && c.Error == ""
	})
	img, err := png.Decode(bytes.NewReader(shared.File))
	if err != nil {
		t.Fatalf("the chart is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != trend.Width || b.Dy() != trend.Height {
		t.Errorf("chart %dx%d, want %dx%d", b.Dx(), b.Dy(), trend.Width, trend.Height)
	}
	red := 0
	for y := 0; y < img.Bounds().Dy(); y++ {
		for x := 0; x < img.Bounds().Dx(); x++ {
			if color.RGBAModel.Convert(img.At(x, y)).(color.RGBA) == trend.FailedColor {
				red++
			}
		}
	}
	if red == 0 {
		t.Error("the failed drill is not marked on the chart")
	}
}

// TestCommandText_EscapedOnceAsSlackSendsIt: Slack sends what people type
// HTML-escaped (& as &amp;); the bot's answer shows it escaped once, so
// people read the & they typed, not "&amp;".
func TestCommandText_EscapedOnceAsSlackSendsIt(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	_, a := bd.command(t, alice, "run a&b") // the fake sends it as Slack does: a&amp;b
	if txt := ackText(t, a); !strings.Contains(txt, "`a&amp;b` is not") || strings.Contains(txt, "&amp;amp;") {
		t.Errorf("the answer to `run a&b` shows %q", txt)
	}
}
