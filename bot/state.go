package bot

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/schedule"
)

// StateStore is the state database as the bot uses it: the journal of every
// drill (from every bot process and the terminal), the freeze, the audit log
// and the schedules. *pgstate.Store implements it. Without one (nil) the bot
// keeps drills in memory only, as the console does.
type StateStore interface {
	drill.ResumeJournal
	drill.History
	// Report returns one drill's report (steps only while it runs).
	Report(ctx context.Context, drillID string) (*drill.Report, error)
	// RunningDrills returns the unfinished drills of every owner.
	RunningDrills(ctx context.Context) ([]drill.DrillRecord, error)
	// DrillAlive tells whether the drill's owning process is alive.
	DrillAlive(ctx context.Context, drillID string) (bool, error)
	// RequestCancel asks the process running drillID to cancel it.
	RequestCancel(ctx context.Context, drillID, by string) (bool, error)
	Frozen(ctx context.Context) (frozen bool, by, reason string, at time.Time, err error)
	SetFreeze(ctx context.Context, frozen bool, by, reason string) error
	Audit(ctx context.Context, actor, action, app, drillID, detail string) error
	SaveSchedule(ctx context.Context, e schedule.Entry) error
	DeleteSchedule(ctx context.Context, app, by string) (bool, error)
	schedule.Store
	Ping(ctx context.Context) error
	// PurgePending deletes the confirmations answered or expired long ago
	// (pgstate.PendingRetention).
	PurgePending(ctx context.Context) (int64, error)
}

// Defaults of the state-related Config fields.
const (
	DefaultTickInterval = time.Minute
	DefaultHealthGrace  = 2 * time.Minute
	// stateCheckTimeout bounds the state database checks made before an
	// ack, which Slack wants within 3 s.
	stateCheckTimeout = 1500 * time.Millisecond
)

type loggerKey struct{}

// withLogger returns ctx carrying l, so that what a drill's work logs, down
// to a failed post in its thread, carries the drill's id.
func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

func loggerFrom(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}

// frozenMessage is the freeze sentence.
func frozenMessage(by, reason string, at time.Time) Message {
	return textMessage(fmt.Sprintf(":ice_cube: Drills are frozen since %s by %s: %s. No drill, restore or capture starts until `%s unfreeze`, except an emergency `restore … --force`.",
		slackTime(at), user(by), EscapeKeepLinks(reason), SlashCommand))
}

