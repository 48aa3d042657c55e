package bot_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/slacktest"
)

// TestFullDrillEndToEnd drives `/restore-drill run APP --mode full` through
// the websocket with a real drill on local Postgres underneath.
func TestFullDrillEndToEnd(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")

	prompt, cid := bd.prompt(t, parent.Reply, 1)
	if !prompt.Broadcast || !strings.Contains(prompt.Text, "turn on maintenance mode for "+bd.app) {
		t.Fatalf("prompt %q (broadcast %v) does not state the action to the channel", prompt.Text, prompt.Broadcast)
	}
	if !strings.Contains(prompt.BlockText(), "Promote") || !strings.Contains(prompt.BlockText(), "Requested by <@"+alice+">") {
		t.Fatalf("prompt does not state the plan: %s", prompt.Blocks)
	}

	// An unauthorized user is refused on the click (a modal that says so,
	// with nothing to type) and on the submission.
	bd.click(t, mallory, prompt, cid)
	if v := bd.modal(t, cid, 1); !strings.Contains(v.BlockText(), "not allowed to confirm") || strings.Contains(string(v.View), "typed_confirmation") {
		t.Fatalf("mallory's modal: %s", v.BlockText())
	}
	if e := bd.submit(t, mallory, cid, bd.app); !strings.Contains(e, "not allowed") {
		t.Fatalf("mallory's submission: %q", e)
	}

	// An authorized user opens the modal; a wrong text is rejected inline.
	bd.click(t, bob, prompt, cid)
	view := bd.modal(t, cid, 2)
	if !strings.Contains(string(view.View), `"block_id":"typed_confirmation"`) {
		t.Fatalf("modal without the input block: %s", view.View)
	}
	if e := bd.submit(t, bob, cid, bd.app+"x"); !strings.Contains(e, "Type "+bd.app+" exactly") {
		t.Fatalf("wrong text: %q", e)
	}
	if e := bd.submit(t, bob, cid, " "+bd.app+" "); e != "" {
		t.Fatalf("right text rejected: %q", e)
	}
	bd.fake.WaitCall(t, "prompt updated to confirmed", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.TS == prompt.Reply && strings.Contains(c.BlockText(), "<@"+bob+"> confirmed *turn on maintenance mode for "+bd.app+"* by typing `"+bd.app+"`") &&
			!strings.Contains(string(c.Blocks), "restore_drill_confirm")
	})
	// Single use: a late second submission is refused.
	if e := bd.submit(t, alice, cid, bd.app); !strings.Contains(e, "already confirmed") {
		t.Fatalf("second submission: %q", e)
	}

	// The promote needs a second confirmation.
	prompt2, cid2 := bd.prompt(t, parent.Reply, 2)
	if !strings.Contains(prompt2.Text, "promote") {
		t.Fatalf("second prompt %q", prompt2.Text)
	}
	bd.confirm(t, alice, prompt2, cid2)

	v := bd.verdict(t, parent, id)
	if !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q\n%s", v.Text, v.Blocks)
	}
	for _, want := range []string{"RTO: restore", "RPO:", "Canary: found", "confirmed `maintenance_on`", "confirmed `promote`"} {
		if !strings.Contains(v.BlockText(), want) {
			t.Errorf("verdict lacks %q: %s", want, v.Blocks)
		}
	}
	thread := threadTexts(bd.fake.Calls(), parent.Reply)
	for _, want := range []string{"`provision` done in", "`restore` done in", "`verify` done in", "`promote` done in", "`promote_back` done in",
		"`maintenance_off` done in", "`destroy_scratch` done in", "Checksums of drill " + id, `"public"."Mixed Case"  20 → 20 rows`} {
		if !containsAny(thread, want) {
			t.Errorf("thread lacks %q", want)
		}
	}
	bd.fake.WaitCall(t, "parent shows the verdict", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.TS == parent.Reply && strings.Contains(c.Text, "PASSED")
	})
	if left := scratchLeft(t, bd.app); len(left) > 0 {
		t.Fatalf("scratch databases left: %v", left)
	}

	// history shows it, with the confirmers.
	_, a := bd.command(t, mallory, "history "+bd.app)
	if h := ackText(t, a); !strings.Contains(h, id) || !strings.Contains(h, "passed") || !strings.Contains(h, "confirmed by <@"+bob+">") {
		t.Fatalf("history %q", h)
	}
}

