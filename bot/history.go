package bot

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/trend"
)

// historyRows is how many drills history shows and charts.
const historyRows = 10

// File is a file to share in a thread.
type File struct {
	Filename, Title, AltText string
	Data                     []byte
}

// Uploader is implemented by transports that can share files (Slack's
// files.getUploadURLExternal, upload, files.completeUploadExternal).
type Uploader interface {
	Upload(ctx context.Context, channel, threadTS string, f File) error
}

var _ Uploader = (*SlackTransport)(nil)

// Upload shares f in channel's thread threadTS.
func (t *SlackTransport) Upload(ctx context.Context, channel, threadTS string, f File) error {
	_, err := t.Client.UploadFileContext(ctx, slack.UploadFileParameters{
		Reader: bytes.NewReader(f.Data), FileSize: len(f.Data), Filename: f.Filename, Title: f.Title, AltTxt: f.AltText,
		Channel: channel, ThreadTimestamp: threadTS,
	})
	return classify("file upload "+f.Filename, err)
}

// postHistory posts the table of app's last drills in the channel, from the
// state database (drills of every bot process and of the terminal), and the
// trend chart in its thread. The table stands even if the upload fails.
func (b *Bot) postHistory(ctx context.Context, req Request, app string) {
	reps, err := b.cfg.Store.History(ctx, app, historyRows)
	if err != nil {
		b.reply.respond(ctx, req.ResponseURL, errorMessage(err))
		return
	}
	if len(reps) == 0 {
		b.reply.respond(ctx, req.ResponseURL, textMessage(fmt.Sprintf("No drill of %s is recorded yet: `%s run %s` runs one.", code(app), SlashCommand, app)))
		return
	}
	m := historyTable(app, reps)
	ts, err := b.reply.post(ctx, req.Channel, m, PostOptions{})
	if err != nil {
		b.reply.respond(ctx, req.ResponseURL, m)
		return
	}
	up, ok := b.cfg.Transport.(Uploader)
	if !ok {
		return
	}
	png, err := trend.PNG(reps)
	if err == nil {
		err = b.reply.upload(ctx, up, req.Channel, ts, File{Filename: "restore-drill-trend-" + app + ".png", Title: "Restore time and size of " + app,
			AltText: fmt.Sprintf("Two charts over the dates of the last %d drills of %s: restore time in seconds (blue), backup size (orange); failed drills are red dots.", len(reps), app), Data: png})
	}
	if err != nil {
		b.cfg.Logger.Warn("trend chart upload failed", "app", app, "err", b.cfg.Redactor.Redact(err.Error()))
		_, _ = b.reply.post(ctx, req.Channel, textMessage("_(The trend chart could not be uploaded; the table above has the figures.)_"), PostOptions{ThreadTS: ts})
	}
}

// historyTable is one line per drill, newest first: result, RTO (restore
// and total), RPO, canary, tables, and who confirmed.
func historyTable(app string, reps []*drill.Report) Message {
	var sb strings.Builder
	fmt.Fprintf(&sb, "*Drills of %s*: the last %d (newest first; RTO restore / total, RPO = backup age)\n", code(app), len(reps))
	for _, r := range reps {
		result, rto := resultWord(r), fmt.Sprintf("RTO %s / %s", drill.Seconds(r.RestoreSeconds), drill.Seconds(r.TotalSeconds))
		switch {
		case r.Cancelled:
			result, rto = ":no_entry_sign: "+result, "no RTO (cancelled)"
		case r.Result == drill.Passed:
			result = ":white_check_mark: " + result
		default:
			result = ":x: " + result
		}
		rpo := "–"
		if r.RPOSeconds != nil {
			rpo = drill.Seconds(*r.RPOSeconds)
		}
		canary := "not expected"
		switch {
		case r.Canary.Expected && r.Canary.Found:
			canary = "found"
		case r.Canary.Expected:
			canary = "MISSING"
		}
		var who []string
		seen := map[string]bool{}
		for _, c := range r.Confirmations {
			if !seen[c.User] {
				seen[c.User] = true
				who = append(who, user(c.User))
			}
		}
		confirmed := "no confirmation"
		if len(who) > 0 {
			confirmed = "confirmed by " + strings.Join(who, ", ")
		}
		fmt.Fprintf(&sb, "• %s %s %s %s · %s · RPO %s · canary %s · %s · %s\n", code(r.DrillID),
			slackTime(r.StartedAt), r.Mode, result, rto, rpo, canary, drill.Plural(len(r.Tables), "table", "tables"), confirmed)
	}
	return textMessage(sb.String())
}
