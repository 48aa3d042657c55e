package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
}

// NewSlack builds the Web API client and the Socket Mode client.
func NewSlack(cfg SlackConfig) (*slack.Client, *socketmode.Client) {
	opts := []slack.Option{slack.OptionAppLevelToken(cfg.AppToken)}
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

// Listener is the Socket Mode loop: one select over the client's events, an
// ack for every envelope at once, slow work dispatched to goroutines.
type Listener struct {
	Bot    *Bot
	Client *socketmode.Client
	Logger *slog.Logger

	seen dedupe
}

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
			l.handle(ctx, evt)
		}
	}
}

func (l *Listener) ack(req *socketmode.Request, payload any) {
	if req == nil {
		return
	}
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
		m, later := l.Bot.HandleCommand(ctx, FromSlashCommand(cmd, evt.Request.EnvelopeID, now))
		l.ack(evt.Request, ackMessage{ResponseType: "ephemeral", Text: m.Text, Blocks: m.Blocks})
		if later != nil {
			l.Bot.Go(func() { later(ctx) })
		}
	case socketmode.EventTypeInteractive:
		cb, ok := evt.Data.(slack.InteractionCallback)
		if !ok {
			l.ack(evt.Request, nil)
			return
		}
		req := FromInteraction(cb, evt.Request.EnvelopeID, now)
		switch req.Kind {
		case KindSubmission:
			resp := l.Bot.HandleSubmission(ctx, req)
			if resp == nil {
				l.ack(evt.Request, nil)
			} else {
				l.ack(evt.Request, resp)
			}
		case KindClick:
			l.ack(evt.Request, nil)
			if later := l.Bot.HandleClick(ctx, req); later != nil {
				l.Bot.Go(func() { later(ctx) })
			}
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