// TestConfirmationExpiryUndoes lets a confirmation expire: the drill fails
// as expired, the prompt says so, and the scratch database is destroyed.
func TestConfirmationExpiryUndoes(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{confirmTimeout: 500 * 1e6})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	prompt, _ := bd.prompt(t, parent.Reply, 1)
	bd.fake.WaitCall(t, "prompt expired", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.TS == prompt.Reply && strings.Contains(c.BlockText(), "Expired")
	})
	v := bd.verdict(t, parent, id)
	if !strings.Contains(v.Text, "FAILED") || !strings.Contains(v.BlockText(), "Undone: provision") {
		t.Fatalf("verdict %q %s", v.Text, v.Blocks)
	}
	if !containsAny(threadTexts(bd.fake.Calls(), parent.Reply), "the confirmation expired") {
		t.Fatal("the thread does not say the confirmation expired")
	}
	if left := scratchLeft(t, bd.app); len(left) > 0 {
		t.Fatalf("scratch databases left: %v", left)
	}
}

// TestCancelMidDrillUndoes cancels a drill while it waits for a
// confirmation; the undo stack runs.
func TestCancelMidDrillUndoes(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	bd.prompt(t, parent.Reply, 1)

	_, a := bd.command(t, mallory, "cancel "+id)
	if !strings.Contains(ackText(t, a), "not allowed") {
		t.Fatalf("mallory could cancel: %q", ackText(t, a))
	}
	_, a = bd.command(t, alice, "status")
	if !strings.Contains(ackText(t, a), id) {
		t.Fatalf("status %q lacks %s", ackText(t, a), id)
	}
	_, a = bd.command(t, bob, "run "+bd.app)
	if txt := ackText(t, a); !strings.Contains(txt, "is busy: drill `"+id+"`") || !strings.Contains(txt, "<@"+alice+">") {
		t.Fatalf("second drill on the same app: %q", txt)
	}
	_, a = bd.command(t, bob, "cancel "+id)
	if !strings.Contains(ackText(t, a), "Cancelling drill `"+id+"`") {
		t.Fatalf("cancel ack %q", ackText(t, a))
	}
	v := bd.verdict(t, parent, id)
	if !strings.Contains(v.Text, "CANCELLED") || !strings.Contains(v.BlockText(), "*CANCELLED* by <@"+bob+">") || !strings.Contains(v.BlockText(), "Undone: provision") {
		t.Fatalf("verdict %q %s", v.Text, v.Blocks)
	}
	bd.bot.Wait()
	if left := scratchLeft(t, bd.app); len(left) > 0 {
		t.Fatalf("scratch databases left: %v", left)
	}
	_, a = bd.command(t, alice, "status "+id)
	if !strings.Contains(ackText(t, a), "failed") {
		t.Fatalf("status after cancel: %q", ackText(t, a))
	}
}

