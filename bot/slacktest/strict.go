package slacktest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/restore-drill/restore-drill/bot"
)

// Limits Slack enforces at call time (reference, section 8).
const (
	// MaxBlocksText is the text across all blocks of one message past
	// which Slack answers msg_blocks_too_long (≈12,000; 13,200 seen).
	MaxBlocksText = 12000
	// TriggerLifetime is how long a trigger_id opens a view; once only.
	TriggerLifetime = 3 * time.Second
	// ResponseURLUses and ResponseURLLifetime bound a response_url.
	ResponseURLUses     = 5
	ResponseURLLifetime = 30 * time.Minute
	// AckDeadline: an ack later than this is too late, and its payload
	// is dropped (the person saw operation_timeout).
	AckDeadline = 3 * time.Second
)

// RequiredScope returns the bot scope a Web API method needs ("" when it
// needs none), and whether the fake implements the method at all.
func RequiredScope(method string) (scope string, known bool) {
	switch method {
	case "chat.postMessage", "chat.update", "chat.postEphemeral":
		return "chat:write", true
	case "conversations.join":
		return "channels:join", true
	case "usergroups.users.list":
		return "usergroups:read", true
	case "users.info":
		return "users:read", true
	case "files.getUploadURLExternal", "files.completeUploadExternal":
		return "files:write", true
	case "views.open", "views.update", "auth.test":
		return "", true
	}
	return "", false
}

// Rejected reports whether c is a call Slack rejected because the bot
// got it wrong (blocks, scopes, an unknown ts, a used trigger_id or
// response_url), not because of the workspace's state or an injected
// fault.
func (c Call) Rejected() bool {
	if c.Injected {
		return false
	}
	switch c.Error {
	case "invalid_blocks", "msg_blocks_too_long", "missing_scope", "message_not_found", "invalid_arguments",
		"no_text", "invalid_trigger_id", "exchanged_trigger_id", "expired_trigger_id", "expired_url", "invalid_url", "unknown_method":
		return true
	}
	return false
}

// checkMessage is Slack's call-time check of a message's blocks: "" when
// it takes them, else the error it answers.
func checkMessage(blocks json.RawMessage) string {
	if err := CheckBlocks(blocks, MaxMessageBlocks); err != nil {
		return "invalid_blocks"
	}
	if bot.TextLength(blocks) > MaxBlocksText {
		return "msg_blocks_too_long"
	}
	return ""
}

// checkView is views.open/update's check of a view.
func checkView(view json.RawMessage) string {
	if len(view) == 0 {
		return "invalid_arguments"
	}
	if CheckLimits(Call{Method: "views", View: view}) != nil {
		return "invalid_arguments"
	}
	return ""
}

// SetScopes replaces the bot token's scopes (by default the manifest's).
func (s *Server) SetScopes(scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scopes = map[string]bool{}
	for _, sc := range scopes {
		s.scopes[sc] = true
	}
}

// Member makes the bot a member of channel (it was invited), so that
// chat.postEphemeral works there. Public channels the bot has not joined
// refuse ephemeral messages with not_in_channel.
func (s *Server) Member(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members[channel] = true
}

// IsMember reports whether the bot is a member of channel.
func (s *Server) IsMember(channel string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.members[channel]
}

// AddChannel names a channel, so that "#name" typed in a command arrives
// as <#id|name> (with should_escape).
func (s *Server) AddChannel(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.channelNames[name] = id
}

// AddUser names a user, so that "@name" typed in a command arrives as
// <@id> (with should_escape).
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.userNames[name] = id
}

// ExpireResponseURLs ages every response_url handed out so far past its
// 30 minutes.
func (s *Server) ExpireResponseURLs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, at := range s.sent {
		s.sent[id] = at.Add(-ResponseURLLifetime)
	}
}

var (
	typedChannel = regexp.MustCompile(`(^|[\s=])#([a-z0-9][a-z0-9_-]*)`)
	typedUser    = regexp.MustCompile(`(^|[\s=])@([A-Za-z0-9._-]+)`)
)

// commandText is text as a person typed it, as Slack sends it: &, < and >
// HTML-escaped and, with should_escape, #channel and @user of the
// workspace turned into links.
func (s *Server) commandText(typed string) string {
	t := bot.Escape(typed)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.shouldEscape {
		return t
	}
	t = typedChannel.ReplaceAllStringFunc(t, func(m string) string {
		sub := typedChannel.FindStringSubmatch(m)
		id, ok := s.channelNames[sub[2]]
		if !ok {
			return m
		}
		return fmt.Sprintf("%s<#%s|%s>", sub[1], id, sub[2])
	})
	return typedUser.ReplaceAllStringFunc(t, func(m string) string {
		sub := typedUser.FindStringSubmatch(m)
		id, ok := s.userNames[sub[2]]
		if !ok {
			return m
		}
		return fmt.Sprintf("%s<@%s>", sub[1], id)
	})
}

// triggerProblem says why trigger id cannot open a view now ("" when it
// can), and uses it up. Called with s.mu held.
func (s *Server) triggerProblem(id string, now time.Time) string {
	env, ok := s.triggers[id]
	if !ok {
		return "invalid_trigger_id"
	}
	if s.usedTriggers[id] {
		return "exchanged_trigger_id"
	}
	s.usedTriggers[id] = true
	if now.Sub(s.sent[env]) > TriggerLifetime {
		return "expired_trigger_id"
	}
	return ""
}

// responseProblem says why the response_url of envelope id takes no more
// messages ("" when it does), and counts the use. Called with s.mu held.
func (s *Server) responseProblem(id string, now time.Time) string {
	at, ok := s.sent[id]
	if !ok {
		return "invalid_url"
	}
	s.responseUses[id]++
	if s.responseUses[id] > ResponseURLUses || now.Sub(at) > ResponseURLLifetime {
		return "expired_url"
	}
	return ""
}
