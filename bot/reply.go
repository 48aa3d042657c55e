package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/restore-drill/restore-drill/drill"
)

// Message is what the bot says: a fallback text (notifications, screen
// readers) and Block Kit blocks. Rendering builds Messages; a Transport
// delivers them.
type Message struct {
	Text   string
	Blocks []slack.Block
}

// PostOptions place a message in a thread.
type PostOptions struct {
	ThreadTS string
	// Broadcast also shows a thread reply in the channel.
	Broadcast bool
}

// Errors a Transport returns for the failures the bot handles.
var (
	// ErrNotInChannel: the bot is not a member of the public channel.
	ErrNotInChannel = errors.New("the bot is not in the channel")
	// ErrChannelNotFound: the bot cannot see the channel (private or a DM).
	ErrChannelNotFound = errors.New("the bot cannot see the channel")
	// ErrBlocksRejected: Slack refused the message's blocks
	// (invalid_blocks, msg_blocks_too_long); its text alone may pass.
	ErrBlocksRejected = errors.New("the message's blocks were refused")
)

// Transport delivers messages and opens modals: Slack's Web API in
// production, a terminal in the console adapter.
type Transport interface {
	Post(ctx context.Context, channel string, m Message, o PostOptions) (ts string, err error)
	Update(ctx context.Context, channel, ts string, m Message) error
	Ephemeral(ctx context.Context, channel, user string, m Message) error
	// Respond answers through a command's response_url, ephemerally.
	Respond(ctx context.Context, responseURL string, m Message) error
	// OpenModal opens a modal and returns its view id.
	OpenModal(ctx context.Context, triggerID string, v slack.ModalViewRequest) (viewID string, err error)
	UpdateModal(ctx context.Context, viewID string, v slack.ModalViewRequest) error
	Join(ctx context.Context, channel string) error
	GroupMembers(ctx context.Context, group string) ([]string, error)
}

// SlackTransport is the Transport of the Slack Web API. It waits out 429s
// (honouring Retry-After) up to MaxRetries times.
type SlackTransport struct {
	Client     *slack.Client
	MaxRetries int
}

var _ Transport = (*SlackTransport)(nil)

func (t *SlackTransport) retry(ctx context.Context, what string, fn func() error) error {
	tries := t.MaxRetries
	if tries <= 0 {
		tries = 5
	}
	for i := 0; ; i++ {
		err := fn()
		var rl *slack.RateLimitedError
		if err == nil || !errors.As(err, &rl) || i >= tries {
			return classify(what, err)
		}
		wait := min(max(rl.RetryAfter, 0), time.Minute)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-timer.C:
		}
	}
}

func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "not_in_channel":
			return fmt.Errorf("%s: %w (%w)", what, ErrNotInChannel, err)
		case "channel_not_found":
			return fmt.Errorf("%s: %w (%w)", what, ErrChannelNotFound, err)
		case "invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long":
			return fmt.Errorf("%s: %w (%w)", what, ErrBlocksRejected, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// slackReason is what Slack said in err, in a few words: its error code
// (restricted_action, is_archived…) or HTTP status.
func slackReason(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return fmt.Sprintf("HTTP %d", sc.Code)
	}
	return "no answer"
}

func msgOptions(m Message) []slack.MsgOption {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionDisableLinkUnfurl()}
	if len(m.Blocks) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(m.Blocks...))
	}
	return opts
}

// Post calls chat.postMessage.
func (t *SlackTransport) Post(ctx context.Context, channel string, m Message, o PostOptions) (string, error) {
	opts := msgOptions(m)
	if o.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(o.ThreadTS))
		if o.Broadcast {
			opts = append(opts, slack.MsgOptionBroadcast())
		}
	}
	var ts string
	err := t.retry(ctx, "chat.postMessage to "+channel, func() error {
		var err error
		_, ts, err = t.Client.PostMessageContext(ctx, channel, opts...)
		return err
	})
	return ts, err
}

