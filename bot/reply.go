package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
)

// Transport delivers messages and opens modals: Slack's Web API in
// production, a terminal in the console adapter.
type Transport interface {
	Post(ctx context.Context, channel string, m Message, o PostOptions) (ts string, err error)
	Update(ctx context.Context, channel, ts string, m Message) error
	Ephemeral(ctx context.Context, channel, user string, m Message) error
	// Respond answers through a command's response_url, ephemerally.
	Respond(ctx context.Context, responseURL string, m Message) error
	OpenModal(ctx context.Context, triggerID string, v slack.ModalViewRequest) error
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
			return fmt.Errorf("%s: %w", what, ErrNotInChannel)
		case "channel_not_found":
			return fmt.Errorf("%s: %w", what, ErrChannelNotFound)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
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

// OpenModal calls views.open; it is not retried, since trigger ids last 3 s.
func (t *SlackTransport) OpenModal(ctx context.Context, triggerID string, v slack.ModalViewRequest) error {
	_, err := t.Client.OpenViewContext(ctx, triggerID, v)
	return classify("views.open", err)
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

// redact removes credentials from m's text and blocks.
func (r *replier) redact(m Message) Message {
	m.Text = r.redactor.Redact(m.Text)
	if len(m.Blocks) == 0 {
		return m
	}
	raw, err := json.Marshal(slack.Blocks{BlockSet: m.Blocks})
	if err != nil {
		return Message{Text: m.Text}
	}
	red := r.redactor.Redact(string(raw))
	if red == string(raw) {
		return m
	}
	var blocks slack.Blocks
	if err := json.Unmarshal([]byte(red), &blocks); err != nil {
		return Message{Text: m.Text}
	}
	m.Blocks = blocks.BlockSet
	return m
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
	if err != nil {
		loggerFrom(ctx, r.logger).Warn("post failed", "channel", channel, "err", r.redactor.Redact(err.Error()))
	}
	return ts, err
}

func (r *replier) update(ctx context.Context, channel, ts string, m Message) error {
	err := r.t.Update(ctx, channel, ts, r.redact(m))
	if err != nil {
		loggerFrom(ctx, r.logger).Warn("update failed", "channel", channel, "ts", ts, "err", r.redactor.Redact(err.Error()))
	}
	return err
}

func (r *replier) ephemeral(ctx context.Context, channel, user string, m Message) {
	if err := r.t.Ephemeral(ctx, channel, user, r.redact(m)); err != nil {
		r.logger.Warn("ephemeral failed", "channel", channel, "err", r.redactor.Redact(err.Error()))
	}
}

func (r *replier) respond(ctx context.Context, url string, m Message) {
	if url == "" {
		return
	}
	if err := r.t.Respond(ctx, url, r.redact(m)); err != nil {
		r.logger.Warn("response_url failed", "err", r.redactor.Redact(err.Error()))
	}
}
