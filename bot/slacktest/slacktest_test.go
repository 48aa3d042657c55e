package slacktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"

	"github.com/restore-drill/restore-drill/bot/slacktest"
)

// The fake must refuse what Slack refuses (reference, section 8); these
// tests call it as slack-go does.

func client(s *slacktest.Server) *slack.Client {
	return slack.New(s.BotToken, slack.OptionAPIURL(s.APIURL()))
}

func slackError(t *testing.T, err error) string {
	t.Helper()
	var se slack.SlackErrorResponse
	if err == nil {
		return ""
	}
	if errors.As(err, &se) {
		return se.Err
	}
	return err.Error()
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func TestFakeRefusesWhatSlackRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const ch = "C0FAKE001"
	s := slacktest.New(t)
	s.RejectedOK = true
	api := client(s)
	post := func(blocks ...slack.Block) string {
		_, _, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("fallback", false), slack.MsgOptionBlocks(blocks...))
		return slackError(t, err)
	}
	var five []slack.Block
	for range 5 {
		five = append(five, section(strings.Repeat("x", 2900)))
	}
	var many []slack.Block
	for range 51 {
		many = append(many, section("x"))
	}
	for name, tc := range map[string]struct {
		got, want string
	}{
		"FourSectionsUnderTheTextLimit": {post(five[:4]...), ""},
		"TextAcrossBlocksOver12000":     {post(five...), "msg_blocks_too_long"},
		"SectionOver3000":               {post(section(strings.Repeat("x", 3001))), "invalid_blocks"},
		"Over50Blocks":                  {post(many...), "invalid_blocks"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", name, tc.got, tc.want)
		}
	}

	// Membership: chat:write.public lets chat.postMessage in, not
	// chat.postEphemeral, until the bot joins.
	if _, err := api.PostEphemeralContext(ctx, ch, "U1", slack.MsgOptionText("hi", false)); slackError(t, err) != "not_in_channel" {
		t.Errorf("ephemeral outside the channel: %v", err)
	}
	if _, _, _, err := api.JoinConversationContext(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, ch, "U1", slack.MsgOptionText("hi", false)); err != nil {
		t.Errorf("ephemeral after joining: %v", err)
	}

	// chat.update needs a ts the bot posted there.
	_, ts, err := api.PostMessageContext(ctx, ch, slack.MsgOptionText("parent", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, ts, slack.MsgOptionText("edited", false)); err != nil {
		t.Errorf("update: %v", err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, ch, "1.000001", slack.MsgOptionText("edited", false)); slackError(t, err) != "message_not_found" {
		t.Errorf("update of an unknown ts: %v", err)
	}

	// Scopes are the manifest's: taking files:write away refuses uploads.
	s.SetScopes("commands", "chat:write")
	if _, err := api.GetUploadURLExternalContext(ctx, slack.GetUploadURLExternalParameters{FileName: "a.csv", FileSize: 3}); slackError(t, err) != "missing_scope" {
		t.Errorf("upload without files:write: %v", err)
	}
}

func TestFakeTriggerAndResponseURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := slacktest.New(t)
	s.RejectedOK = true
	s.AckDeadline = 200 * time.Millisecond
	api := client(s)
	conn := dial(t, s)

	// A command the person typed with & and #ops: escaped, and linked.
	s.AddChannel("C0PS0001", "ops")
	env := s.SlashCommand(t, slacktest.Slash{User: "U1", Channel: "C0PS0001", Text: "freeze db & <co> in #ops"})
	cmd := readEnvelope(t, conn)
	if want := "freeze db &amp; &lt;co&gt; in <#C0PS0001|ops>"; cmd.Text != want {
		t.Errorf("command text %q, want %q", cmd.Text, want)
	}

	// An ack past the deadline is recorded without its payload.
	time.Sleep(300 * time.Millisecond)
	if err := conn.WriteJSON(map[string]any{"envelope_id": env, "payload": map[string]any{"text": "late"}}); err != nil {
		t.Fatal(err)
	}
	if a := s.WaitAck(t, env); !a.Late || a.Payload != nil || !strings.Contains(string(a.Dropped), "late") {
		t.Errorf("late ack %+v", a)
	}

	// A trigger_id opens one view; after 3 s none.
	view := slack.ModalViewRequest{Type: slack.VTModal, Title: slack.NewTextBlockObject(slack.PlainTextType, "T", false, false),
		Blocks: slack.Blocks{BlockSet: []slack.Block{section("x")}}}
	if _, err := api.OpenViewContext(ctx, cmd.TriggerID, view); err != nil {
		t.Fatalf("views.open: %v", err)
	}
	if _, err := api.OpenViewContext(ctx, cmd.TriggerID, view); slackError(t, err) != "exchanged_trigger_id" {
		t.Errorf("second views.open: %v", err)
	}

	// A response_url takes five messages, then refuses; and none after 30
	// minutes.
	for i := 1; i <= 6; i++ {
		_, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionText("hi", false), slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeEphemeral))
		if (err == nil) != (i <= 5) {
			t.Errorf("response_url use %d: %v", i, err)
		}
	}
	s.SlashCommand(t, slacktest.Slash{User: "U1", Channel: "C0PS0001", Text: "status"})
	cmd2 := readEnvelope(t, conn)
	s.ExpireResponseURLs()
	if _, _, err := api.PostMessageContext(ctx, "", slack.MsgOptionText("hi", false), slack.MsgOptionResponseURL(cmd2.ResponseURL, slack.ResponseTypeEphemeral)); err == nil {
		t.Error("a response_url 30 minutes old took a message")
	}
	if _, err := api.OpenViewContext(ctx, cmd2.TriggerID, view); slackError(t, err) != "expired_trigger_id" {
		t.Errorf("views.open 30 minutes later: %v", err)
	}
}

// dial connects to the fake's socket as slack-go does and reads hello.
func dial(t *testing.T, s *slacktest.Server) *websocket.Conn {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"apps.connections.open", nil)
	req.Header.Set("Authorization", "Bearer "+s.AppToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var open struct {
		URL string `json:"url"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&open); err != nil {
		t.Fatal(err)
	}
	conn, _, err := websocket.DefaultDialer.Dial(open.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	var hello map[string]any
	if err := conn.ReadJSON(&hello); err != nil || hello["type"] != "hello" {
		t.Fatalf("hello: %v %v", hello, err)
	}
	return conn
}

func readEnvelope(t *testing.T, conn *websocket.Conn) slack.SlashCommand {
	t.Helper()
	var env struct {
		Payload slack.SlashCommand `json:"payload"`
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := conn.ReadJSON(&env); err != nil {
		t.Fatal(err)
	}
	return env.Payload
}
