package bot

import (
	"context"
	"fmt"
	"strings"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/schedule"
)

// needsStore answers the verbs that only work with the state database.
func needsStore(verb string) Message {
	return textMessage(fmt.Sprintf(":warning: `%s` needs the state database (DATABASE_URL): this bot keeps nothing across restarts.", verb))
}

// handleAdmin answers freeze, unfreeze, unlock, schedule, schedules and
// unschedule. The caller has checked authorization.
func (b *Bot) handleAdmin(ctx context.Context, req Request, cmd Command) (Message, Later) {
	st := b.cfg.Store
	if st == nil {
		return needsStore(cmd.Verb), nil
	}
	l := b.cfg.Logger.With("verb", cmd.Verb, "user", req.User)
	qctx, cancel := context.WithTimeout(ctx, stateCheckTimeout)
	defer cancel()
	unreachable := func(err error) (Message, Later) {
		l.Warn("state database error", "err", b.cfg.Redactor.Redact(err.Error()))
		return textMessage(":warning: I cannot reach my state database now; nothing changed. Try again in a minute."), nil
	}
	switch cmd.Verb {
	case VerbFreeze:
		if err := st.SetFreeze(qctx, true, req.User, cmd.Reason); err != nil {
			return unreachable(err)
		}
		l.Warn("drills frozen", "reason", cmd.Reason)
		m := frozenMessage(req.User, cmd.Reason, b.now())
		return textMessage("Frozen. Drills already running go on; cancel them with `" + SlashCommand + " cancel DRILL` if needed."), func(ctx context.Context) {
			_, _ = b.reply.post(ctx, req.Channel, m, PostOptions{})
		}
	case VerbUnfreeze:
		frozen, _, _, _, err := st.Frozen(qctx)
		if err != nil {
			return unreachable(err)
		}
		if !frozen {
			return textMessage("Drills are not frozen."), nil
		}
		if err := st.SetFreeze(qctx, false, req.User, ""); err != nil {
			return unreachable(err)
		}
		l.Warn("drills unfrozen")
		return textMessage("Unfrozen."), func(ctx context.Context) {
			_, _ = b.reply.post(ctx, req.Channel, textMessage(fmt.Sprintf(":sunny: %s lifted the freeze: drills and restores may start again.", user(req.User))), PostOptions{})
		}
	case VerbUnlock:
		return b.unlock(qctx, req, cmd.App)
	case VerbSchedule:
		e := schedule.Entry{App: cmd.App, Spec: cmd.Spec, Mode: cmd.Mode, Channel: cmd.Channel, CreatedBy: req.User, CreatedAt: b.now()}
		if e.Channel == "" {
			e.Channel = req.Channel
		}
		next, err := e.NextRun()
		if err != nil {
			return errorMessage(err), nil
		}
		if err := st.SaveSchedule(qctx, e); err != nil {
			return unreachable(err)
		}
		l.Info("schedule saved", "app", e.App, "spec", e.Spec, "mode", string(e.Mode), "channel", e.Channel)
		extra := ""
		if e.Mode == drill.ModeFull {
			extra = " Full mode promotes a restored copy: each run waits for someone to confirm every step in the thread, and undoes itself if nobody does."
		}
		return textMessage(fmt.Sprintf("Scheduled a %s drill of %s %s, in <#%s>; next run %s.%s", e.Mode, code(e.App), code(e.Spec), Escape(e.Channel),
			slackTime(next), extra)), nil
	case VerbUnschedule:
		ok, err := st.DeleteSchedule(qctx, cmd.App, req.User)
		if err != nil {
			return unreachable(err)
		}
		if !ok {
			return textMessage(fmt.Sprintf("%s has no schedule.", code(cmd.App))), nil
		}
		l.Info("schedule removed", "app", cmd.App)
		return textMessage(fmt.Sprintf("Removed the schedule of %s.", code(cmd.App))), nil
	case VerbSchedules:
		all, err := st.Schedules(qctx)
		if err != nil {
			return unreachable(err)
		}
		var list []schedule.Entry // only this bot's apps (DRILL_APPS)
		for _, e := range all {
			if b.cfg.Access.appAllowed(e.App) {
				list = append(list, e)
			}
		}
		return schedulesMessage(list), nil
	}
	return errorMessage(drill.Errorf(drill.EINTERNAL, "unknown verb %s", cmd.Verb)), nil
}

