package bot_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill/drilltest"
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