// Update calls chat.update; blocks are replaced (cleared when m has none).
func (t *SlackTransport) Update(ctx context.Context, channel, ts string, m Message) error {
	opts := []slack.MsgOption{slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...)}
	return t.retry(ctx, "chat.update of "+ts, func() error {
		_, _, _, err := t.Client.UpdateMessageContext(ctx, channel, ts, opts...)
		return err
	})
}

// Ephemeral calls chat.postEphemeral.
func (t *SlackTransport) Ephemeral(ctx context.Context, channel, user string, m Message) error {
	return t.retry(ctx, "chat.postEphemeral", func() error {
		_, err := t.Client.PostEphemeralContext(ctx, channel, user, msgOptions(m)...)
		return err
	})
}

// Respond posts to a response_url, ephemerally.
func (t *SlackTransport) Respond(ctx context.Context, responseURL string, m Message) error {
	opts := append(msgOptions(m), slack.MsgOptionResponseURL(responseURL, slack.ResponseTypeEphemeral))
	return t.retry(ctx, "response_url", func() error {
		_, _, err := t.Client.PostMessageContext(ctx, "", opts...)
		return err
	})
}

// OpenModal calls views.open; it is not retried, since trigger ids last 3 s
// and work once.
func (t *SlackTransport) OpenModal(ctx context.Context, triggerID string, v slack.ModalViewRequest) (string, error) {
	resp, err := t.Client.OpenViewContext(ctx, triggerID, v)
	if err != nil {
		return "", classify("views.open", err)
	}
	return resp.ID, nil
}

// UpdateModal calls views.update on an open view.
func (t *SlackTransport) UpdateModal(ctx context.Context, viewID string, v slack.ModalViewRequest) error {
	return t.retry(ctx, "views.update", func() error {
		_, err := t.Client.UpdateViewContext(ctx, v, "", "", viewID)
		return err
	})
}

// Join calls conversations.join.
func (t *SlackTransport) Join(ctx context.Context, channel string) error {
	return t.retry(ctx, "conversations.join "+channel, func() error {
		_, _, _, err := t.Client.JoinConversationContext(ctx, channel)
		return err
	})
}

// GroupMembers calls usergroups.users.list.
func (t *SlackTransport) GroupMembers(ctx context.Context, group string) ([]string, error) {
	var users []string
	err := t.retry(ctx, "usergroups.users.list "+group, func() error {
		var err error
		users, err = t.Client.GetUserGroupMembersContext(ctx, group)
		return err
	})
	return users, err
}

// replier is the only poster: it redacts every message, joins public
// channels it is not in, and logs what it could not deliver.
type replier struct {
	t        Transport
	redactor *drill.Redactor
	logger   *slog.Logger
}

// redact removes credentials from m's text and blocks, and keeps m within
// Slack's blocks and text per message.
func (r *replier) redact(m Message) Message {
	m = r.redactOnly(m)
	m.Blocks = capText(capBlocks(m.Blocks))
	return m
}

// textOnly is m without its blocks, for Slack to take when it refused
// them: their text, as plain mrkdwn text, within Slack's text limit.
func textOnly(m Message) Message {
	var parts []string
	for _, b := range m.Blocks {
		raw, err := json.Marshal(b)
		if err != nil {
			continue
		}
		var v struct {
			Text *struct {
				Text string `json:"text"`
			} `json:"text"`
			Elements []struct {
				Text string `json:"text"`
			} `json:"elements"`
		}
		_ = json.Unmarshal(raw, &v)
		if v.Text != nil {
			parts = append(parts, v.Text.Text)
		}
		for _, e := range v.Elements {
			if e.Text != "" {
				parts = append(parts, e.Text)
			}
		}
	}
	text := strings.Join(parts, "\n")
	if text == "" {
		text = m.Text
	}
	return Message{Text: clipRunes(text, textLimit)}
}