func schedulesMessage(list []schedule.Entry) Message {
	if len(list) == 0 {
		return textMessage(fmt.Sprintf("No schedules. Add one with `%s schedule APP weekly`.", SlashCommand))
	}
	var sb strings.Builder
	sb.WriteString("*Schedules* (UTC)\n")
	for _, e := range list {
		next := "?"
		if n, err := e.NextRun(); err == nil {
			next = n.UTC().Format("2006-01-02 15:04")
		}
		last := "never"
		if !e.LastRun.IsZero() {
			last = e.LastRun.UTC().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(&sb, "• %s %s %s in <#%s> by %s: next %s, last %s\n", code(e.App), code(e.Spec), e.Mode, Escape(e.Channel), user(e.CreatedBy), next, last)
	}
	return longTextMessage(sb.String())
}

// unlock names a live holder of app, or resumes a dead one now.
func (b *Bot) unlock(ctx context.Context, req Request, app string) (Message, Later) {
	st := b.cfg.Store
	running, err := st.RunningDrills(ctx)
	if err != nil {
		return textMessage(":warning: I cannot reach my state database now; nothing changed."), nil
	}
	var dead []drill.DrillRecord
	for _, r := range running {
		if r.App != app {
			continue
		}
		alive, err := st.DrillAlive(ctx, r.DrillID)
		if err != nil {
			return textMessage(":warning: I cannot reach my state database now; nothing changed."), nil
		}
		if alive && !r.ParkedUntil.IsZero() {
			_ = st.Audit(ctx, req.User, "unlock_refused", app, r.DrillID, "the drill waits for a confirmation")
			return textMessage(fmt.Sprintf(":no_entry: %s is held by drill %s (%s) of %s, waiting for a confirmation until %s: it is not stuck. Confirm it in its thread, or `%s cancel %s`.",
				code(app), code(r.DrillID), r.Mode, user(r.Requester), slackTime(r.ParkedUntil), SlashCommand, r.DrillID)), nil
		}
		if alive {
			_ = st.Audit(ctx, req.User, "unlock_refused", app, r.DrillID, "the drill's process is alive")
			return textMessage(fmt.Sprintf(":no_entry: %s is held by drill %s (%s) of %s since %s, and its process is alive: it is not stuck. Wait for it, or `%s cancel %s` where it runs.",
				code(app), code(r.DrillID), r.Mode, user(r.Requester), slackTime(r.StartedAt), SlashCommand, r.DrillID)), nil
		}
		dead = append(dead, r)
	}
	if len(dead) == 0 {
		return textMessage(fmt.Sprintf("%s is not held by any drill.", code(app))), nil
	}
	_ = st.Audit(ctx, req.User, "unlock", app, dead[0].DrillID, "the drill's process died: resuming it")
	b.cfg.Logger.Warn("unlock: resuming a dead drill", "drill", dead[0].DrillID, "app", app, "by", req.User)
	return textMessage(fmt.Sprintf("Drill %s of %s was left by a process that died at its step; undoing what it left now. I will say what I did.", code(dead[0].DrillID), code(app))), func(ctx context.Context) {
		reps, err := b.Resume(ctx)
		if err != nil {
			b.reply.respond(ctx, req.ResponseURL, errorMessage(err))
			return
		}
		for _, rep := range reps {
			if rep.App == app {
				b.reply.respond(ctx, req.ResponseURL, resumedMessage(rep, nil))
				return
			}
		}
		b.reply.respond(ctx, req.ResponseURL, textMessage(fmt.Sprintf("%s was freed by someone else in the meantime (or its drill belongs to another provider).", code(app))))
	}
}

// storeStatus lists the running drills of every process.
// parkedStatus says what parked drill r waits for, with a link to the
// prompt when this process knows the workspace's address.
func (b *Bot) parkedStatus(ctx context.Context, r drill.DrillRecord) string {
	w := waitView{Action: "a step", Until: r.ParkedUntil}
	if p, err := b.cfg.Pending.Get(ctx, r.ParkedTicket); err == nil {
		w.Action, w.Link = p.Action, b.messageLink(ctx, p.Channel, p.PromptTS, p.ThreadTS, false)
	}
	return w.text()
}

func (b *Bot) storeStatus(ctx context.Context, id string) Message {
	st := b.cfg.Store
	ctx, cancel := context.WithTimeout(ctx, stateCheckTimeout)
	defer cancel()
	if id != "" {
		if d, ok := b.reg.get(id); ok && b.cfg.Access.appAllowed(d.App) {
			return textMessage(fmt.Sprintf("Drill %s of %s (%s %s) by %s since %s: %s", code(d.ID), code(d.App), d.Verb, d.Mode, user(d.Requester),
				slackTime(d.Started), d.statusText()))
		}
		rep, err := st.Report(ctx, id)
		if err == nil && !b.cfg.Access.appAllowed(rep.App) {
			// A drill of an app outside DRILL_APPS is none of this bot's
			// business: answer as for a drill that does not exist.
			err = drill.Errorf(drill.ENOTFOUND, "there is no drill %s in the state database", id)
		}
		if err != nil {
			return errorMessage(err)
		}
		state := "running"
		if rep.Result != "" {
			state = strings.ToUpper(string(rep.Result))
		} else if n := len(rep.Steps); n > 0 {
			state = "running, last step " + rep.Steps[n-1].Name
		}
		return textMessage(fmt.Sprintf("Drill %s of %s (%s) by %s since %s: %s", code(rep.DrillID), code(rep.App), rep.Mode, user(rep.Requester),
			slackTime(rep.StartedAt), Escape(state)))
	}
	var sb strings.Builder
	local := map[string]bool{}
	for _, d := range b.reg.running() {
		local[d.ID] = true
		if !b.cfg.Access.appAllowed(d.App) {
			continue
		}
		fmt.Fprintf(&sb, "• %s %s of %s by %s since %s: %s\n", code(d.ID), d.Verb, code(d.App), user(d.Requester), slackTime(d.Started), d.statusText())
	}
	running, err := st.RunningDrills(ctx)
	if err != nil {
		sb.WriteString("_(the state database could not be read: drills of other processes are not listed)_\n")
	}
	for _, r := range running {
		if local[r.DrillID] || !b.cfg.Access.appAllowed(r.App) {
			continue
		}
		where := "in another process"
		if !r.ParkedUntil.IsZero() {
			where = b.parkedStatus(ctx, r) + " (no process holds it meanwhile)"
		} else if alive, err := st.DrillAlive(ctx, r.DrillID); err == nil && !alive {
			where = fmt.Sprintf("*its process died*: `%s unlock %s`", SlashCommand, r.App)
		}
		fmt.Fprintf(&sb, "• %s %s of %s by %s since %s: %s\n", code(r.DrillID), r.Mode, code(r.App), user(r.Requester), slackTime(r.StartedAt), where)
	}
	if sb.Len() == 0 {
		return textMessage("No drill is running.")
	}
	return textMessage("*Running drills*\n" + sb.String())
}
