package bot

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/restore-drill/restore-drill/drill"
)

// Slack rejects a message whose blocks hold more than ≈12,000 characters
// of text in all (msg_blocks_too_long), whatever their number. The bot
// keeps every message well under it.
const (
	// messageTextLimit is the most text across one message's blocks.
	messageTextLimit = 10000
	// tableInlineLimit is the most text of a checksum table shown inline;
	// a bigger one is summarised, and attached in full as a file.
	tableInlineLimit = 6000
)

// blocksTextLength counts the text across blocks as Slack does.
func blocksTextLength(blocks []slack.Block) int {
	n := 0
	for _, b := range blocks {
		n += blockTextLength(b)
	}
	return n
}

func blockTextLength(b slack.Block) int {
	raw, err := json.Marshal(b)
	if err != nil {
		return 0
	}
	return TextLength(raw)
}

// TextLength counts the characters of text in blocks (JSON) as Slack does
// for msg_blocks_too_long: every "text" string, at any depth.
func TextLength(raw []byte) int {
	var tree any
	if len(raw) == 0 || json.Unmarshal(raw, &tree) != nil {
		return 0
	}
	n := 0
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, y := range x {
				if s, ok := y.(string); ok && k == "text" {
					n += utf8.RuneCountInString(s)
					continue
				}
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(tree)
	return n
}

// capText keeps blocks under messageTextLimit characters of text, the last
// one saying what was cut.
func capText(blocks []slack.Block) []slack.Block {
	if blocksTextLength(blocks) <= messageTextLimit {
		return blocks
	}
	const room = 200 // for the note
	var out []slack.Block
	n := 0
	for _, b := range blocks {
		l := blockTextLength(b)
		if n+l > messageTextLimit-room {
			break
		}
		out = append(out, b)
		n += l
	}
	return append(out, slack.NewContextBlock("", mrkdwn(fmt.Sprintf("_… %d more blocks cut: Slack takes about 12,000 characters per message._", len(blocks)-len(out)))))
}

// fitMessages cuts m into messages each within Slack's blocks per message
// and text per message.
func fitMessages(m Message) []Message {
	var out []Message
	var cur []slack.Block
	n := 0
	flush := func() {
		if len(cur) == 0 {
			return
		}
		text := m.Text
		if len(out) > 0 {
			text = fmt.Sprintf("(continued, part %d)", len(out)+1)
		}
		out = append(out, Message{Text: text, Blocks: cur})
		cur, n = nil, 0
	}
	for _, b := range m.Blocks {
		l := blockTextLength(b)
		if len(cur) > 0 && (len(cur) >= blocksLimit || n+l > messageTextLimit) {
			flush()
		}
		cur = append(cur, b)
		n += l
	}
	flush()
	if len(out) == 0 {
		return []Message{m}
	}
	return out
}

// tableLine is one table's line of the checksum table.
func tableLine(t drill.TableResult) string {
	mark := "✓"
	if !t.Match {
		mark = "✗"
	}
	line := fmt.Sprintf("%s %s  %d → %d rows", mark, clipRunes(drill.QuoteIdent(t.Schema)+"."+drill.QuoteIdent(t.Name), 120), t.SourceRows, t.RestoredRows)
	if t.Problem != "" {
		line += "  " + clipRunes(t.Problem, 200)
	}
	return Escape(strings.ReplaceAll(line, "```", "'''"))
}

// tableHead is the checksum table's first lines: counts and what kind of
// comparison it is.
func tableHead(r *drill.Report, match int) string {
	head := fmt.Sprintf("*Checksums* — %s, %d match", drill.Plural(len(r.Tables), "table", "tables"), match)
	if r.Verification != "" {
		head += ": " + Escape(r.Verification)
	}
	if !r.Exact {
		head += "\n_Not an exact comparison: differences are drift since the backup._"
	}
	return head
}

// preBlocks renders lines as preformatted sections.
func preBlocks(lines []string) []slack.Block {
	var out []slack.Block
	for _, part := range splitText(strings.Join(lines, "\n"), sectionLimit-8) {
		out = append(out, slack.NewSectionBlock(mrkdwn("```"+part+"```"), nil, nil))
	}
	return out
}

// checksumReply is the checksum table's reply: the whole table when it is
// short; else the summary and the differing tables, with the whole table
// as a CSV file to attach (file is nil when the reply holds it all).
func checksumReply(r *drill.Report) (m Message, file *File) {
	if len(r.Tables) == 0 {
		return Message{}, nil
	}
	match := 0
	all := make([]string, 0, len(r.Tables))
	var differ []string
	for _, t := range r.Tables {
		l := tableLine(t)
		if t.Match {
			match++
		} else {
			differ = append(differ, l)
		}
		all = append(all, l)
	}
	diffs := schemaDiffLines(r.SchemaDiffs)
	all = append(all, diffs...)
	differ = append(differ, diffs...)
	head := tableHead(r, match)
	text := fmt.Sprintf("Checksums of drill %s: %s, %d match", r.DrillID, drill.Plural(len(r.Tables), "table", "tables"), match)
	blocks := append(sections(head), preBlocks(all)...)
	if len(blocks) <= blocksLimit && blocksTextLength(blocks) <= tableInlineLimit {
		return Message{Text: text, Blocks: blocks}, nil
	}
	blocks = sections(head)
	if len(differ) > 0 {
		blocks = append(blocks, sections("*What differs:*")...)
		shown := differ
		for len(shown) > 0 && blocksTextLength(append(blocks, preBlocks(shown)...)) > tableInlineLimit {
			shown = shown[:len(shown)*3/4]
		}
		if len(shown) > 0 {
			blocks = append(blocks, preBlocks(shown)...)
		}
		if len(shown) < len(differ) {
			blocks = append(blocks, sections(fmt.Sprintf("_… and %d more differing tables: see the file._", len(differ)-len(shown)))...)
		}
	}
	name := fmt.Sprintf("restore-drill-%s-checksums.csv", r.DrillID)
	blocks = append(blocks, sections(fmt.Sprintf(":page_facing_up: Every table's counts and hashes are in %s, attached below.", code(name)))...)
	return Message{Text: text, Blocks: blocks}, &File{Filename: name, Title: fmt.Sprintf("Checksums of drill %s of %s (%d tables)", r.DrillID, r.App, len(r.Tables)),
		Data: checksumCSV(r)}
}

// checksumCSV is the whole checksum table as CSV, one line per table.
func checksumCSV(r *drill.Report) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"schema", "table", "match", "source_rows", "restored_rows", "source_hash", "restored_hash", "problem"})
	for _, t := range r.Tables {
		_ = w.Write([]string{t.Schema, t.Name, strconv.FormatBool(t.Match), strconv.FormatInt(t.SourceRows, 10), strconv.FormatInt(t.RestoredRows, 10),
			t.SourceHash, t.RestoredHash, t.Problem})
	}
	w.Flush()
	return buf.Bytes()
}

