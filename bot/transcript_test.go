package bot_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/bot/slacktest"
)

// transcript is thread parent as people read it once it ended: the parent
// as last edited, then each reply as last edited, with the test's names
// replaced by README's (my-app, @alice, @bob, one drill id) and Slack's
// dates and links by their fallback text.
func transcript(bd *bundle, parent slacktest.Call, id string) string {
	calls := bd.fake.Calls()
	final := parent.BlockText()
	for _, c := range calls {
		if c.Method == "chat.update" && c.TS == parent.Reply {
			final = c.BlockText()
		}
	}
	clean := func(s string) string {
		s = strings.NewReplacer("<@"+alice+">", "@alice", "<@"+bob+">", "@bob", bd.app, "my-app", id, "d4x7k2qp", "Cancel drill\n", "").Replace(s)
		s = regexp.MustCompile(`<!date\^[^|>]*\|([^>]*)>`).ReplaceAllString(s, "$1")
		s = regexp.MustCompile(`<(https?://[^|>]+)\|([^>]+)>`).ReplaceAllString(s, "[$2]")
		s = regexp.MustCompile(`(?m)^(Cancel drill .*\?|The drill of .*|The emergency restore of .*|Cancel it|Keep it running|Confirm…|Cancel emergency restore)$\n?`).ReplaceAllString(s, "")
		return strings.TrimRight(s, "\n")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "● %s\n", strings.ReplaceAll(clean(final), "\n", "\n  "))
	var order []string
	text := map[string]string{}
	for _, c := range calls {
		if c.Method == "chat.postMessage" && c.ThreadTS == parent.Reply {
			order = append(order, c.Reply)
			text[c.Reply] = c.BlockText()
		}
		if _, ok := text[c.TS]; ok && c.Method == "chat.update" {
			text[c.TS] = c.BlockText()
		}
	}
	for _, ts := range order {
		fmt.Fprintf(&b, "  │ %s\n", strings.ReplaceAll(clean(text[ts]), "\n", "\n  │ "))
		b.WriteString("  │\n")
	}
	return b.String()
}

// TestTranscripts writes the threads of a verify drill, a full drill and
// an emergency restore, as the fake Slack recorded them, to the file named
// by RESTORE_DRILL_TRANSCRIPTS: README's Slack section shows them.
//
//	RESTORE_DRILL_TRANSCRIPTS=/tmp/threads.txt go test -run TestTranscripts ./bot/
func TestTranscripts(t *testing.T) {
	path := os.Getenv("RESTORE_DRILL_TRANSCRIPTS")
	if path == "" {
		t.Skip("RESTORE_DRILL_TRANSCRIPTS names no file to write the README's transcripts to")
	}
	var out strings.Builder
	{
		bd := setup(t, options{})
		id, parent := bd.run(t, "run "+bd.app)
		bd.verdict(t, parent, id)
		bd.bot.Wait()
		out.WriteString("VERIFY\n" + transcript(bd, parent, id))
	}
	{
		bd := setup(t, options{})
		id, parent := bd.run(t, "run "+bd.app+" --mode full")
		p1, c1 := bd.prompt(t, parent.Reply, 1)
		bd.confirm(t, bob, p1, c1)
		p2, c2 := bd.prompt(t, parent.Reply, 2)
		bd.confirm(t, alice, p2, c2)
		bd.verdict(t, parent, id)
		bd.bot.Wait()
		out.WriteString("FULL\n" + transcript(bd, parent, id))
	}
	{
		bd := setup(t, options{})
		bk := bd.capture(t)
		id, parent := bd.startRestore(t, alice, channel, "restore "+bd.app+" "+bk)
		p1, c1 := bd.prompt(t, parent.Reply, 1)
		bd.confirmTyped(t, alice, p1, c1, bd.app)
		p2, c2 := bd.prompt(t, parent.Reply, 2)
		bd.confirmTyped(t, bob, p2, c2, bd.app)
		bd.restoreVerdict(t, parent, id)
		bd.bot.Wait()
		out.WriteString("RESTORE\n" + transcript(bd, parent, id))
	}
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
