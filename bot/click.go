package bot

import (
	"context"

	"github.com/slack-go/slack"
)

// confirmModal answers a click on a confirmation button: it opens the
// modal first, before any database read or user-group lookup (a trigger_id
// works once, within 3 s), then fills it in with views.update: the
// confirmation to type, or why this person cannot confirm it. Should the
// modal not open, the person is told ephemerally to click again.
func (b *Bot) confirmModal(ctx context.Context, req Request) {
	viewID, err := b.cfg.Transport.OpenModal(ctx, req.TriggerID, noticeView(req.Value, ":hourglass_flowing_sand: Checking this confirmation…"))
	if err != nil {
		loggerFrom(ctx, b.cfg.Logger).Warn("views.open failed", "err", b.cfg.Redactor.Redact(err.Error()))
		b.reply.ephemeral(ctx, req.Channel, req.User, req.ResponseURL,
			textMessage(":warning: Slack could not open the confirmation window in time; click the button again."))
		return
	}
	view := b.clickView(ctx, req)
	if err := b.cfg.Transport.UpdateModal(ctx, viewID, b.redactView(view)); err != nil {
		loggerFrom(ctx, b.cfg.Logger).Warn("views.update failed", "err", b.cfg.Redactor.Redact(err.Error()))
		b.reply.ephemeral(ctx, req.Channel, req.User, req.ResponseURL,
			textMessage(":warning: Slack could not show the confirmation window; close it and click the button again."))
	}
}

// clickView is what the modal a click opened shows: the typed
// confirmation, or why req's user cannot confirm.
func (b *Bot) clickView(ctx context.Context, req Request) slack.ModalViewRequest {
	p, err := b.cfg.Pending.Get(ctx, req.Value)
	if err != nil {
		return noticeView(req.Value, ":warning: That confirmation is not known to this bot (it may have restarted).")
	}
	if problem := b.checkConfirmer(ctx, req.User, p); problem != "" {
		return noticeView(req.Value, ":no_entry: "+problem)
	}
	return modalView(p)
}

// redactView removes credentials from a view's blocks.
func (b *Bot) redactView(v slack.ModalViewRequest) slack.ModalViewRequest {
	m := b.reply.redactOnly(Message{Blocks: v.Blocks.BlockSet})
	v.Blocks = slack.Blocks{BlockSet: m.Blocks}
	return v
}

// noticeView is a modal that only says text: no input, nothing to submit.
func noticeView(id, text string) slack.ModalViewRequest {
	return slack.ModalViewRequest{
		Type: slack.VTModal, CallbackID: callbackTyped, PrivateMetadata: id,
		Title: plain("Confirm"), Close: plain("Close"),
		Blocks: slack.Blocks{BlockSet: sections(text)},
	}
}