// redactOnly removes credentials from m's text and blocks.
func (r *replier) redactOnly(m Message) Message {
	m.Text = redactMrkdwn(r.redactor, m.Text)
	if len(m.Blocks) == 0 {
		return m
	}
	raw, err := json.Marshal(slack.Blocks{BlockSet: m.Blocks})
	if err != nil {
		return Message{Text: m.Text}
	}
	// Redact every string of the blocks as it is, not their JSON (which
	// encodes & < > as \u0026 and the like).
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return Message{Text: m.Text}
	}
	changed := false
	tree = walkStrings(tree, func(s string) string {
		r := redactMrkdwn(r.redactor, s)
		changed = changed || r != s
		return r
	})
	if !changed {
		return m
	}
	red, err := json.Marshal(tree)
	if err != nil {
		return Message{Text: m.Text}
	}
	var blocks slack.Blocks
	if err := json.Unmarshal(red, &blocks); err != nil {
		return Message{Text: m.Text}
	}
	m.Blocks = blocks.BlockSet
	return m
}

// walkStrings applies fn to every string value in a decoded JSON tree.
func walkStrings(v any, fn func(string) string) any {
	switch x := v.(type) {
	case string:
		return fn(x)
	case []any:
		for i := range x {
			x[i] = walkStrings(x[i], fn)
		}
	case map[string]any:
		for k := range x {
			x[k] = walkStrings(x[k], fn)
		}
	}
	return v
}

// redactMrkdwn redacts mrkdwn text s, whose values were escaped (& < >
// as &amp; &lt; &gt;) after they were written: a secret containing those
// characters no longer matches in its escaped form, so each piece of text
// between Slack's <…> markup is also redacted unescaped, and escaped again
// when that changed it.
func redactMrkdwn(red *drill.Redactor, s string) string {
	s = red.Redact(s)
	if !strings.Contains(s, "&") {
		return s
	}
	var out strings.Builder
	for s != "" {
		i := strings.IndexByte(s, '<')
		text := s
		if i >= 0 {
			text = s[:i]
		}
		if u := unescape(text); u != text {
			if r := red.Redact(u); r != u {
				text = Escape(r)
			}
		}
		out.WriteString(text)
		if i < 0 {
			break
		}
		s = s[i:]
		j := strings.IndexByte(s, '>')
		if j < 0 {
			out.WriteString(s)
			break
		}
		out.WriteString(s[:j+1])
		s = s[j+1:]
	}
	return out.String()
}

var unescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

func unescape(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return unescaper.Replace(s)
}

func (r *replier) post(ctx context.Context, channel string, m Message, o PostOptions) (string, error) {
	m = r.redact(m)
	ts, err := r.t.Post(ctx, channel, m, o)
	if errors.Is(err, ErrNotInChannel) {
		if jerr := r.t.Join(ctx, channel); jerr != nil {
			return "", fmt.Errorf("join %s after not_in_channel: %w", channel, jerr)
		}
		ts, err = r.t.Post(ctx, channel, m, o)
	}
	if errors.Is(err, ErrBlocksRejected) && len(m.Blocks) > 0 {
		loggerFrom(ctx, r.logger).Warn("Slack refused a message's blocks: posting its text alone", "channel", channel, "err", r.redactor.Redact(err.Error()))
		ts, err = r.t.Post(ctx, channel, textOnly(m), o)
	}
	if err != nil {
		loggerFrom(ctx, r.logger).Warn("post failed", "channel", channel, "err", r.redactor.Redact(err.Error()))
	}
	return ts, err
}

// upload shares f in channel's thread ts with up. Sharing a file needs the
// bot in the channel: in a public channel it has not joined, it joins and
// tries again.
func (r *replier) upload(ctx context.Context, up Uploader, channel, ts string, f File) error {
	return r.joined(ctx, channel, func() error { return up.Upload(ctx, channel, ts, f) })
}

