package bot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/restore-drill/restore-drill/drill"
)

// ContinueJob takes up a drill parked on confirmation c.Ticket, in this
// process: with the confirmation when someone typed it, or, once it
// expired or was cancelled, with that refusal, which undoes the drill. A
// continuation that finds the drill no longer parked on the ticket (the
// other continuation came first) does nothing.
func (b *Bot) ContinueJob(ctx context.Context, c Continuation) error {
	l := b.cfg.Logger.With("drill", c.DrillID, "ticket", c.Ticket)
	p, err := b.cfg.Pending.Get(ctx, c.Ticket)
	if errors.Is(err, ErrNoPending) {
		l.Warn("continuation of an unknown confirmation dropped")
		return nil
	}
	if err != nil {
		return err
	}
	if p.Job == nil || p.DrillID != c.DrillID {
		l.Warn("continuation of a confirmation no queued drill waits for dropped")
		return nil
	}
	if p.State == StatePending {
		if !c.Expiry && b.now().Before(p.ExpiresAt) {
			return nil // nothing to continue with yet
		}
		if p, _, err = b.cfg.Pending.Resolve(ctx, p.ID, StateExpired, "", "", b.now()); err != nil {
			return err
		}
		if p.State == StatePending {
			return fmt.Errorf("confirmation %s has not expired yet by the state database's clock", p.ID)
		}
	}
	b.Go(func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryTimeout)
		defer cancel()
		_ = b.reply.update(uctx, p.Channel, p.PromptTS, promptMessage(p))
	})
	j := *p.Job
	rec := &drillRecord{ID: j.ID, App: j.App, Verb: j.Verb, Mode: drill.Mode(j.Mode), Requester: j.Requester, Channel: j.Channel, ThreadTS: j.ThreadTS, Started: j.Started}
	if h, ok := b.reg.reserve(rec); !ok {
		// The parked drill holds its app in the journal, so this process
		// cannot be running another drill of it: the registry is stale.
		l.Warn("the registry holds the app of a parked drill", "holder", h.ID)
	}
	ans := answerOf(p)
	var retry error
	b.drive(ctx, j, inThread(b, j), func(ctx context.Context, th Thread) (*drill.Report, error) {
		rep, err := b.cfg.Engine.Continue(ctx, c.DrillID, c.Ticket, ans, th)
		if rep == nil {
			// Not taken up: parked on another ticket by now (nothing to
			// do), or the state database failed us (the queue tries
			// again; the drill stays parked meanwhile).
			if !errors.Is(err, drill.ErrNotParked) {
				retry = err
			}
			return nil, drill.ErrNotParked
		}
		// This continuation took the drill: a job of it attempted before
		// this one that River still shows running (the drill's, or an
		// earlier continuation's, whose process died after the drill
		// parked) runs nothing. One attempted since (the answer to the
		// confirmation the drill parked on again) may be running it now.
		if serr := b.cfg.Queue.Settle(context.WithoutCancel(ctx), c.DrillID, c.Ticket); serr != nil {
			l.Warn("cannot close the stale jobs of a continued drill", "err", b.cfg.Redactor.Redact(serr.Error()))
		}
		return rep, err
	})
	if retry != nil {
		l.Warn("cannot take up the parked drill now; the queue tries again", "err", b.cfg.Redactor.Redact(retry.Error()))
	}
	return retry
}

// answerOf is what a resolved confirmation answers the drill.
func answerOf(p Pending) drill.Answer {
	switch p.State {
	case StateConfirmed:
		return drill.Answer{Confirmation: drill.Confirmation{User: p.By, Typed: p.Typed, At: p.At}}
	case StateExpired:
		return drill.Answer{Err: fmt.Errorf("confirmation %s of %q expired at %s: %w", p.ID, p.Action,
			p.ExpiresAt.UTC().Format("15:04:05 UTC"), drill.ErrExpired)}
	}
	return drill.Answer{Err: drill.Wrap(drill.ECANCELED, &drill.Cancel{By: p.By}, "the drill was cancelled while it waited for a confirmation")}
}

// cancelParked cancels a drill parked on a confirmation: its confirmations
// are cancelled, and the continuation it gets undoes it. parked is false
// when drillID waits for no confirmation.
func (b *Bot) cancelParked(ctx context.Context, drillID, by string) (Message, bool) {
	sctx, cancel := context.WithTimeout(ctx, stateCheckTimeout)
	defer cancel()
	ids, err := b.cfg.Pending.CancelDrill(sctx, drillID, by, b.now())
	if err != nil {
		return errorMessage(err), true
	}
	if len(ids) == 0 {
		return Message{}, false
	}
	for _, id := range ids {
		if err := b.cfg.Queue.Continue(sctx, Continuation{DrillID: drillID, Ticket: id}, time.Time{}); err != nil {
			b.cfg.Logger.Error("cannot queue the undo of a cancelled parked drill: it runs at the confirmation's expiry", "drill", drillID, "err", b.cfg.Redactor.Redact(err.Error()))
		}
	}
	b.cfg.Logger.Info("parked drill cancelled", "drill", drillID, "by", by)
	return textMessage(fmt.Sprintf("Cancelling drill %s, which was waiting for a confirmation: its undo stack runs now; follow it in its thread.", code(drillID))), true
}

// repostPrompts posts the prompts of parked drills that nobody posted: the
// process that parked a drill died between the park and the prompt, and
// without the prompt nobody could answer before the expiry undid it.
func (b *Bot) repostPrompts(ctx context.Context) {
	list, err := b.cfg.Pending.Unposted(ctx)
	if err != nil {
		b.cfg.Logger.Warn("cannot read the unposted confirmations", "err", b.cfg.Redactor.Redact(err.Error()))
		return
	}
	for _, p := range list {
		if ok, err := b.cfg.Pending.ClaimPrompt(ctx, p.ID, p.PromptTS); err != nil || !ok {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
		p.PromptTS = ""
		ts, err := b.reply.post(pctx, p.Channel, promptMessage(p), PostOptions{ThreadTS: p.ThreadTS, Broadcast: p.ThreadTS != ""})
		cancel()
		if err != nil {
			b.cfg.Logger.Warn("cannot post a parked drill's confirmation prompt; it is undone at the expiry", "drill", p.DrillID, "err", b.cfg.Redactor.Redact(err.Error()))
			continue
		}
		_ = b.cfg.Pending.SetPromptTS(ctx, p.ID, ts)
		b.cfg.Logger.Info("posted the prompt of a parked drill whose process died before it could", "drill", p.DrillID, "ticket", p.ID)
	}
}