// postChecksums posts the checksum table of rep in thread ts (with post),
// and attaches it in full as a file when the reply only summarises it.
// Without an uploader, or when the upload fails, the whole table is posted
// in as many messages as it needs instead.
func (r *reporter) postChecksums(ctx context.Context, ts string, rep *drill.Report, post func(Message, bool)) {
	m, file := checksumReply(rep)
	if len(m.Blocks) == 0 {
		return
	}
	post(m, false)
	if file == nil {
		return
	}
	file.Data = []byte(r.b.cfg.Redactor.Redact(string(file.Data)))
	if up, ok := r.b.cfg.Transport.(Uploader); ok && ts != "" {
		uctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
		err := r.b.reply.upload(uctx, up, r.channel, ts, *file)
		cancel()
		if err == nil {
			return
		}
		r.b.cfg.Logger.Warn("checksum table upload failed: posting it in messages", "drill", rep.DrillID, "err", r.b.cfg.Redactor.Redact(err.Error()))
	}
	lines := make([]string, 0, len(rep.Tables))
	for _, t := range rep.Tables {
		lines = append(lines, tableLine(t))
	}
	full := Message{Text: fmt.Sprintf("Checksums of drill %s, every table", rep.DrillID), Blocks: preBlocks(lines)}
	for _, part := range fitMessages(full) {
		post(part, false)
	}
}
