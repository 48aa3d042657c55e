package bot_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/slacktest"
)

// TestJoinsPublicChannel: not_in_channel → conversations.join, then the
// post is retried and the drill reports as usual.
func TestJoinsPublicChannel(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	bd.fake.NotInChannel(channel)
	id, parent := bd.run(t, "run "+bd.app)
	bd.fake.WaitCall(t, "conversations.join", func(c slacktest.Call) bool { return c.Method == "conversations.join" && c.Channel == channel })
	if v := bd.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q", v.Text)
	}
}

// TestPrivateChannelExplainsInvite: channel_not_found → the user is told
// through response_url to invite the bot, and no drill runs.
func TestPrivateChannelExplainsInvite(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	bd.fake.PrivateChannel(channel)
	env, a := bd.command(t, alice, "run "+bd.app)
	if !strings.Contains(ackText(t, a), "Starting drill") {
		t.Fatalf("ack %q", ackText(t, a))
	}
	r := bd.fake.WaitCall(t, "response_url", func(c slacktest.Call) bool { return c.Method == "response_url" && c.TS == env })
	if !strings.Contains(r.Text, "/invite @restore-drill") || r.ResponseType != "ephemeral" {
		t.Fatalf("response %q (%s)", r.Text, r.ResponseType)
	}
	bd.bot.Wait()
	if left := scratchLeft(t, bd.app); len(left) > 0 {
		t.Fatalf("a drill ran: %v", left)
	}
	// The app is free again.
	_, a = bd.command(t, alice, "status")
	if !strings.Contains(ackText(t, a), "No drill is running") {
		t.Fatalf("status %q", ackText(t, a))
	}
}

// TestRateLimitAndSlowSlack: 429s with Retry-After are waited out, a slow
// Web API does not delay acks, and the drill is unaffected.
func TestRateLimitAndSlowSlack(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	bd.fake.RateLimit("chat.postMessage", 1, 2)
	bd.fake.Slow("chat.update", 500*time.Millisecond)
	_, a := bd.command(t, alice, "run "+bd.app)
	id := drillIDInAck.FindStringSubmatch(ackText(t, a))[1]
	parent := bd.fake.WaitCall(t, "parent", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Error == "" && c.ThreadTS == "" && strings.Contains(c.Text, id)
	})
	// While the bot waits on Slack, commands are acked at once.
	for range 5 {
		_, a := bd.command(t, bob, "status")
		if a.Latency > 500*time.Millisecond {
			t.Fatalf("ack took %s while Slack was slow", a.Latency)
		}
	}
	if v := bd.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q", v.Text)
	}
	n := 0
	for _, c := range bd.fake.Calls() {
		if c.Error == "ratelimited" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d rate-limited calls recorded, want 2", n)
	}
}

// TestDroppedSocketReconnects drops the websocket mid-drill: the client
// reconnects, the drill finishes, and new commands are served.
func TestDroppedSocketReconnects(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	id, parent := bd.run(t, "run "+bd.app+" --mode full")
	prompt, cid := bd.prompt(t, parent.Reply, 1)
	opens := bd.fake.Opens()
	bd.fake.DropSocket()
	bd.fake.WaitConnected(t)
	bd.confirm(t, bob, prompt, cid)
	if bd.fake.Opens() <= opens {
		t.Fatalf("no reconnect: %d opens", bd.fake.Opens())
	}
	prompt2, cid2 := bd.prompt(t, parent.Reply, 2)
	bd.fake.Disconnect(t) // Slack's refresh_requested
	bd.fake.WaitConnected(t)
	bd.confirm(t, bob, prompt2, cid2)
	if v := bd.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q", v.Text)
	}
}

// TestRedeliveryIsDeduplicated: a redelivered envelope is acked but not
// run twice; bot messages are ignored.
func TestRedeliveryIsDeduplicated(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{})
	env, _ := bd.command(t, alice, "run "+bd.app)
	bd.fake.Resend(t, env)
	ev := bd.fake.Message(t, "Ev1", "", "B0BOT", channel, "run "+bd.app)
	bd.fake.WaitAck(t, ev)
	bd.fake.WaitCall(t, "verdict", func(c slacktest.Call) bool { return c.Broadcast })
	bd.bot.Wait()
	parents := 0
	for _, c := range bd.fake.Calls() {
		if c.Method == "chat.postMessage" && c.ThreadTS == "" {
			parents++
		}
	}
	if parents != 1 {
		t.Fatalf("%d drills started, want 1", parents)
	}
}

// TestChecksumTableOf500Tables: a 500-table database's checksum table is
// far over the ≈12,000 characters Slack takes in one message. The thread
// gets one summary message and the whole table as a CSV file, with no call
// rejected (the invariants check every call).
func TestChecksumTableOf500Tables(t *testing.T) {
	t.Parallel()
	const prefix = "a_rather_long_table_name_to_fill_the_section_limits_"
	// 500 tiny tables in one statement batch.
	sql := "DO $$ BEGIN FOR i IN 1..500 LOOP EXECUTE format('CREATE TABLE %I (id int PRIMARY KEY, v text); INSERT INTO %I VALUES (1, ''x'')', " +
		"'" + prefix + "' || i, '" + prefix + "' || i); END LOOP; END $$;"
	bd := setup(t, options{sql: sql})
	id, parent := bd.run(t, "run "+bd.app)
	v := bd.verdict(t, parent, id)
	if !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q %s", v.Text, v.BlockText())
	}
	var tables []slacktest.Call
	for _, c := range bd.fake.Calls() {
		if c.Method == "chat.postMessage" && strings.Contains(c.Text, "Checksums of drill "+id) {
			tables = append(tables, c)
		}
	}
	if len(tables) != 1 || tables[0].Error != "" || tables[0].ThreadTS != parent.Reply {
		t.Fatalf("%d checksum messages, want one summary in the thread: %+v", len(tables), tables)
	}
	if n := bot.TextLength(tables[0].Blocks); n > 10000 {
		t.Fatalf("the summary holds %d characters of text", n)
	}
	for _, want := range []string{"500 tables, 500 match", ".csv"} {
		if !strings.Contains(tables[0].BlockText(), want) {
			t.Fatalf("summary lacks %q: %s", want, tables[0].BlockText())
		}
	}
	file := bd.fake.WaitCall(t, "the checksum table shared in the thread", func(c slacktest.Call) bool {
		return c.Method == "files.completeUploadExternal" && c.Error == "" && c.Channel == channel && c.ThreadTS == parent.Reply
	})
	rows := strings.Split(strings.TrimSpace(string(file.File)), "\n")
	if len(rows) != 1+500 || !strings.HasPrefix(rows[0], "schema,table,match,source_rows,restored_rows") {
		t.Fatalf("the CSV has %d lines, want a header and 500 tables: %.200q", len(rows), file.File)
	}
	for i := 1; i <= 500; i++ {
		if !strings.Contains(string(file.File), fmt.Sprintf("public,%s%d,true,1,1,", prefix, i)) {
			t.Fatalf("table %d missing from the CSV", i)
		}
	}
}
