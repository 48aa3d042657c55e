package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// SlackConfig is what the Socket Mode client needs.
type SlackConfig struct {
	AppToken, BotToken string
	// APIURL is the Web API base, with its trailing slash.
	APIURL string
	// PingInterval: see socketmode.OptionPingInterval; 30 s when zero.
	PingInterval time.Duration
	// HTTPTimeout bounds every Web API call, so that a stalled call
	// cannot hang a drill's thread or shutdown; DefaultHTTPTimeout when
	// zero.
	HTTPTimeout time.Duration
}

// DefaultHTTPTimeout is SlackConfig.HTTPTimeout's default.
const DefaultHTTPTimeout = 30 * time.Second

// NewSlack builds the Web API client and the Socket Mode client.
func NewSlack(cfg SlackConfig) (*slack.Client, *socketmode.Client) {
	timeout := cfg.HTTPTimeout
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	opts := []slack.Option{slack.OptionAppLevelToken(cfg.AppToken), slack.OptionHTTPClient(&http.Client{Timeout: timeout})}
	if cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(cfg.APIURL))
	}
	api := slack.New(cfg.BotToken, opts...)
	var smOpts []socketmode.Option
	if cfg.PingInterval > 0 {
		smOpts = append(smOpts, socketmode.OptionPingInterval(cfg.PingInterval))
	}
	return api, socketmode.New(api, smOpts...)
}

// Listener is the Socket Mode loop: one select over the client's events,
// each envelope handled in its own goroutine (so that one slow dependency
// delays no other envelope), acked within PreAckTimeout, slow work
// dispatched to goroutines.
type Listener struct {
	Bot    *Bot
	Client *socketmode.Client
	Logger *slog.Logger
	// PreAckTimeout bounds the work done before an envelope is acked
	// (Slack wants the ack within 3 s); DefaultPreAckTimeout when zero.
	PreAckTimeout time.Duration

	seen     dedupe
	handlers sync.WaitGroup
}

// DefaultPreAckTimeout is Listener.PreAckTimeout's default. With
// preAckGrace it makes an ack leave within 1.25 s: Slack wants it within
// 3 s of sending the envelope, and the round trip (Slack to the bot and
// back, a reconnect's queue) takes its share of those.
const DefaultPreAckTimeout = time.Second

// preAckGrace is how long past PreAckTimeout the listener waits for a
// handler that does not heed its context before it acks without it.
const preAckGrace = 250 * time.Millisecond

// tryAgainText is the ack of a command whose handling did not finish in
// time.
const tryAgainText = ":warning: A service I depend on is too slow right now, so I could not answer in time: try again in a minute (if your command did go through after all, I will say so here)."

// tryAgainSubmission is the error under the input of a submission whose
// handling did not finish in time.
const tryAgainSubmission = "I could not check this in time: submit again in a moment."

// Run connects and serves until ctx ends or the connection fails for good,
// then waits for running drills to finish their undo.
func (l *Listener) Run(ctx context.Context) error {
	if l.Logger == nil {
		l.Logger = slog.New(slog.DiscardHandler)
	}
	l.Bot.Prime(ctx)
	errc := make(chan error, 1)
	go func() { errc <- l.Client.RunContext(ctx) }()
	defer l.Bot.Wait()
	// Handlers may start drills (Bot.Go): they end before Bot.Wait.
	defer l.handlers.Wait()
	if l.Bot.cfg.Store != nil {
		// Resume what dead processes left, then schedules and health, every
		// tick until ctx ends. (Not under Bot.Go: Bot.Wait waits for drills,
		// not for this loop.)
		bg := make(chan struct{})
		go func() {
			defer close(bg)
			l.Bot.Background(ctx)
		}()
		defer func() { <-bg }()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("slack socket mode: %w", err)
		case evt := <-l.Client.Events:
			switch evt.Type {
			case socketmode.EventTypeSlashCommand, socketmode.EventTypeInteractive, socketmode.EventTypeEventsAPI:
			default:
				l.handle(ctx, evt) // connection events: cheap, in order
				continue
			}
			l.handlers.Add(1)
			go func() {
				defer l.handlers.Done()
				l.handle(ctx, evt)
			}()
		}
	}
}

