package bot

import (
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

// FromSlashCommand normalises a slash command. Slack sends its text
// HTML-escaped (& < > as &amp; &lt; &gt;) with mentions and channels as
// <@U…> and <#C…|name> links (should_escape): Text is it unescaped, so
// that what the person typed is what the bot reads (and escapes once when
// it shows it), and the links are the only <…> in it.
func FromSlashCommand(c slack.SlashCommand, envelopeID string, at time.Time) Request {
	return Request{Kind: KindCommand, EnvelopeID: envelopeID, User: c.UserID, Channel: c.ChannelID, Text: unescape(c.Text),
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
