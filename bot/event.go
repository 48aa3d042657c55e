package bot

import (
	"strings"
	"time"

	"github.com/slack-go/slack"
)

// RequestKind says what a person did.
type RequestKind string

// Request kinds.
const (
	KindCommand    RequestKind = "command"
	KindClick      RequestKind = "click"
	KindSubmission RequestKind = "submission"
)

// Request is a Slack payload normalised into one pure type, so handlers never
// type-assert Slack payloads. Building one makes no API call.
type Request struct {
	Kind        RequestKind
	EnvelopeID  string
	User        string
	Channel     string
	Text        string
	ResponseURL string
	TriggerID   string
	// ActionID and Value are the clicked button's.
	ActionID, Value string
	// MessageTS is the clicked message's ts.
	MessageTS string
	// CallbackID and PrivateMetadata are the submitted modal's; Values maps
	// each input block id to the text typed in it.
	CallbackID, PrivateMetadata string
	Values                      map[string]string
	At                          time.Time
	// Scheduled marks a drill a schedule started; User is then the
	// schedule's creator.
	Scheduled bool
}

// unescapeCommand undoes the HTML escaping Slack applies to what people
// type in a command (&, < and > arrive as &amp;, &lt; and &gt;), so that
// the text is escaped once, when it is shown, not twice. Mentions and
// channel links arrive as real <@U…> and <#C…|name>, which stay as they
// are.
func unescapeCommand(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// FromSlashCommand normalises a slash command.
func FromSlashCommand(c slack.SlashCommand, envelopeID string, at time.Time) Request {
	return Request{Kind: KindCommand, EnvelopeID: envelopeID, User: c.UserID, Channel: c.ChannelID, Text: unescapeCommand(c.Text),
		ResponseURL: c.ResponseURL, TriggerID: c.TriggerID, At: at}
}

// FromInteraction normalises a block_actions or view_submission payload.
func FromInteraction(cb slack.InteractionCallback, envelopeID string, at time.Time) Request {
	r := Request{EnvelopeID: envelopeID, User: cb.User.ID, TriggerID: cb.TriggerID, ResponseURL: cb.ResponseURL, At: at}
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		r.Kind = KindClick
		r.Channel = cb.Channel.ID
		if r.Channel == "" {
			r.Channel = cb.Container.ChannelID
		}
		r.MessageTS = cb.Container.MessageTs
		if r.MessageTS == "" {
			r.MessageTS = cb.Message.Timestamp
		}
		if len(cb.ActionCallback.BlockActions) > 0 {
			a := cb.ActionCallback.BlockActions[0]
			r.ActionID, r.Value = a.ActionID, a.Value
		}
	case slack.InteractionTypeViewSubmission:
		r.Kind = KindSubmission
		r.CallbackID, r.PrivateMetadata = cb.View.CallbackID, cb.View.PrivateMetadata
		r.Values = map[string]string{}
		if cb.View.State != nil {
			for blockID, actions := range cb.View.State.Values {
				for _, a := range actions {
					r.Values[blockID] = a.Value
				}
			}
		}
	}
	return r
}