// answer is what a handler computed before the ack.
type answer struct {
	payload any
	later   Later
	// late is what to tell the user when the answer comes after the ack.
	late Message
}

// preAck runs fn with a context ending after PreAckTimeout. It returns fn's
// answer, or, when fn has not returned shortly after that, ok false and a
// channel that gets the answer when fn does return.
func (l *Listener) preAck(ctx context.Context, fn func(context.Context) answer) (a answer, late <-chan answer, ok bool) {
	d := l.PreAckTimeout
	if d <= 0 {
		d = DefaultPreAckTimeout
	}
	actx, cancel := context.WithTimeout(ctx, d)
	done := make(chan answer, 1)
	go func() {
		defer cancel()
		done <- fn(actx)
	}()
	t := time.NewTimer(d + preAckGrace)
	defer t.Stop()
	select {
	case a := <-done:
		return a, nil, true
	case <-t.C:
		return answer{}, done, false
	}
}

func (l *Listener) ack(req *socketmode.Request, payload any) {
	if req == nil {
		return
	}
	payload = l.Bot.redactPayload(payload)
	var err error
	if payload == nil {
		err = l.Client.Ack(*req)
	} else {
		err = l.Client.Ack(*req, payload)
	}
	if err != nil {
		l.Logger.Warn("ack failed", "envelope", req.EnvelopeID, "err", err)
	}
}

// after registers later with Go, runs ack, then lets later run.
func (b *Bot) after(ctx context.Context, later Later, ack func()) {
	if later == nil {
		ack()
		return
	}
	acked := make(chan struct{})
	b.Go(func() {
		<-acked
		later(ctx)
	})
	ack()
	close(acked)
}

// chain runs a, then b; nil ones are skipped.
func chain(a, b Later) Later {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return func(ctx context.Context) {
		a(ctx)
		b(ctx)
	}
}

// ackMessage is a slash command's immediate ephemeral reply.
type ackMessage struct {
	ResponseType string        `json:"response_type"`
	Text         string        `json:"text"`
	Blocks       []slack.Block `json:"blocks,omitempty"`
}

