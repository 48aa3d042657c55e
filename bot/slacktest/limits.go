package slacktest

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Block Kit and message limits (see the Slack reference, section 4).
const (
	MaxMessageBlocks   = 50
	MaxModalBlocks     = 100
	MaxSectionText     = 3000
	MaxFields          = 10
	MaxFieldText       = 2000
	MaxHeaderText      = 150
	MaxContextElements = 10
	MaxActionElements  = 25
	MaxID              = 255
	MaxButtonText      = 75
	MaxButtonValue     = 2000
	MaxMessageText     = 4000
	MaxModalTitle      = 24
	MaxPrivateMetadata = 3000
	MaxAckBytes        = 20 << 10
)

type textObject struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type element struct {
	Type     string      `json:"type"`
	ActionID string      `json:"action_id"`
	Value    string      `json:"value"`
	Text     *textObject `json:"text"`
}

type block struct {
	Type     string          `json:"type"`
	BlockID  string          `json:"block_id"`
	Text     *textObject     `json:"text"`
	Fields   []textObject    `json:"fields"`
	Elements json.RawMessage `json:"elements"`
	Element  *element        `json:"element"`
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// CheckBlocks checks blocks (a JSON array) against Block Kit's limits, with
// max blocks allowed.
func CheckBlocks(raw json.RawMessage, max int) error {
	if len(raw) == 0 {
		return nil
	}
	var blocks []block
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return fmt.Errorf("blocks are not a JSON array of blocks: %w", err)
	}
	if len(blocks) > max {
		return fmt.Errorf("%d blocks, over the limit of %d", len(blocks), max)
	}
	for i, b := range blocks {
		if runes(b.BlockID) > MaxID {
			return fmt.Errorf("block %d: block_id longer than %d", i, MaxID)
		}
		switch b.Type {
		case "section":
			if b.Text == nil && len(b.Fields) == 0 {
				return fmt.Errorf("block %d: section without text or fields", i)
			}
			if b.Text != nil && (runes(b.Text.Text) == 0 || runes(b.Text.Text) > MaxSectionText) {
				return fmt.Errorf("block %d: section text of %d characters (1..%d)", i, runes(b.Text.Text), MaxSectionText)
			}
			if len(b.Fields) > MaxFields {
				return fmt.Errorf("block %d: %d fields", i, len(b.Fields))
			}
			for _, f := range b.Fields {
				if runes(f.Text) > MaxFieldText {
					return fmt.Errorf("block %d: field of %d characters", i, runes(f.Text))
				}
			}
		case "header":
			if b.Text == nil || runes(b.Text.Text) > MaxHeaderText {
				return fmt.Errorf("block %d: header text missing or over %d", i, MaxHeaderText)
			}
		case "context", "actions":
			var els []element
			if err := json.Unmarshal(b.Elements, &els); err != nil {
				return fmt.Errorf("block %d: elements: %w", i, err)
			}
			limit := MaxContextElements
			if b.Type == "actions" {
				limit = MaxActionElements
			}
			if len(els) == 0 || len(els) > limit {
				return fmt.Errorf("block %d: %s with %d elements (1..%d)", i, b.Type, len(els), limit)
			}
			for _, e := range els {
				if runes(e.ActionID) > MaxID || runes(e.Value) > MaxButtonValue {
					return fmt.Errorf("block %d: action_id or value too long", i)
				}
				if e.Type == "button" && (e.Text == nil || runes(e.Text.Text) > MaxButtonText) {
					return fmt.Errorf("block %d: button text missing or over %d", i, MaxButtonText)
				}
			}
		case "input":
			if b.Element == nil || runes(b.Element.ActionID) > MaxID {
				return fmt.Errorf("block %d: input without element or with a long action_id", i)
			}
		case "divider":
		default:
			return fmt.Errorf("block %d: unexpected block type %q", i, b.Type)
		}
	}
	return nil
}

// CheckLimits checks one recorded call against Slack's limits.
func CheckLimits(c Call) error {
	if runes(c.Text) > MaxMessageText {
		return fmt.Errorf("%s: text of %d characters, over %d", c.Method, runes(c.Text), MaxMessageText)
	}
	if err := CheckBlocks(c.Blocks, MaxMessageBlocks); err != nil {
		return fmt.Errorf("%s: %w", c.Method, err)
	}
	if len(c.View) > 0 {
		var v struct {
			Title           *textObject     `json:"title"`
			Submit          *textObject     `json:"submit"`
			Close           *textObject     `json:"close"`
			CallbackID      string          `json:"callback_id"`
			PrivateMetadata string          `json:"private_metadata"`
			Blocks          json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(c.View, &v); err != nil {
			return fmt.Errorf("views.open: view: %w", err)
		}
		for _, t := range []*textObject{v.Title, v.Submit, v.Close} {
			if t != nil && runes(t.Text) > MaxModalTitle {
				return fmt.Errorf("views.open: title/submit/close %q over %d", t.Text, MaxModalTitle)
			}
		}
		if runes(v.PrivateMetadata) > MaxPrivateMetadata || runes(v.CallbackID) > MaxID {
			return fmt.Errorf("views.open: private_metadata or callback_id too long")
		}
		if err := CheckBlocks(v.Blocks, MaxModalBlocks); err != nil {
			return fmt.Errorf("views.open: %w", err)
		}
	}
	return nil
}

// CheckAck checks an ack's payload: under 20 KB, and its blocks within
// limits.
func CheckAck(a Ack) error {
	if len(a.Payload) >= MaxAckBytes {
		return fmt.Errorf("ack %s: payload of %d bytes; Slack drops those of 20 KB and more", a.EnvelopeID, len(a.Payload))
	}
	var p struct {
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	if len(a.Payload) > 0 && json.Unmarshal(a.Payload, &p) == nil {
		if runes(p.Text) > MaxMessageText {
			return fmt.Errorf("ack %s: text over %d", a.EnvelopeID, MaxMessageText)
		}
		if err := CheckBlocks(p.Blocks, MaxMessageBlocks); err != nil {
			return fmt.Errorf("ack %s: %w", a.EnvelopeID, err)
		}
	}
	return nil
}