// joined runs call; where Slack answers not_in_channel (a public channel
// the bot has not joined), the bot joins and runs it again.
func (r *replier) joined(ctx context.Context, channel string, call func() error) error {
	err := call()
	if errors.Is(err, ErrNotInChannel) {
		if err = r.t.Join(ctx, channel); err == nil {
			err = call()
		}
	}
	return err
}

func (r *replier) update(ctx context.Context, channel, ts string, m Message) error {
	m = r.redact(m)
	err := r.t.Update(ctx, channel, ts, m)
	if errors.Is(err, ErrBlocksRejected) && len(m.Blocks) > 0 {
		err = r.t.Update(ctx, channel, ts, textOnly(m))
	}
	if err != nil {
		loggerFrom(ctx, r.logger).Warn("update failed", "channel", channel, "ts", ts, "err", r.redactor.Redact(err.Error()))
	}
	return err
}

// ephemeral shows m to user in channel. chat.postEphemeral needs the bot
// in the channel (chat:write.public does not cover it): in a public
// channel it has not joined, it joins and tries again; where it cannot
// join (a private channel, a DM), m goes through responseURL, which works
// anywhere.
func (r *replier) ephemeral(ctx context.Context, channel, user, responseURL string, m Message) {
	m = r.redact(m)
	err := r.joined(ctx, channel, func() error { return r.t.Ephemeral(ctx, channel, user, m) })
	if errors.Is(err, ErrBlocksRejected) {
		err = r.t.Ephemeral(ctx, channel, user, textOnly(m))
	}
	if err == nil {
		return
	}
	if responseURL != "" {
		if rerr := r.t.Respond(ctx, responseURL, m); rerr == nil {
			return
		}
	}
	loggerFrom(ctx, r.logger).Warn("ephemeral failed", "channel", channel, "err", r.redactor.Redact(err.Error()))
}

func (r *replier) respond(ctx context.Context, url string, m Message) {
	if url == "" {
		return
	}
	if err := r.t.Respond(ctx, url, r.redact(m)); err != nil {
		r.logger.Warn("response_url failed", "err", r.redactor.Redact(err.Error()))
	}
}

// ackPayloadLimit is the largest ack payload the bot sends: slack-go
// refuses (and so never acks) an envelope whose response is 20 KB or more.
const ackPayloadLimit = 16 * 1024

// ackPayload is the ack of a command answered with m, redacted. When m is
// too big for an ack, the ack says so briefly and more posts m with the Web
// API (ephemerally, in as many messages as its blocks need).
func (b *Bot) ackPayload(req Request, m Message) (payload any, more Later) {
	m = b.reply.redactOnly(m)
	a := ackMessage{ResponseType: "ephemeral", Text: m.Text, Blocks: m.Blocks}
	if raw, err := json.Marshal(a); err == nil && len(raw) < ackPayloadLimit && len(a.Blocks) <= blocksLimit && blocksTextLength(a.Blocks) <= messageTextLimit {
		return a, nil
	}
	brief := "The answer is too long for a reply here: I am sending it in a few messages."
	return ackMessage{ResponseType: "ephemeral", Text: brief, Blocks: sections(brief)}, func(ctx context.Context) {
		for _, part := range fitMessages(m) {
			b.reply.ephemeral(ctx, req.Channel, req.User, req.ResponseURL, part)
		}
	}
}

// redactPayload redacts an ack payload: a command's reply, or the errors
// of a view submission.
func (b *Bot) redactPayload(payload any) any {
	switch p := payload.(type) {
	case ackMessage:
		m := b.reply.redact(Message{Text: p.Text, Blocks: p.Blocks})
		p.Text, p.Blocks = m.Text, m.Blocks
		return p
	case *slack.ViewSubmissionResponse:
		if p == nil || len(p.Errors) == 0 {
			return p
		}
		cp := *p
		cp.Errors = map[string]string{}
		for k, v := range p.Errors {
			cp.Errors[k] = b.cfg.Redactor.Redact(v)
		}
		return &cp
	}
	return payload
}