func (l *Listener) handle(ctx context.Context, evt socketmode.Event) {
	now := time.Now()
	switch evt.Type {
	case socketmode.EventTypeConnected, socketmode.EventTypeHello:
		l.Logger.Debug("socket mode", "event", string(evt.Type))
		l.Bot.Go(func() { l.Bot.SocketUp(ctx, l.Bot.now()) })
		return
	case socketmode.EventTypeConnecting:
		l.Logger.Debug("socket mode", "event", string(evt.Type))
		l.Bot.SocketDown(l.Bot.now())
		return
	case socketmode.EventTypeConnectionError:
		l.Logger.Warn("socket mode trouble", "event", string(evt.Type))
		l.Bot.SocketDown(l.Bot.now())
		return
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed, socketmode.EventTypeErrorBadMessage:
		l.Logger.Warn("socket mode trouble", "event", string(evt.Type))
		return
	}
	if evt.Request != nil && evt.Request.EnvelopeID != "" && l.seen.check(evt.Request.EnvelopeID) {
		l.ack(evt.Request, nil) // a redelivery: ack again, do nothing
		return
	}
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slack.SlashCommand)
		if !ok {
			l.ack(evt.Request, nil)
			return
		}
		if cmd.Command != SlashCommand {
			l.ack(evt.Request, ackMessage{ResponseType: "ephemeral", Text: "Unknown command " + Escape(cmd.Command)})
			return
		}
		req := FromSlashCommand(cmd, evt.Request.EnvelopeID, now)
		a, late, ok := l.preAck(ctx, func(actx context.Context) answer {
			m, later := l.Bot.HandleCommand(actx, req)
			payload, more := l.Bot.ackPayload(req, m)
			return answer{payload: payload, later: chain(more, later), late: m}
		})
		if !ok {
			l.Logger.Warn("command not answered in time", "envelope", evt.Request.EnvelopeID, "user", req.User)
			l.Bot.after(ctx, func(ctx context.Context) {
				a := <-late
				if a.later == nil {
					return // it was refused: the "try again" stands
				}
				// It went through after all: say so, and do the work.
				l.Bot.reply.respond(ctx, req.ResponseURL, a.late)
				a.later(ctx)
			}, func() {
				l.ack(evt.Request, ackMessage{ResponseType: "ephemeral", Text: tryAgainText, Blocks: sections(tryAgainText)})
			})
			return
		}
		// The work is registered (Bot.Go) before the ack, so that whoever
		// reads the ack and then waits for the bot waits for it too.
		l.Bot.after(ctx, a.later, func() { l.ack(evt.Request, a.payload) })
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			l.ack(evt.Request, nil)
			return
		}
		req := FromInteraction(cb, evt.Request.EnvelopeID, now)
		switch req.Kind {
		case KindSubmission:
			a, _, ok := l.preAck(ctx, func(actx context.Context) answer {
				if resp := l.Bot.HandleSubmission(actx, req); resp != nil {
					return answer{payload: resp}
				}
				return answer{}
			})
			switch {
			case !ok:
				l.Logger.Warn("submission not answered in time", "envelope", evt.Request.EnvelopeID, "user", req.User)
				l.ack(evt.Request, slack.NewErrorsViewSubmissionResponse(map[string]string{inputBlockID: tryAgainSubmission}))
			case a.payload == nil:
				l.ack(evt.Request, nil)
			default:
				l.ack(evt.Request, a.payload)
			}
		case KindClick:
			l.Bot.after(ctx, l.Bot.HandleClick(ctx, req), func() { l.ack(evt.Request, nil) })
		default:
			l.ack(evt.Request, nil)
		}
	case socketmode.EventTypeEventsAPI:
		l.ack(evt.Request, nil)
		if e, ok := evt.Data.(slackevents.EventsAPIEvent); ok {
			if cb, ok := e.Data.(*slackevents.EventsAPICallbackEvent); ok && l.seen.check("event:"+cb.EventID) {
				return
			}
			if m, ok := e.InnerEvent.Data.(*slackevents.MessageEvent); ok && (m.BotID != "" || m.SubType == "bot_message") {
				return // never answer bots
			}
		}
	default:
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			l.ack(evt.Request, nil)
		}
	}
}

// dedupe remembers the last ids it saw.
type dedupe struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

const dedupeSize = 4096

// check records id and reports whether it was seen before.
func (d *dedupe) check(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.set == nil {
		d.set, d.ring = map[string]struct{}{}, make([]string, dedupeSize)
	}
	if _, ok := d.set[id]; ok {
		return true
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.set, old)
	}
	d.ring[d.next] = id
	d.next = (d.next + 1) % dedupeSize
	d.set[id] = struct{}{}
	return false
}

// ErrTokens is returned by CheckTokens.
var ErrTokens = errors.New("slack tokens are missing or wrong")

// CheckTokens checks the tokens' presence and prefixes, never echoing them.
func CheckTokens(appToken, botToken string) error {
	switch {
	case appToken == "":
		return fmt.Errorf("%w: SLACK_APP_TOKEN is not set: create an app-level token with the connections:write scope (Basic Information → App-Level Tokens); it starts with xapp-", ErrTokens)
	case len(appToken) < 5 || appToken[:5] != "xapp-":
		return fmt.Errorf("%w: SLACK_APP_TOKEN does not start with xapp-: it must be the app-level token, not the bot token", ErrTokens)
	case botToken == "":
		return fmt.Errorf("%w: SLACK_BOT_TOKEN is not set: install the app and copy the Bot User OAuth Token; it starts with xoxb-", ErrTokens)
	case len(botToken) < 5 || botToken[:5] != "xoxb-":
		return fmt.Errorf("%w: SLACK_BOT_TOKEN does not start with xoxb-: it must be the Bot User OAuth Token", ErrTokens)
	}
	return nil
}