// TestTwoSubmissionsConfirmOnce has two people submit at the same moment:
// exactly one confirmation is recorded.
func TestTwoSubmissionsConfirmOnce(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	_, cid := bd.prompt(t, parent.Reply, 1)
	envs := make([]string, 2)
	var wg sync.WaitGroup
	for i, u := range []string{alice, bob} {
		wg.Go(func() {
			envs[i] = bd.fake.Submit(t, slacktest.Submission{User: u, CallbackID: "restore_drill_typed", PrivateMetadata: cid,
				BlockID: "typed_confirmation", ActionID: "typed", Value: bd.app})
		})
	}
	wg.Wait()
	var accepted, refused int
	for _, env := range envs {
		if e := submitError(t, bd.fake.WaitAck(t, env)); e == "" {
			accepted++
		} else if strings.Contains(e, "already confirmed") {
			refused++
		}
	}
	if accepted != 1 || refused != 1 {
		t.Fatalf("accepted %d, refused %d; want 1 and 1", accepted, refused)
	}
	// Cancel at the second prompt, then count the confirmed messages.
	bd.prompt(t, parent.Reply, 2)
	bd.command(t, alice, "cancel "+id)
	bd.verdict(t, parent, id)
	confirmers := map[string]bool{}
	for _, c := range bd.fake.Calls() {
		for _, u := range []string{alice, bob} {
			if strings.Contains(c.BlockText(), "<@"+u+"> confirmed *turn on maintenance") {
				confirmers[u] = true
			}
		}
	}
	if len(confirmers) != 1 {
		t.Fatalf("the thread says %v confirmed, want one person", confirmers)
	}
}

// TestTwoPersonRule refuses the requester's own confirmation.
func TestTwoPersonRule(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{twoPerson: true})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	prompt, cid := bd.prompt(t, parent.Reply, 1)
	if e := bd.submit(t, alice, cid, bd.app); !strings.Contains(e, "Two people are required") {
		t.Fatalf("requester's own confirmation: %q", e)
	}
	bd.confirm(t, bob, prompt, cid)
	bd.command(t, alice, "cancel "+id)
	bd.verdict(t, parent, id)
}

// TestBadInputGetsUsage sends malformed commands: each gets an ephemeral
// reply naming the mistake with the usage, and nothing is posted.
func TestBadInputGetsUsage(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{access: bot.Access{AllowedUsers: []string{alice}, Apps: []string{"allowed-app"}, AllowedChannels: []string{channel, "C0THER"}}})
	cases := map[string]string{
		"destroy everything":               "`destroy` is not a command",
		"run":                              "the app is missing",
		"run my.app":                       "is not an app name",
		"run allowed-app --fast":           "`--fast` is not a flag of run",
		"run allowed-app --backup x1":      "`x1` is not a backup",
		"restore allowed-app fresh":        "is not a backup id",
		`run "allowed-app"`:                "no quotes",
		"run @restore-drill":               "mentions and channel links",
		"run " + strings.Repeat("x", 3000): "commands are short",
		"run ünïcödé":                      "is not an app name",
		"cancel nope":                      "is not a drill id",
		"run other-app":                    "is not an app this bot may touch",
		"run allowed-app --mode":           "--mode needs a value",
		"run template1":                    "is not an app this bot may touch",
	}
	for text, want := range cases {
		_, a := bd.command(t, alice, text)
		got := ackText(t, a)
		if !strings.Contains(got, want) {
			t.Errorf("%.40q: reply %q lacks %q", text, got, want)
		}
		if !strings.Contains(want, "may touch") && !strings.Contains(got, "Usage: `/restore-drill") {
			t.Errorf("%.40q: reply %q lacks the usage", text, got)
		}
	}
	_, a := bd.command(t, mallory, "run allowed-app")
	if !strings.Contains(ackText(t, a), "not allowed") {
		t.Errorf("unauthorized run: %q", ackText(t, a))
	}
	id := bd.fake.SlashCommand(t, slacktest.Slash{User: alice, Channel: "C0ELSEWHERE", Text: "help"})
	if txt := ackText(t, bd.fake.WaitAck(t, id)); !strings.Contains(txt, "does not work in this channel") {
		t.Errorf("disallowed channel: %q", txt)
	}
	_, a = bd.command(t, mallory, "help")
	if txt := ackText(t, a); !strings.Contains(txt, "/restore-drill run APP") {
		t.Errorf("help %q", txt)
	}
	for _, c := range bd.fake.Calls() {
		if c.Method == "chat.postMessage" {
			t.Errorf("bad input posted %q", c.Text)
		}
	}
}
