package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/restore-drill/restore-drill/drill"
)

// Defaults of Config.
const (
	DefaultConfirmTimeout = 10 * time.Minute
	DefaultUpdateInterval = 3 * time.Second
	DefaultGroupCacheTTL  = time.Minute
)

// groupMaxAgeFactor: a cached admin group list older than this many TTLs
// is not trusted (GroupCacheMaxAge's default).
const groupMaxAgeFactor = 3

// Config configures a Bot.
type Config struct {
	Engine    Engine
	Transport Transport
	Access    Access
	// TwoPerson requires the confirmer to be someone other than the
	// requester (DRILL_TWO_PERSON).
	TwoPerson bool
	// ConfirmTimeout is how long a confirmation waits; 10 minutes when zero.
	ConfirmTimeout time.Duration
	// UpdateInterval is the least time between two edits of a drill's
	// parent message; 3 s when zero.
	UpdateInterval time.Duration
	// GroupCacheTTL is how long the admin group's members are cached.
	GroupCacheTTL time.Duration
	// GroupCacheMaxAge is how long a cached member list is still trusted
	// while it cannot be refreshed; past it destructive commands and
	// confirmations are refused until the group can be read. 3×TTL when
	// zero.
	GroupCacheMaxAge time.Duration
	// Pending keeps pending confirmations; in memory when nil. With
	// several bot processes it must be shared (botpg.Pending).
	Pending PendingStore
	// Queue, when set, runs drills as durable jobs that any bot process
	// may take (botriver); a drill waiting for a confirmation then parks
	// and holds no worker. It needs Store and a shared Pending.
	Queue Queue
	// Store is the state database: the journal of every drill, the
	// freeze, the audit log and the schedules. Without it the bot keeps
	// drills in memory only (the console).
	Store StateStore
	// IncidentChannel gets health alerts, what resuming a dead drill did
	// when that drill had no thread, and a copy of the parent message and
	// the verdict of every emergency restore started in another channel
	// (DRILL_INCIDENT_CHANNEL).
	IncidentChannel string
	// TickInterval is how often Background resumes dead drills, fires
	// schedules and checks health; a minute when zero.
	TickInterval time.Duration
	// HealthGrace is how long the socket or the state database may be
	// lost before it is reported; 2 minutes when zero.
	HealthGrace time.Duration
	Logger      *slog.Logger
	Redactor    *drill.Redactor
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Bot turns requests into drill calls and drill events into messages. It
// does not know how requests arrive: Listener feeds it from Socket Mode,
// Console from a terminal.
type Bot struct {
	cfg   Config
	reply *replier
	auth  *authorizer
	reg   *registry
	wg    sync.WaitGroup
	// resumeMu keeps one resume at a time in this process.
	resumeMu  sync.Mutex
	health    health
	workspace workspace
}

// New returns a Bot.
func New(cfg Config) *Bot {
	if cfg.ConfirmTimeout <= 0 {
		cfg.ConfirmTimeout = DefaultConfirmTimeout
	}
	if cfg.UpdateInterval <= 0 {
		cfg.UpdateInterval = DefaultUpdateInterval
	}
	if cfg.GroupCacheTTL <= 0 {
		cfg.GroupCacheTTL = DefaultGroupCacheTTL
	}
	if cfg.GroupCacheMaxAge <= 0 {
		cfg.GroupCacheMaxAge = groupMaxAgeFactor * cfg.GroupCacheTTL
	}
	if cfg.Pending == nil {
		cfg.Pending = NewMemoryPending()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Redactor == nil {
		cfg.Redactor = drill.NewRedactor()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.HealthGrace <= 0 {
		cfg.HealthGrace = DefaultHealthGrace
	}
	b := &Bot{cfg: cfg, reg: newRegistry()}
	b.reply = &replier{t: cfg.Transport, redactor: cfg.Redactor, logger: cfg.Logger}
	b.auth = &authorizer{access: cfg.Access, members: cfg.Transport.GroupMembers, ttl: cfg.GroupCacheTTL,
		maxAge: cfg.GroupCacheMaxAge, now: cfg.Now}
	return b
}

func (b *Bot) now() time.Time                { return b.cfg.Now() }
func (b *Bot) updateInterval() time.Duration { return b.cfg.UpdateInterval }

// Prime logs what the bot allows, warms the admin group cache and learns
// the workspace's address (for links to prompts in status answers).
func (b *Bot) Prime(ctx context.Context) {
	b.workspaceURL(ctx, true)
	b.cfg.Logger.Info("restore-drill bot access", "allows", b.cfg.Access.Describe(), "two_person", b.cfg.TwoPerson,
		"confirm_timeout", b.cfg.ConfirmTimeout.String())
	if b.cfg.Access.AdminGroup != "" {
		if _, err := b.auth.refresh(ctx); err != nil {
			b.cfg.Logger.Warn("cannot list the admin group yet", "err", err)
		}
	}
}

// Go runs fn in a goroutine Wait waits for.
func (b *Bot) Go(fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn()
	}()
}

// Wait waits for every drill and follow-up the bot started.
func (b *Bot) Wait() { b.wg.Wait() }

// Later is slow work to run after the ack.
type Later func(ctx context.Context)

// HandleCommand answers a /restore-drill command. It returns at once with
// the ephemeral reply to ack with, and the slow work (nil when none) to run
// after the ack.
func (b *Bot) HandleCommand(ctx context.Context, req Request) (Message, Later) {
	a := b.cfg.Access
	if !a.channelAllowed(req.Channel) {
		m := ":no_entry: restore-drill does not work in this channel."
		if b.mayReadAccess(ctx, req.User) {
			m += fmt.Sprintf(" Use one of: %s.", channelList(a.AllowedChannels))
		}
		return textMessage(m), nil
	}
	cmd, err := ParseCommand(req.Text)
	if err != nil {
		var ue *UsageError
		if errors.As(err, &ue) {
			return usageMessage(ue), nil
		}
		return errorMessage(err), nil
	}
	if cmd.App != "" {
		if !a.appAllowed(cmd.App) {
			m := fmt.Sprintf(":no_entry: %s is not an app this bot may touch.", code(cmd.App))
			if b.mayReadAccess(ctx, req.User) {
				m += fmt.Sprintf(" It may touch: %s.", codeList(a.Apps))
			}
			return textMessage(m), nil
		}
		if err := b.cfg.Engine.CheckAppName(cmd.App); err != nil {
			d, _ := Lookup(cmd.Verb)
			return textMessage(fmt.Sprintf(":warning: %s\nUsage: `%s %s`", Escape(drill.ErrorMessage(err)), SlashCommand, d.Usage)), nil
		}
	}
	if cmd.Destructive() {
		ok, err := b.auth.allowed(ctx, req.User)
		if err != nil {
			b.cfg.Logger.Warn("authorization check failed", "user", req.User, "err", err)
			return textMessage(":warning: I cannot check your membership in the admin group right now: try again in a minute."), nil
		}
		if !ok {
			return textMessage(fmt.Sprintf(":no_entry: %s, you are not allowed to `%s`: ask someone in DRILL_ALLOWED_USERS or the admin user group.", user(req.User), cmd.Verb)), nil
		}
	}
	switch cmd.Verb {
	case VerbHelp:
		return textMessage(HelpText()), nil
	case VerbStatus:
		if b.cfg.Store != nil {
			return b.storeStatus(ctx, cmd.DrillID), nil
		}
		return b.statusMessage(cmd.DrillID), nil
	case VerbHistory:
		if b.cfg.Store != nil {
			return textMessage(fmt.Sprintf("Reading the drills of %s…", code(cmd.App))), func(ctx context.Context) { b.postHistory(ctx, req, cmd.App) }
		}
		return b.historyMessage(cmd.App), nil
	case VerbFreeze, VerbUnfreeze, VerbUnlock, VerbSchedule, VerbSchedules, VerbUnschedule:
		if cmd.Channel != "" && !a.channelAllowed(cmd.Channel) {
			m := fmt.Sprintf(":no_entry: restore-drill does not work in <#%s>.", Escape(cmd.Channel))
			if b.mayReadAccess(ctx, req.User) {
				m += fmt.Sprintf(" Use one of: %s.", channelList(a.AllowedChannels))
			}
			return textMessage(m), nil
		}
		return b.handleAdmin(ctx, req, cmd)
	case VerbCancel:
		return b.cancelDrill(ctx, cmd.DrillID, req.User), nil
	case VerbBackups:
		return textMessage(fmt.Sprintf("Listing the backups of %s…", code(cmd.App))), func(ctx context.Context) {
			l, err := b.cfg.Engine.Backups(ctx, cmd.App)
			if err != nil {
				b.reply.respond(ctx, req.ResponseURL, errorMessage(err))
				return
			}
			b.reply.respond(ctx, req.ResponseURL, backupsMessage(l, b.now()))
		}
	case VerbPlan:
		return textMessage(fmt.Sprintf("Planning a %s drill of %s…", cmd.Mode, code(cmd.App))), func(ctx context.Context) {
			p, err := b.cfg.Engine.Plan(ctx, drill.Options{App: cmd.App, Mode: cmd.Mode, Backup: cmd.Backup})
			if err != nil {
				b.reply.respond(ctx, req.ResponseURL, errorMessage(err))
				return
			}
			b.reply.respond(ctx, req.ResponseURL, planMessage(p))
		}
	}
	if m, refused := b.refuse(ctx, cmd); refused {
		return m, nil
	}
	if cmd.Verb == VerbCapture {
		return b.startCapture(req, cmd)
	}
	return b.startDrill(req, cmd)
}

// cancelDrill cancels drill id on behalf of by, wherever it runs or
// waits, and says so (an ephemeral answer to by).
func (b *Bot) cancelDrill(ctx context.Context, id, by string) Message {
	if b.cfg.Queue != nil {
		// A queued drill waiting for a confirmation has parked, or is
		// parking: no process runs it, and its continuation undoes it.
		if m, parked := b.cancelParked(ctx, id, by); parked {
			return m
		}
	}
	d, ok := b.reg.cancel(id, by)
	if !ok && b.cfg.Store != nil {
		// Another bot process (or a terminal) runs it: ask it to.
		sctx, cancel := context.WithTimeout(ctx, stateCheckTimeout)
		defer cancel()
		running, err := b.cfg.Store.RequestCancel(sctx, id, by)
		if err != nil {
			return errorMessage(err)
		}
		if running {
			b.cfg.Logger.Info("drill cancel requested", "drill", id, "by", by)
			return textMessage(fmt.Sprintf("Cancel of drill %s requested: the process running it stops within seconds and runs its undo stack; follow it in its thread.", code(id)))
		}
	}
	if !ok {
		return textMessage(fmt.Sprintf(":warning: Drill %s is not running: see `%s status`.", code(id), SlashCommand))
	}
	b.cfg.Logger.Info("drill cancelled", "drill", d.ID, "by", by)
	return textMessage(fmt.Sprintf("Cancelling drill %s of %s: its undo stack runs now; follow it in the thread.", code(d.ID), code(d.App)))
}

// cancelClick is a click on a parent's Cancel button: only someone allowed
// to run drills may cancel one.
func (b *Bot) cancelClick(ctx context.Context, u, id string) Message {
	ok, err := b.auth.allowed(ctx, u)
	if err != nil {
		b.cfg.Logger.Warn("authorization check failed", "user", u, "err", err)
		return textMessage(":warning: I cannot check your membership in the admin group right now: try again in a minute.")
	}
	if !ok {
		return textMessage(fmt.Sprintf(":no_entry: %s, you are not allowed to cancel drills: ask someone in DRILL_ALLOWED_USERS or the admin user group.", user(u)))
	}
	return b.cancelDrill(ctx, id, u)
}

func channelList(ids []string) string {
	var out []string
	for _, id := range ids {
		out = append(out, "<#"+Escape(id)+">")
	}
	return strings.Join(out, ", ")
}

func codeList(l []string) string {
	var out []string
	for _, s := range l {
		out = append(out, code(s))
	}
	return strings.Join(out, ", ")
}

func (b *Bot) busyMessage(h drillRecord) Message {
	return textMessage(fmt.Sprintf(":no_entry: %s is busy: drill %s (%s) started by %s at %s is %s. Wait for it, or `%s cancel %s`.",
		code(h.App), code(h.ID), h.Verb, user(h.Requester), slackTime(h.Started), h.statusText(), SlashCommand, h.ID))
}

// startDrill reserves the app for a run or restore and starts it after the
// ack: here, or, with a Queue, in whichever bot process takes the job.
func (b *Bot) startDrill(req Request, cmd Command) (Message, Later) {
	rec := &drillRecord{ID: drill.NewDrillID(), App: cmd.App, Verb: cmd.Verb, Mode: cmd.Mode, Requester: req.User, Channel: req.Channel, Started: b.now()}
	if h, ok := b.reg.reserve(rec); !ok {
		return b.busyMessage(h), nil
	}
	what := fmt.Sprintf("%s drill", cmd.Mode)
	if cmd.Verb == VerbRestore {
		what = fmt.Sprintf("emergency restore of backup %s %s", code(cmd.Backup.String()), intoText(cmd.Into))
	}
	follow := "Follow it in the thread."
	if cmd.Verb == VerbRestore && cmd.Force {
		follow += " --force: it runs even if drills are frozen, and that is logged."
	}
	ack := textMessage(fmt.Sprintf("Starting drill %s: %s of %s. %s", code(rec.ID), what, code(cmd.App), follow))
	j := newJob(req, cmd, rec.ID, rec.Started)
	if b.cfg.Queue == nil {
		return ack, func(ctx context.Context) { b.runDrill(ctx, j) }
	}
	return ack, func(ctx context.Context) {
		// The reservation only answers "busy" in this process until the
		// job is queued; the journal's app lock holds across processes.
		defer b.reg.finish(j.ID, nil, b.now())
		// The thread is opened here, where the command's response_url is:
		// the job never carries it (it lets anyone post in the channel).
		rep, ok := b.openThread(ctx, j)
		if !ok {
			return
		}
		j.ThreadTS, j.IncidentTS = rep.thread(), rep.incidentThread()
		if err := b.cfg.Queue.Enqueue(ctx, j); err != nil {
			b.cfg.Logger.Error("cannot queue a drill", "drill", j.ID, "err", b.cfg.Redactor.Redact(err.Error()))
			m := textMessage(fmt.Sprintf(":warning: Drill %s could not be queued (the state database did not take it), so it did not start and nothing changed. Try again.", code(j.ID)))
			sctx := context.WithoutCancel(ctx)
			b.reply.respond(sctx, req.ResponseURL, m)
			_, _ = b.reply.post(sctx, j.Channel, m, PostOptions{ThreadTS: j.ThreadTS})
		}
	}
}

// openThread posts the parent message of drill j (and its copy in the
// incident channel, for an emergency restore started elsewhere). When the
// bot cannot post in the channel, it tells the requester and returns false:
// the drill does not start.
func (b *Bot) openThread(ctx context.Context, j Job) (*reporter, bool) {
	rep := newReporter(b, j.Channel, j.view())
	if j.Verb == VerbRestore && b.cfg.IncidentChannel != "" && b.cfg.IncidentChannel != j.Channel {
		// The team watches an emergency restore in the incident channel,
		// wherever it was started.
		rep.incident = b.cfg.IncidentChannel
	}
	sctx := context.WithoutCancel(ctx)
	if err := rep.start(sctx); err != nil {
		m := textMessage(fmt.Sprintf(
			":warning: I cannot post in this channel, so drill %s did not start and nothing changed. Invite me with `/invite @restore-drill` and run the command again.", code(j.ID)))
		if !errors.Is(err, ErrChannelNotFound) {
			m = textMessage(fmt.Sprintf(":warning: Slack refused the drill's thread here (%s), so drill %s did not start and nothing changed. Run the command again in a channel I can post in, or once Slack answers again.",
				Escape(slackReason(err)), code(j.ID)))
		}
		b.reply.respond(sctx, j.ResponseURL, m)
		return nil, false
	}
	return rep, true
}

// RunJob runs a drill taken from the queue, in this process. A job whose
// drill the journal already knows (the queue retried it, or put it back at
// a shutdown after the drill began) is left to the journal: a drill whose
// process stopped is undone by the resume of dead drills, never started
// twice.
func (b *Bot) RunJob(ctx context.Context, j Job) error {
	l := b.cfg.Logger.With("drill", j.ID, "app", j.App)
	if _, _, err := j.decode(); err != nil {
		l.Error("dropping a job that is not a drill", "err", err)
		return nil
	}
	if b.cfg.Store != nil {
		if _, err := b.cfg.Store.Report(ctx, j.ID); err == nil {
			l.Warn("drill job handed out again: it ran before, so the journal resumes it")
			return nil
		} else if drill.ErrorCode(err) != drill.ENOTFOUND {
			return err
		}
	}
	rec := &drillRecord{ID: j.ID, App: j.App, Verb: j.Verb, Mode: drill.Mode(j.Mode), Requester: j.Requester, Channel: j.Channel, Started: j.Started}
	if h, ok := b.reg.reserve(rec); !ok {
		_, _ = b.reply.post(ctx, j.Channel, b.busyMessage(h), PostOptions{ThreadTS: j.ThreadTS})
		return nil
	}
	b.runDrill(ctx, j)
	return nil
}

// runDrill runs a reserved drill with its thread and confirmations; a
// queued drill's thread was opened by the process that took the command.
func (b *Bot) runDrill(ctx context.Context, j Job) {
	req, cmd, err := j.decode()
	if err != nil {
		b.cfg.Logger.Error("dropping a drill that cannot run", "drill", j.ID, "err", err)
		b.reg.finish(j.ID, nil, b.now())
		return
	}
	rep := inThread(b, j)
	if j.ThreadTS == "" {
		var ok bool
		if rep, ok = b.openThread(ctx, j); !ok {
			b.reg.finish(j.ID, nil, b.now())
			return
		}
	}
	j.ThreadTS, j.IncidentTS = rep.thread(), rep.incidentThread()
	b.drive(ctx, j, rep, func(ctx context.Context, th Thread) (*drill.Report, error) {
		if cmd.Verb == VerbRestore {
			return b.cfg.Engine.Restore(ctx, drill.RestoreOptions{App: cmd.App, Backup: cmd.Backup, Into: drill.Into(cmd.Into),
				NoSafetyBackup: cmd.NoSafetyBackup, Force: cmd.Force, DrillID: j.ID, Requester: req.User}, th)
		}
		return b.cfg.Engine.Run(ctx, drill.Options{App: cmd.App, Mode: cmd.Mode, Backup: cmd.Backup, Keep: cmd.Keep,
			DrillID: j.ID, Requester: req.User}, th)
	})
}

// drive runs, or continues, drill j with its reporter: it registers the
// drill for status and cancel, gives it a confirmer, and ends its thread
// with the verdict, or with the wait when the drill parks on a
// confirmation.
func (b *Bot) drive(ctx context.Context, j Job, rep *reporter, run func(context.Context, Thread) (*drill.Report, error)) {
	l := b.cfg.Logger.With("drill", j.ID, "app", j.App)
	ctx = withLogger(ctx, l)
	dctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	b.reg.update(j.ID, func(d *drillRecord) { d.cancel, d.ThreadTS = cancel, j.ThreadTS })
	sctx := context.WithoutCancel(ctx)
	b.Go(func() { rep.run(sctx) })
	conf := &confirmer{b: b, channel: j.Channel, rep: rep}
	if b.cfg.Queue != nil {
		conf.job = &j
	}
	report, err := run(dctx, Thread{Confirmer: conf, Sink: rep, Channel: j.Channel, ThreadTS: j.ThreadTS})
	parked, gone := drill.IsParked(err), errors.Is(err, drill.ErrNotParked)
	switch {
	case parked:
		l.Info("drill parked: it waits for a confirmation with no worker held")
		report = nil
	case gone:
		l.Info("continuation found the drill no longer parked on its confirmation")
		report = nil
		rep.end()
	case j.Verb == VerbRestore:
		rep.finish(report)
	}
	if err != nil && !parked && !gone {
		l.Info("drill did not pass", "err", b.cfg.Redactor.Redact(err.Error()))
	}
	if b.cfg.Queue != nil && !parked && !gone {
		// The drill is over: no confirmation of it may stay open (one asked
		// for just as the drill failed to park).
		_, _ = b.cfg.Pending.CancelDrill(sctx, j.ID, "", b.now())
	}
	if errors.Is(err, drill.ErrLocked) || errors.Is(err, drill.ErrFrozen) {
		// Another process took the app (or froze drills) after the ack's
		// check: the thread's verdict says so, and so does the requester's
		// ephemeral answer.
		b.reply.respond(sctx, j.ResponseURL, errorMessage(err))
	}
	rep.wait(sctx)
	b.reg.finish(j.ID, report, b.now())
}

func (b *Bot) startCapture(req Request, cmd Command) (Message, Later) {
	rec := &drillRecord{ID: drill.NewDrillID(), App: cmd.App, Verb: cmd.Verb, Requester: req.User, Channel: req.Channel, Started: b.now()}
	if h, ok := b.reg.reserve(rec); !ok {
		return b.busyMessage(h), nil
	}
	return textMessage(fmt.Sprintf("Capturing a backup of %s…", code(cmd.App))), func(ctx context.Context) {
		bk, err := b.cfg.Engine.Capture(ctx, cmd.App)
		// The app is free again before anyone reads that the backup exists,
		// so a restore of it can start at once.
		b.reg.finish(rec.ID, nil, b.now())
		if err != nil {
			// In the channel, for everyone: the response_url lasts 30 minutes
			// and only the requester sees it.
			m := textMessage(fmt.Sprintf(":x: %s could not capture a backup of %s: %s", user(req.User), code(cmd.App), Escape(drill.ErrorMessage(err))))
			if _, perr := b.reply.post(ctx, req.Channel, m, PostOptions{}); perr != nil {
				b.reply.respond(ctx, req.ResponseURL, m)
			}
			return
		}
		m := captureMessage(req.User, cmd.App, bk)
		if _, perr := b.reply.post(ctx, req.Channel, m, PostOptions{}); perr != nil {
			b.reply.respond(ctx, req.ResponseURL, m)
		}
	}
}

func (b *Bot) statusMessage(id string) Message {
	if id != "" {
		d, ok := b.reg.get(id)
		if !ok || !b.cfg.Access.appAllowed(d.App) {
			return textMessage(fmt.Sprintf("No drill %s in this bot's memory.", code(id)))
		}
		return textMessage(fmt.Sprintf("Drill %s of %s (%s %s) by %s since %s: %s", code(d.ID), code(d.App), d.Verb, d.Mode, user(d.Requester),
			slackTime(d.Started), d.statusText()))
	}
	running := b.reg.running()
	if len(running) == 0 {
		return textMessage("No drill is running.")
	}
	var sb strings.Builder
	sb.WriteString("*Running drills*\n")
	for _, d := range running {
		if !b.cfg.Access.appAllowed(d.App) {
			continue
		}
		fmt.Fprintf(&sb, "• %s %s of %s by %s since %s: %s\n", code(d.ID), d.Verb, code(d.App), user(d.Requester), slackTime(d.Started), d.statusText())
	}
	if sb.Len() == len("*Running drills*\n") {
		return textMessage("No drill is running.")
	}
	return textMessage(sb.String())
}

func (b *Bot) historyMessage(app string) Message {
	h := b.reg.historyOf(app)
	if len(h) == 0 {
		return textMessage(fmt.Sprintf("This bot has not seen a drill of %s finish since it started.", code(app)))
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "*Drills of %s* (newest first)\n", code(app))
	for i := len(h) - 1; i >= 0; i-- {
		d, r := h[i], h[i].Report
		fmt.Fprintf(&sb, "• %s %s %s by %s at %s: *%s*, restore %s, whole %s", code(d.ID), d.Verb, r.Mode, user(d.Requester),
			slackTime(d.Started), r.Result, drill.Seconds(r.RestoreSeconds), drill.Seconds(r.TotalSeconds))
		if r.RPOSeconds != nil {
			fmt.Fprintf(&sb, ", RPO %s", drill.Seconds(*r.RPOSeconds))
		}
		sb.WriteString(", " + drill.Plural(len(r.Tables), "table", "tables"))
		for _, c := range r.Confirmations {
			fmt.Fprintf(&sb, ", %s confirmed by %s", c.Step, user(c.User))
		}
		sb.WriteString("\n")
	}
	return textMessage(sb.String())
}

// HandleClick handles a click on a confirmation button. The click is acked
// with no payload; the returned work opens the modal first (trigger ids
// work once, within 3 s), then fills it in (confirmModal).
func (b *Bot) HandleClick(ctx context.Context, req Request) Later {
	if req.ActionID == actionCancel {
		return func(ctx context.Context) {
			b.reply.ephemeral(ctx, req.Channel, req.User, req.ResponseURL, b.cancelClick(ctx, req.User, req.Value))
		}
	}
	if req.ActionID != actionConfirm {
		return nil
	}
	return func(ctx context.Context) {
		b.confirmModal(ctx, req)
	}
}

// checkConfirmer says why user u may not confirm p, or "". The sentence
// names nobody by mention: it shows in a modal too, whose plain text does
// not render mentions.
func (b *Bot) checkConfirmer(ctx context.Context, u string, p Pending) string {
	switch p.State {
	case StateConfirmed:
		if p.By == u {
			return "You already confirmed this."
		}
		return "Someone else already confirmed this: the drill goes on."
	case StateExpired:
		return "This confirmation has expired."
	case StateCancelled:
		return "This confirmation was cancelled: the drill stopped."
	}
	if !b.now().Before(p.ExpiresAt) {
		return "This confirmation expired: nobody can confirm it now."
	}
	ok, err := b.auth.allowed(ctx, u)
	if err != nil {
		return "I cannot check your membership in the admin group right now: try again."
	}
	if !ok {
		return "You are not allowed to confirm destructive steps: ask someone in DRILL_ALLOWED_USERS or the admin user group."
	}
	if b.cfg.TwoPerson && u == p.Requester {
		return "Two people are required: you asked for this drill, so someone else must confirm it."
	}
	return ""
}

// Submit checks typed against confirmation id and, when right and allowed,
// confirms it (once, whoever else submits at the same time). It returns the
// problem to show under the input, or "".
func (b *Bot) Submit(ctx context.Context, u, id, typed string) string {
	p, err := b.cfg.Pending.Get(ctx, id)
	if err != nil {
		return "This confirmation is not known to this bot (it may have restarted)."
	}
	if p.State == StateConfirmed && p.By == u {
		return "" // a second submission of one's own confirmation just closes
	}
	if problem := b.checkConfirmer(ctx, u, p); problem != "" {
		return problem
	}
	typed = strings.TrimSpace(typed)
	if typed != p.Expect {
		return fmt.Sprintf("Type %s exactly to confirm; you typed %s.", p.Expect, clipRunes(b.cfg.Redactor.Redact(typed), 40))
	}
	got, ok, err := b.cfg.Pending.Resolve(ctx, id, StateConfirmed, u, typed, b.now())
	if err != nil {
		return "This confirmation could not be recorded; try again."
	}
	if !ok {
		if got.State == StateConfirmed && got.By == u {
			return ""
		}
		if problem := b.checkConfirmer(ctx, u, got); problem != "" {
			return problem
		}
		// Still pending, yet not confirmable: the state database's clock
		// says it expired.
		return "This confirmation expired: nobody can confirm it now."
	}
	b.cfg.Logger.Info("confirmed", "drill", p.DrillID, "step", p.Step, "by", u)
	if p.Job != nil && b.cfg.Queue != nil {
		// The drill is parked: a job in any process takes it up. Should
		// the queue refuse, the expiry's continuation still finds it
		// confirmed.
		if err := b.cfg.Queue.Continue(context.WithoutCancel(ctx), Continuation{DrillID: p.DrillID, Ticket: p.ID}, time.Time{}); err != nil {
			b.cfg.Logger.Error("cannot queue the continuation of a confirmed drill: it continues at the confirmation's expiry", "drill", p.DrillID, "err", b.cfg.Redactor.Redact(err.Error()))
		}
	}
	return ""
}

// HandleSubmission answers a modal submission: nil closes the modal, a
// response with errors shows them under the input.
func (b *Bot) HandleSubmission(ctx context.Context, req Request) *slack.ViewSubmissionResponse {
	if req.CallbackID != callbackTyped {
		return nil
	}
	if problem := b.Submit(ctx, req.User, req.PrivateMetadata, req.Values[inputBlockID]); problem != "" {
		// Redact before clipping: a clipped secret may no longer match.
		return slack.NewErrorsViewSubmissionResponse(map[string]string{inputBlockID: clipRunes(b.cfg.Redactor.Redact(problem), 150)})
	}
	return nil
}

// Prompter is implemented by transports that can ask a person directly
// (the console); the confirmer then asks there instead of waiting for a
// button.
type Prompter interface {
	// Prompt asks for the text of p; it returns who typed what.
	Prompt(ctx context.Context, p Pending) (user, typed string, err error)
}

// confirmer is the drill.Confirmer of one drill: it posts the prompt in the
// drill's thread and waits for a submission, expiry or cancellation. A
// queued drill's confirmer (job set) does not wait: the drill parks, and a
// continuation job takes it up when the confirmation is answered or
// expires.
type confirmer struct {
	b       *Bot
	channel string
	rep     *reporter
	job     *Job
}

var _ drill.Confirmer = (*confirmer)(nil)

func (c *confirmer) Confirm(ctx context.Context, req drill.ConfirmRequest) (drill.Confirmation, error) {
	b := c.b
	sctx := context.WithoutCancel(ctx)
	p := Pending{ID: "c" + drill.NewDrillID()[1:], DrillID: req.DrillID, App: req.App, Step: req.Step, Action: req.Action,
		Expect: req.Expect, Requester: req.Requester, Plan: req.Plan, Channel: c.channel, ThreadTS: c.rep.thread(),
		ExpiresAt: b.now().Add(b.cfg.ConfirmTimeout), State: StatePending, Job: c.job}
	if err := b.cfg.Pending.Create(ctx, p); err != nil {
		return drill.Confirmation{}, drill.Wrap(drill.EREFUSED, err, "the confirmation could not be recorded")
	}
	if c.job != nil {
		return c.park(sctx, p)
	}
	ts, err := c.post(sctx, p)
	if err != nil {
		_, _, _ = b.cfg.Pending.Resolve(sctx, p.ID, StateCancelled, "", "", b.now())
		return drill.Confirmation{}, drill.Wrap(drill.EREFUSED, err, "the confirmation prompt could not be posted")
	}
	p.PromptTS = ts
	wctx, wcancel := context.WithDeadline(ctx, p.ExpiresAt)
	defer wcancel()
	if pr, ok := b.cfg.Transport.(Prompter); ok {
		b.Go(func() { c.ask(wctx, pr, p) })
	}
	got, werr := b.cfg.Pending.Wait(wctx, p.ID)
	// expired: the wait ended on the confirmation's deadline, not on the
	// drill's context.
	expired := false
	if werr != nil {
		state := StateExpired
		if ctx.Err() != nil {
			state = StateCancelled
		} else {
			expired = errors.Is(wctx.Err(), context.DeadlineExceeded) || !b.now().Before(p.ExpiresAt)
		}
		var ok bool
		got, ok, _ = b.cfg.Pending.Resolve(sctx, p.ID, state, "", "", b.now())
		if !ok && got.State == "" {
			got.State = state
		}
		if expired && got.State != StateConfirmed {
			// Whoever else resolved it at the deadline (or failed to),
			// the confirmation expired.
			got.State = StateExpired
		}
	}
	got.PromptTS = ts
	b.Go(func() {
		uctx, cancel := context.WithTimeout(sctx, deliveryTimeout)
		defer cancel()
		_ = b.reply.update(uctx, c.channel, ts, promptMessage(got))
	})
	// The prompt, edited, says who confirmed, or that it expired.
	switch got.State {
	case StateConfirmed:
		return drill.Confirmation{User: got.By, Typed: got.Typed, At: got.At}, nil
	case StateExpired:
		return drill.Confirmation{}, fmt.Errorf("confirmation %s of %q expired at %s: %w", p.ID, p.Action, p.ExpiresAt.UTC().Format(time.RFC3339), drill.ErrExpired)
	}
	if ctx.Err() != nil {
		return drill.Confirmation{}, ctx.Err()
	}
	return drill.Confirmation{}, drill.Errorf(drill.EREFUSED, "%s was refused", req.Action)
}

// post posts p's prompt in the drill's thread, after what the thread
// already has, and records its ts.
func (c *confirmer) post(ctx context.Context, p Pending) (string, error) {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c.rep.flush(pctx)
	ts, err := c.b.reply.post(pctx, c.channel, promptMessage(p), PostOptions{ThreadTS: p.ThreadTS, Broadcast: p.ThreadTS != ""})
	if err == nil {
		_ = c.b.cfg.Pending.SetPromptTS(ctx, p.ID, ts)
		c.rep.waitingFor(pctx, p, c.b.messageLink(pctx, c.channel, ts, p.ThreadTS, true))
	}
	return ts, err
}

// park is a queued drill's confirmation: the drill parks on p, and the
// prompt is posted once it has (drill.Awaiting.Ask). Whatever becomes of
// the answer, the continuation queued for p's expiry takes the drill up.
func (c *confirmer) park(ctx context.Context, p Pending) (drill.Confirmation, error) {
	b := c.b
	if err := b.cfg.Queue.Continue(ctx, Continuation{DrillID: p.DrillID, Ticket: p.ID, Expiry: true}, p.ExpiresAt); err != nil {
		_, _, _ = b.cfg.Pending.Resolve(ctx, p.ID, StateCancelled, "", "", b.now())
		return drill.Confirmation{}, drill.Wrap(drill.EREFUSED, err, "the confirmation's expiry could not be queued, so the drill cannot wait for it")
	}
	ask := func(ctx context.Context) {
		if ok, err := b.cfg.Pending.ClaimPrompt(ctx, p.ID, ""); err != nil || !ok {
			return // another process posts it (see repostPrompts)
		}
		if _, err := c.post(ctx, p); err == nil {
			return
		}
		// Nobody can answer a prompt that was never posted: cancel it, and
		// let its continuation undo the drill now rather than at expiry.
		b.cfg.Logger.Error("cannot post a parked drill's confirmation prompt: undoing the drill", "drill", p.DrillID)
		if _, ok, _ := b.cfg.Pending.Resolve(ctx, p.ID, StateCancelled, "", "", b.now()); ok {
			_ = b.cfg.Queue.Continue(ctx, Continuation{DrillID: p.DrillID, Ticket: p.ID}, time.Time{})
		}
	}
	return drill.Confirmation{}, &drill.Awaiting{Ticket: p.ID, Until: p.ExpiresAt, Ask: ask}
}

// ask asks on a Prompter until the text is right or the wait ends.
func (c *confirmer) ask(ctx context.Context, pr Prompter, p Pending) {
	for ctx.Err() == nil {
		u, typed, err := pr.Prompt(ctx, p)
		if err != nil {
			if ctx.Err() != nil {
				return // the wait ended: Confirm resolves it
			}
			_, _, _ = c.b.cfg.Pending.Resolve(context.WithoutCancel(ctx), p.ID, StateCancelled, "", "", c.b.now())
			return
		}
		problem := c.b.Submit(ctx, u, p.ID, typed)
		if problem == "" {
			return
		}
		cur, _ := c.b.cfg.Pending.Get(ctx, p.ID)
		if cur.State != StatePending {
			return
		}
		c.b.reply.ephemeral(ctx, p.Channel, u, "", textMessage(":warning: "+Escape(problem)))
	}
}