// refuse checks the state database before a drill, restore or capture
// starts: the freeze, and a drill of another process holding the app. It
// returns the refusal to answer with, if any. The journal's app lock is what
// guarantees one drill per app; this only says so before the ack.
func (b *Bot) refuse(ctx context.Context, cmd Command) (Message, bool) {
	st := b.cfg.Store
	if st == nil {
		return Message{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, stateCheckTimeout)
	defer cancel()
	frozen, by, reason, at, err := st.Frozen(ctx)
	if err != nil {
		b.cfg.Logger.Warn("cannot read the freeze", "err", b.cfg.Redactor.Redact(err.Error()))
		return textMessage(":warning: I cannot reach my state database, so nothing starts now. Try again in a minute."), true
	}
	if frozen && !(cmd.Verb == VerbRestore && cmd.Force) {
		return frozenMessage(by, reason, at), true
	}
	running, err := st.RunningDrills(ctx)
	if err != nil {
		return textMessage(":warning: I cannot reach my state database, so nothing starts now. Try again in a minute."), true
	}
	for _, r := range running {
		if r.App != cmd.App {
			continue
		}
		alive, err := st.DrillAlive(ctx, r.DrillID)
		if err == nil && !alive {
			return textMessage(fmt.Sprintf(":no_entry: %s is held by drill %s of %s since %s, whose process died. `%s unlock %s` undoes what it left and frees the app.",
				code(r.App), code(r.DrillID), user(r.Requester), slackTime(r.StartedAt), SlashCommand, r.App)), true
		}
		if !r.ParkedUntil.IsZero() {
			return textMessage(fmt.Sprintf(":no_entry: %s is held by drill %s (%s) of %s since %s, waiting for a confirmation until %s. Confirm it in its thread, or `%s cancel %s`.",
				code(r.App), code(r.DrillID), r.Mode, user(r.Requester), slackTime(r.StartedAt), slackTime(r.ParkedUntil), SlashCommand, r.DrillID)), true
		}
		return textMessage(fmt.Sprintf(":no_entry: %s is held by drill %s (%s) of %s since %s. Wait for it, or cancel it where it runs.",
			code(r.App), code(r.DrillID), r.Mode, user(r.Requester), slackTime(r.StartedAt))), true
	}
	return Message{}, false
}

// recordingJournal remembers the records of the drills it hands over, so
// that what a resume did can be posted in each drill's own thread.
type recordingJournal struct {
	drill.ResumeJournal
	mu   sync.Mutex
	recs map[string]drill.DrillRecord
}

func (j *recordingJournal) Abandoned(ctx context.Context) ([]drill.Abandoned, error) {
	list, err := j.ResumeJournal.Abandoned(ctx)
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, a := range list {
		j.recs[a.Record.DrillID] = a.Record
	}
	return list, err
}

func (j *recordingJournal) record(id string) drill.DrillRecord {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.recs[id]
}

// failureSink keeps the undo failures of resumed drills, by drill.
type failureSink struct {
	mu       sync.Mutex
	failures map[string][]string
}

func (s *failureSink) Event(e drill.Event) {
	if e.Kind != drill.StepUndoFailed {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[e.DrillID] = append(s.failures[e.DrillID], e.Message)
}

func (s *failureSink) of(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failures[id]
}

// Resume undoes every drill a dead process left unfinished (on this bot's
// provider) and posts what it did in each drill's thread, or in the
// incident channel for drills that had none. A live drill is never touched.
// It runs when the bot starts, on every tick, and for unlock.
func (b *Bot) Resume(ctx context.Context) ([]*drill.Report, error) {
	if b.cfg.Store == nil {
		return nil, nil
	}
	b.resumeMu.Lock()
	defer b.resumeMu.Unlock()
	j := &recordingJournal{ResumeJournal: b.cfg.Store, recs: map[string]drill.DrillRecord{}}
	sink := &failureSink{failures: map[string][]string{}}
	reps, err := b.cfg.Engine.Resume(ctx, j, sink)
	for _, rep := range reps {
		rec := j.record(rep.DrillID)
		l := b.cfg.Logger.With("drill", rep.DrillID, "app", rep.App)
		l.Warn("resumed a drill left by a dead process", "undone", strings.Join(rep.Undone, ","), "undo_failed", strings.Join(rep.UndoFailed, ","))
		// The drill is over: its prompts left in Slack must not be
		// confirmable any more.
		if ids, cerr := b.cfg.Pending.CancelDrill(ctx, rep.DrillID, "", b.now()); cerr != nil {
			l.Warn("cannot cancel the confirmations of a resumed drill", "err", b.cfg.Redactor.Redact(cerr.Error()))
		} else if len(ids) > 0 {
			l.Info("cancelled the pending confirmations of a resumed drill", "n", len(ids))
		}
		if b.cfg.Queue != nil {
			if serr := b.cfg.Queue.Settle(ctx, rep.DrillID, ""); serr != nil {
				l.Warn("cannot close the dead process's jobs of a resumed drill", "err", b.cfg.Redactor.Redact(serr.Error()))
			}
		}
		m := resumedMessage(rep, sink.of(rep.DrillID))
		channel, thread := rec.Channel, rec.ThreadTS
		if channel == "" {
			channel, thread = b.cfg.IncidentChannel, ""
		}
		if channel == "" {
			continue
		}
		if _, perr := b.reply.post(withLogger(ctx, l), channel, m, PostOptions{ThreadTS: thread, Broadcast: thread != ""}); perr != nil && thread != "" {
			_, _ = b.reply.post(withLogger(ctx, l), channel, m, PostOptions{})
		}
	}
	if err != nil {
		return reps, fmt.Errorf("resume the drills of dead processes: %w", err)
	}
	return reps, nil
}

// resumedMessage says what resuming a dead drill did.
func resumedMessage(rep *drill.Report, failures []string) Message {
	last := "its start"
	if n := len(rep.Steps); n > 0 {
		last = rep.Steps[n-1].Name
	}
	var sb strings.Builder
	icon := ":recycle:"
	if len(rep.UndoFailed) > 0 {
		icon = ":rotating_light:"
	}
	fmt.Fprintf(&sb, "%s The process running drill %s of %s (%s, asked by %s) died at step %s. ", icon, code(rep.DrillID), code(rep.App), rep.Mode,
		user(rep.Requester), code(last))
	if len(rep.Undone) == 0 && len(rep.UndoFailed) == 0 {
		sb.WriteString("It had changed nothing that needed undoing.")
	} else if len(rep.Undone) > 0 {
		sb.WriteString("Undone: " + codeList(rep.Undone) + ".")
	}
	if len(rep.UndoFailed) > 0 {
		fmt.Fprintf(&sb, " Undoing %s FAILED: act by hand.", codeList(rep.UndoFailed))
		for _, f := range failures {
			sb.WriteString("\n• " + Escape(f))
		}
	} else {
		sb.WriteString(" Nothing it did is left behind.")
	}
	return textMessage(sb.String())
}

// Background runs what the bot does on its own until ctx ends: at once and
// then every TickInterval, Tick.
func (b *Bot) Background(ctx context.Context) {
	b.Tick(ctx, b.now())
	t := time.NewTicker(b.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.Tick(ctx, b.now())
		}
	}
}

// Tick is one round of the bot's own work at now: resume drills dead
// processes left, start the scheduled drills that are due (claimed once
// across processes), and report the health of the socket and the state
// database. Tests call it with their own clock.
func (b *Bot) Tick(ctx context.Context, now time.Time) {
	if b.cfg.Store == nil {
		return
	}
	stateErr := b.cfg.Store.Ping(ctx)
	b.checkHealth(ctx, now, stateErr)
	if stateErr != nil {
		return
	}
	if _, err := b.Resume(ctx); err != nil {
		b.cfg.Logger.Error("resume failed", "err", b.cfg.Redactor.Redact(err.Error()))
	}
	if b.cfg.Queue != nil {
		b.repostPrompts(ctx)
	}
	if n, err := b.cfg.Store.PurgePending(ctx); err != nil {
		b.cfg.Logger.Warn("cannot purge old confirmations", "err", b.cfg.Redactor.Redact(err.Error()))
	} else if n > 0 {
		b.cfg.Logger.Info("purged old confirmations", "n", n)
	}
	b.runSchedules(ctx, now)
}

// runSchedules starts the scheduled drills due at now.
func (b *Bot) runSchedules(ctx context.Context, now time.Time) {
	due, err := schedule.Due(ctx, b.cfg.Store, now)
	if err != nil {
		b.cfg.Logger.Error("cannot read the schedules", "err", b.cfg.Redactor.Redact(err.Error()))
	}
	for _, e := range due {
		b.startScheduled(ctx, e)
	}
}

// startScheduled starts one scheduled drill in its channel, as its
// creator's: the creator is the requester, so the two-person rule holds for
// a full-mode drill like any other, and nothing confirms for a person. The
// access rules are checked again now, since they may have changed since the
// schedule was saved.
func (b *Bot) startScheduled(ctx context.Context, e schedule.Entry) {
	l := b.cfg.Logger.With("app", e.App, "schedule", e.Spec, "created_by", e.CreatedBy)
	req := Request{Kind: KindCommand, User: e.CreatedBy, Channel: e.Channel, Scheduled: true}
	cmd := Command{Verb: VerbRun, App: e.App, Mode: e.Mode, Backup: drill.BackupRef{Kind: drill.BackupFresh}}
	if cmd.Mode == "" {
		cmd.Mode = drill.ModeVerify
	}
	say := func(m Message) {
		m.Text = fmt.Sprintf("Scheduled %s drill of %s (%s, scheduled by %s) did not start: ", cmd.Mode, code(e.App), code(e.Spec), user(e.CreatedBy)) + m.Text
		m.Blocks = sections(m.Text)
		where := e.Channel
		if !b.cfg.Access.channelAllowed(where) && b.cfg.IncidentChannel != "" {
			where = b.cfg.IncidentChannel
		}
		_, _ = b.reply.post(withLogger(ctx, l), where, m, PostOptions{})
	}
	if m, skip := b.scheduleAccess(ctx, e); skip {
		l.Warn("scheduled drill skipped", "why", m.Text)
		say(m)
		return
	}
	if m, refused := b.refuse(ctx, cmd); refused {
		l.Warn("scheduled drill refused", "why", m.Text)
		say(m)
		return
	}
	m, later := b.startDrill(req, cmd)
	if later == nil {
		say(m)
		return
	}
	l.Info("scheduled drill starting")
	b.Go(func() { later(ctx) })
}

// scheduleAccess checks, at fire time, that schedule e may still run: its
// app and channel are still allowed and its creator may still run drills.
// It returns why not, when it may not.
func (b *Bot) scheduleAccess(ctx context.Context, e schedule.Entry) (Message, bool) {
	a := b.cfg.Access
	switch {
	case !a.channelAllowed(e.Channel):
		return textMessage(fmt.Sprintf("restore-drill no longer works in <#%s>. Skipped; `%s unschedule %s` removes the schedule.", Escape(e.Channel), SlashCommand, e.App)), true
	case !a.appAllowed(e.App):
		return textMessage(fmt.Sprintf("%s is no longer an app this bot may touch. Skipped.", code(e.App))), true
	case e.CreatedBy == "":
		return textMessage("the schedule does not say who created it, so nobody answers for it. Skipped: schedule it again."), true
	}
	ok, err := b.auth.allowed(ctx, e.CreatedBy)
	if err != nil {
		b.cfg.Logger.Warn("authorization check failed", "user", e.CreatedBy, "err", b.cfg.Redactor.Redact(err.Error()))
		return textMessage(fmt.Sprintf("I cannot check the membership of %s, who created the schedule, in the admin group right now. Skipped this run.", user(e.CreatedBy))), true
	}
	if !ok {
		return textMessage(fmt.Sprintf("%s, who created the schedule, is no longer allowed to run drills. Skipped: someone allowed must schedule it again.", user(e.CreatedBy))), true
	}
	return Message{}, false
}

// health tracks how long the socket and the state database have been
// unreachable, so that a long outage is reported once, and its end too.
type health struct {
	mu                            sync.Mutex
	socketDownSince, stateDownAt  time.Time
	socketReported, stateReported bool
	stateErr                      string
}

// SocketDown records that the Slack socket is down since at (the first
// call of an outage counts).
func (b *Bot) SocketDown(at time.Time) {
	b.health.mu.Lock()
	defer b.health.mu.Unlock()
	if b.health.socketDownSince.IsZero() {
		b.health.socketDownSince = at
	}
}

// SocketUp records that the Slack socket is connected; an outage already
// reported is reported over.
func (b *Bot) SocketUp(ctx context.Context, at time.Time) {
	b.health.mu.Lock()
	since, reported := b.health.socketDownSince, b.health.socketReported
	b.health.socketDownSince, b.health.socketReported = time.Time{}, false
	b.health.mu.Unlock()
	if reported {
		msg := fmt.Sprintf(":white_check_mark: restore-drill is connected to Slack again, after %s without its socket.", drill.RoundDuration(at.Sub(since)))
		b.cfg.Logger.Info("slack socket back", "down_for", at.Sub(since).String())
		b.alert(ctx, msg)
	}
}

func (b *Bot) checkHealth(ctx context.Context, now time.Time, stateErr error) {
	grace := b.cfg.HealthGrace
	var msgs []string
	b.health.mu.Lock()
	h := &b.health
	if !h.socketDownSince.IsZero() && !h.socketReported && now.Sub(h.socketDownSince) >= grace {
		h.socketReported = true
		b.cfg.Logger.Error("slack socket lost", "down_since", h.socketDownSince.UTC().Format(time.RFC3339))
		msgs = append(msgs, fmt.Sprintf(":rotating_light: restore-drill has lost its Slack socket since %s: commands and clicks are not reaching it. Drills keep running; it keeps reconnecting.",
			slackTime(h.socketDownSince)))
	}
	switch {
	case stateErr != nil && h.stateDownAt.IsZero():
		h.stateDownAt, h.stateErr = now, b.cfg.Redactor.Redact(stateErr.Error())
		b.cfg.Logger.Warn("state database unreachable", "err", h.stateErr)
	case stateErr != nil && !h.stateReported && now.Sub(h.stateDownAt) >= grace:
		h.stateReported = true
		b.cfg.Logger.Error("state database unreachable", "down_since", h.stateDownAt.UTC().Format(time.RFC3339), "err", h.stateErr)
		msgs = append(msgs, fmt.Sprintf(":rotating_light: restore-drill cannot reach its state database since %s: no drill can start, and dead drills cannot be resumed, until it is back.",
			slackTime(h.stateDownAt)))
	case stateErr == nil && !h.stateDownAt.IsZero():
		if h.stateReported {
			b.cfg.Logger.Info("state database back", "down_for", now.Sub(h.stateDownAt).String())
			msgs = append(msgs, fmt.Sprintf(":white_check_mark: restore-drill reaches its state database again, after %s.", drill.RoundDuration(now.Sub(h.stateDownAt))))
		}
		h.stateDownAt, h.stateReported = time.Time{}, false
	}
	b.health.mu.Unlock()
	for _, m := range msgs {
		b.alert(ctx, m)
	}
}

// alert posts to the incident channel, or else to the channels of the
// drills running here.
func (b *Bot) alert(ctx context.Context, text string) {
	channels := map[string]bool{}
	if b.cfg.IncidentChannel != "" {
		channels[b.cfg.IncidentChannel] = true
	} else {
		for _, d := range b.reg.running() {
			if d.Channel != "" {
				channels[d.Channel] = true
			}
		}
	}
	for ch := range channels {
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, _ = b.reply.post(pctx, ch, textMessage(text), PostOptions{})
		cancel()
	}
}
