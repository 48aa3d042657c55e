package bot_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/slacktest"
)

// Tests of what real Slack enforces and the fake now does too (issue 12):
// each drives the bot through Socket Mode against the strict fake.

// TestRefusedBlocksFallBackToText: when Slack refuses a message's blocks
// (invalid_blocks, msg_blocks_too_long), the bot posts its text alone
// rather than losing it.
func TestRefusedBlocksFallBackToText(t *testing.T) {
	t.Parallel()
	for _, refusal := range []string{"invalid_blocks", "msg_blocks_too_long"} {
		t.Run(refusal, func(t *testing.T) {
			t.Parallel()
			bd := setup(t, options{})
			bd.fake.Fail("chat.postMessage", refusal, 1)
			bd.command(t, alice, "capture "+bd.app)
			c := bd.fake.WaitCall(t, "the capture posted as text", func(c slacktest.Call) bool {
				return c.Method == "chat.postMessage" && c.Error == "" && len(c.Blocks) == 0
			})
			if !strings.Contains(c.Text, "captured backup") || !strings.Contains(c.Text, "<@"+alice+">") {
				t.Fatalf("text-only fallback %q", c.Text)
			}
		})
	}
}

// TestParentRefusedDrillDoesNotStart: when Slack refuses the drill's
// parent message (restricted_action, is_archived, a 5xx), the drill does
// not start, nothing changes, and the requester is told why through the
// response_url.
func TestParentRefusedDrillDoesNotStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, slackError string
		status           int
		want             string
	}{
		{name: "RestrictedAction", slackError: "restricted_action", want: "restricted_action"},
		{name: "Archived", slackError: "is_archived", want: "is_archived"},
		{name: "SlackDown", status: http.StatusServiceUnavailable, want: "HTTP 503"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bd := setup(t, options{})
			if tc.status != 0 {
				bd.fake.FailStatus("chat.postMessage", tc.status, 1)
			} else {
				bd.fake.Fail("chat.postMessage", tc.slackError, 1)
			}
			env, a := bd.command(t, alice, "run "+bd.app)
			if !strings.Contains(ackText(t, a), "Starting drill") {
				t.Fatalf("ack %q", ackText(t, a))
			}
			r := bd.fake.WaitCall(t, "response_url", func(c slacktest.Call) bool { return c.Method == "response_url" && c.TS == env })
			if !strings.Contains(r.Text, "did not start and nothing changed") || !strings.Contains(r.Text, tc.want) {
				t.Fatalf("response %q", r.Text)
			}
			bd.bot.Wait()
			if left := scratchLeft(t, bd.app); len(left) > 0 {
				t.Fatalf("the drill ran: %v", left)
			}
			for _, c := range bd.fake.Calls() {
				if c.Method == "chat.postMessage" && c.Error == "" {
					t.Fatalf("the drill posted %q after its parent was refused", c.Text)
				}
			}
		})
	}
}

// TestCaptureFailureIsPostedInTheChannel: a failed capture is said in the
// channel, for everyone and for good, not only to the requester's
// response_url (which lasts 30 minutes).
func TestCaptureFailureIsPostedInTheChannel(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	bd.command(t, alice, "capture no_such_app_"+strings.ToLower(bd.app))
	c := bd.fake.WaitCall(t, "the failure in the channel", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Channel == channel && c.Error == "" && c.ThreadTS == ""
	})
	if !strings.Contains(c.Text, "could not capture a backup of") || !strings.Contains(c.Text, "<@"+alice+">") {
		t.Fatalf("capture failure %q", c.Text)
	}
}

// TestEphemeralReachesThePersonInAnyChannel: chat.postEphemeral fails
// with not_in_channel in a public channel the bot has not joined (even with
// chat:write.public): the bot joins and tries again; where it cannot join,
// the response_url carries the message. Either way the person reads it.
func TestEphemeralReachesThePersonInAnyChannel(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	prompt, cid := bd.prompt(t, parent.Reply, 1)
	if bd.fake.IsMember(channel) {
		t.Fatal("the bot is already in the channel: the test proves nothing")
	}

	// Slack cannot open the modal: "click again" must reach bob.
	bd.fake.Fail("views.open", "expired_trigger_id", 1)
	bd.click(t, bob, prompt, cid)
	e := bd.fake.WaitCall(t, "click again, ephemerally", func(c slacktest.Call) bool {
		return c.Method == "chat.postEphemeral" && c.Error == "" && c.User == bob && strings.Contains(c.Text, "click the button again")
	})
	joined := false
	for _, c := range bd.fake.Calls() {
		joined = joined || (c.Method == "conversations.join" && c.Channel == channel && c.Error == "" && c.At.Before(e.At))
	}
	if !joined {
		t.Fatal("the ephemeral reply went out without joining the channel first")
	}

	// Where the bot cannot be a member, the response_url answers.
	bd.fake.PrivateChannel(channel)
	bd.fake.Fail("views.open", "expired_trigger_id", 1)
	env := bd.fake.Click(t, slacktest.Click{User: bob, Channel: channel, MessageTS: prompt.Reply, ActionID: "restore_drill_confirm", BlockID: "confirm_actions", Value: cid})
	r := bd.fake.WaitCall(t, "click again, through the response_url", func(c slacktest.Call) bool {
		return c.Method == "response_url" && c.TS == env && c.Error == ""
	})
	if !strings.Contains(r.Text, "click the button again") {
		t.Fatalf("response %q", r.Text)
	}
	// Rather than wait for the confirmation to expire.
	if _, a := bd.command(t, alice, "cancel "+id); !strings.Contains(ackText(t, a), "Cancelling drill") {
		t.Fatalf("cancel: %q", ackText(t, a))
	}
	bd.bot.Wait()
}

// slowPending reads confirmations slowly while slow is set, as a loaded
// state database would.
type slowPending struct {
	bot.PendingStore
	slow *atomic.Bool
}

func (p slowPending) Get(ctx context.Context, id string) (bot.Pending, error) {
	if p.slow.Load() {
		time.Sleep(3500 * time.Millisecond)
	}
	return p.PendingStore.Get(ctx, id)
}

// TestClickOpensTheModalFirst: a trigger_id opens a view once, within 3 s
// of the click. The modal opens before the confirmation is read from the
// database (here 3.5 s slow), then shows the typed confirmation; a refusal
// shows in the modal too.
func TestClickOpensTheModalFirst(t *testing.T) {
	t.Parallel()
	var slow atomic.Bool
	bd := setup(t, options{pending: func(p bot.PendingStore) bot.PendingStore { return slowPending{PendingStore: p, slow: &slow} }})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	prompt, cid := bd.prompt(t, parent.Reply, 1)
	slow.Store(true)
	if v := bd.clickModal(t, mallory, prompt, cid); !strings.Contains(v.BlockText(), "not allowed to confirm") {
		t.Fatalf("mallory's modal: %s", v.BlockText())
	}
	if v := bd.clickModal(t, bob, prompt, cid); !strings.Contains(string(v.View), `"block_id":"typed_confirmation"`) {
		t.Fatalf("bob's modal has no input: %s", v.BlockText())
	}
	for _, c := range bd.fake.Calls() {
		if c.Method == "views.open" && c.Error != "" {
			t.Fatalf("views.open: %s", c.Error)
		}
	}
	slow.Store(false)
	if e := bd.submit(t, bob, cid, bd.app); e != "" {
		t.Fatalf("right text rejected: %s", e)
	}
	prompt2, cid2 := bd.prompt(t, parent.Reply, 2)
	bd.confirm(t, bob, prompt2, cid2)
	if v := bd.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q", v.Text)
	}
}
