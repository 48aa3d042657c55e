package bot

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/restore-drill/restore-drill/drill"
)

// reporter is a drill.Sink that keeps one Slack thread per drill: the parent
// message (kept current with chat.update at most once per interval), a reply
// per finished step, the checksum table and the broadcast verdict. Event
// never blocks: events are queued and a goroutine delivers them, so a slow
// or failing Slack cannot stop or corrupt the drill.
type reporter struct {
	b       *Bot
	channel string

	mu         sync.Mutex
	view       drillView
	queue      []queued
	last       map[string]string
	dirty      bool
	parentTS   string
	wake       chan struct{}
	done       chan struct{}
	lastUpdate time.Time
	// seg is the reply that lists the steps since the last prompt, edited
	// in place as they run (nil until a step of the stretch starts).
	seg *segment
	// updMu keeps one edit of the parent and the steps at a time, each
	// sending the newest state, so that an older edit never lands last.
	updMu sync.Mutex
	// incident is the channel that also gets the parent message and the
	// verdict (DRILL_INCIDENT_CHANNEL, for a restore started elsewhere);
	// incidentTS is that copy's ts.
	incident, incidentTS string
}

// segment is one thread reply listing steps, one line each, edited in
// place as they progress: a drill's thread gets one reply per stretch of
// steps between two prompts, not one per step.
type segment struct {
	ts    string
	lines []string
	// index maps a step (or another key) to its line.
	index map[string]int
	dirty bool
}

// set sets the line of key, adding it at the end if it is new.
func (g *segment) set(key, line string) {
	if i, ok := g.index[key]; ok {
		g.lines[i] = line
	} else {
		g.index[key] = len(g.lines)
		g.lines = append(g.lines, line)
	}
	g.dirty = true
}

func (g *segment) message() Message {
	return textMessage(strings.Join(g.lines, "\n"))
}

type queued struct {
	event  *drill.Event
	msg    *Message
	marker chan struct{}
	// seg posts a new steps reply.
	seg *segment
	// end ends the thread's delivery with nothing more to say.
	end bool
}

// inThread returns a reporter for drill j's existing thread.
func inThread(b *Bot, j Job) *reporter {
	r := newReporter(b, j.Channel, j.view())
	r.parentTS = j.ThreadTS
	if j.IncidentTS != "" {
		r.incident, r.incidentTS = b.cfg.IncidentChannel, j.IncidentTS
	}
	return r
}

func (r *reporter) incidentThread() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.incidentTS
}

// end stops delivery once what is queued is delivered.
func (r *reporter) end() {
	r.mu.Lock()
	r.queue = append(r.queue, queued{end: true})
	r.mu.Unlock()
	r.signal()
}

var _ drill.Sink = (*reporter)(nil)

// deliveryTimeout bounds each post or edit of a drill's thread: the
// reporter runs on a context that is never cancelled (the thread must get
// the verdict even as the bot stops), so a stalled call must not hang it,
// nor keep the drill's app marked busy.
const deliveryTimeout = 30 * time.Second

func newReporter(b *Bot, channel string, v drillView) *reporter {
	return &reporter{b: b, channel: channel, view: v, last: map[string]string{},
		wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// start posts the parent message. When Slack refuses it (the bot cannot
// see the channel, the channel is archived or restricted, Slack fails),
// start returns the error and the drill must not start: nobody could
// follow it.
func (r *reporter) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	r.mu.Lock()
	m := r.view.parent()
	r.mu.Unlock()
	ts, err := r.b.reply.post(ctx, r.channel, m, PostOptions{})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.parentTS, r.lastUpdate = ts, r.b.now()
	r.mu.Unlock()
	r.startIncident(ctx)
	return nil
}

// startIncident posts the copy of the parent message in the incident
// channel; a failure there is logged and does not stop the restore.
func (r *reporter) startIncident(ctx context.Context) {
	if r.incident == "" {
		return
	}
	r.mu.Lock()
	m := r.view.parentIn(r.channel)
	r.mu.Unlock()
	ts, err := r.b.reply.post(ctx, r.incident, m, PostOptions{})
	if err != nil {
		r.b.cfg.Logger.Warn("cannot post in the incident channel", "channel", r.incident, "err", err)
		return
	}
	r.mu.Lock()
	r.incidentTS = ts
	r.mu.Unlock()
}

func (r *reporter) thread() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.parentTS
}

func (r *reporter) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Event queues e: steps become lines of the current steps reply, their
// progress edited in place (coalesced, like the parent's).
func (r *reporter) Event(e drill.Event) {
	r.mu.Lock()
	switch e.Kind {
	case drill.StepStarted:
		r.view.Step, r.view.Progress, r.view.Waiting = e.Step, "", nil
		r.dirty = true
		r.line(e.Step, fmt.Sprintf(":arrows_counterclockwise: %s running…", code(e.Step)))
	case drill.StepProgress:
		p := progressText(e)
		r.view.Step, r.view.Progress, r.last[e.Step] = e.Step, p, p
		r.dirty = true
		r.line(e.Step, fmt.Sprintf(":arrows_counterclockwise: %s running… %s", code(e.Step), p))
	case drill.DrillConfirmed, drill.DrillContinued:
		// The prompt, edited, says who confirmed; that the drill goes on
		// shows in its steps.
	case drill.DrillParked:
		// The parent says what the drill waits for once the prompt is
		// posted (waitingFor); the thread needs no word about it.
		r.view.Step, r.view.Progress = e.Step, ""
		r.dirty = true
		r.queue = append(r.queue, queued{end: true})
	case drill.DrillFinished:
		r.view.Waiting = nil
		if !r.view.restore() {
			r.queue = append(r.queue, queued{event: &e})
		}
		// An emergency restore's report is complete (production's state)
		// only when Restore returns: finish delivers its verdict then.
	case drill.DrillNote:
		if e.Step != drill.StepPlan { // the plan is stated in the prompt
			r.line(fmt.Sprintf("note %d", r.lines()), stepText(e, ""))
		}
	case drill.StepUndone, drill.StepUndoFailed:
		r.line(fmt.Sprintf("%s %s %d", e.Kind, e.Step, r.lines()), stepText(e, ""))
	default:
		r.line(e.Step, stepText(e, r.last[e.Step]))
	}
	status := "running " + r.view.Step
	r.mu.Unlock()
	r.b.reg.update(e.DrillID, func(d *drillRecord) {
		if d.Status != "cancelling" {
			d.Status = status
		}
		if e.Kind == drill.StepStarted || e.Kind == drill.DrillFinished {
			d.Waiting = ""
		}
	})
	r.signal()
}

// line sets a line of the current steps reply, starting a new reply when
// there is none; r.mu is held.
func (r *reporter) line(key, text string) {
	if r.seg == nil {
		r.seg = &segment{index: map[string]int{}}
		r.seg.set(key, clipRunes(text, 400))
		r.seg.dirty = false
		r.queue = append(r.queue, queued{seg: r.seg})
		return
	}
	r.seg.set(key, clipRunes(text, 400))
}

// lines counts the lines of the current steps reply; r.mu is held.
func (r *reporter) lines() int {
	if r.seg == nil {
		return 0
	}
	return len(r.seg.lines)
}

// waitingFor shows, in the parent and in status, that the drill waits for
// confirmation p, whose prompt is at link.
func (r *reporter) waitingFor(ctx context.Context, p Pending, link string) {
	w := &waitView{Action: p.Action, Until: p.ExpiresAt, Link: link}
	r.mu.Lock()
	r.view.Waiting = w
	r.mu.Unlock()
	r.b.reg.update(p.DrillID, func(d *drillRecord) { d.Waiting = w.text() })
	// The run loop may have ended (a parked drill's): edit here.
	r.updateParent(ctx)
}

// finish queues the verdict of an emergency restore, with the report
// Restore returned (nil when it returned none).
func (r *reporter) finish(rep *drill.Report) {
	r.mu.Lock()
	r.queue = append(r.queue, queued{event: &drill.Event{Kind: drill.DrillFinished, DrillID: r.view.ID, App: r.view.App, Report: rep}})
	r.mu.Unlock()
	r.signal()
}

// say queues a ready message for the thread, in order with the events.
func (r *reporter) say(m Message) {
	r.mu.Lock()
	r.queue = append(r.queue, queued{msg: &m})
	r.mu.Unlock()
	r.signal()
}

// flush waits until everything queued so far is delivered (or ctx ends),
// so that a message posted directly lands after it in the thread; the
// steps reply so far is brought up to date and closed: steps after it go
// in a new one, below what is posted now.
func (r *reporter) flush(ctx context.Context) {
	m := make(chan struct{})
	r.mu.Lock()
	r.queue = append(r.queue, queued{marker: m})
	r.mu.Unlock()
	r.signal()
	select {
	case <-m:
	case <-r.done:
	case <-ctx.Done():
	}
}

// run delivers queued events until the drill finishes.
func (r *reporter) run(ctx context.Context) {
	defer close(r.done)
	var timer *time.Timer
	var timerC <-chan time.Time
	for {
		r.mu.Lock()
		items := r.queue
		r.queue = nil
		r.mu.Unlock()
		finished := false
		for _, it := range items {
			if r.deliver(ctx, it) {
				finished = true
			}
		}
		r.mu.Lock()
		dirty, since := r.dirty || (r.seg != nil && r.seg.dirty), r.b.now().Sub(r.lastUpdate)
		r.mu.Unlock()
		if finished {
			r.closeSegment(ctx)
			r.updateParent(ctx)
			return
		}
		if dirty && since >= r.b.updateInterval() {
			r.updateParent(ctx)
		} else if dirty && timerC == nil {
			timer = time.NewTimer(r.b.updateInterval() - since)
			timerC = timer.C
		}
		select {
		case <-r.wake:
		case <-timerC:
			timerC = nil
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		}
	}
}

func (r *reporter) ensureParent(ctx context.Context) string {
	if ts := r.thread(); ts != "" {
		return ts
	}
	r.mu.Lock()
	m := r.view.parent()
	r.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	ts, err := r.b.reply.post(pctx, r.channel, m, PostOptions{})
	if err != nil {
		return ""
	}
	r.mu.Lock()
	r.parentTS = ts
	r.mu.Unlock()
	return ts
}

// deliver posts one queued item; it reports whether the drill finished.
func (r *reporter) deliver(ctx context.Context, it queued) bool {
	if it.marker != nil {
		r.closeSegment(ctx)
		close(it.marker)
		return false
	}
	if it.end {
		return true
	}
	ts := r.ensureParent(ctx)
	if it.seg != nil {
		r.mu.Lock()
		m := it.seg.message()
		it.seg.dirty = false
		r.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
		sts, _ := r.b.reply.post(pctx, r.channel, m, PostOptions{ThreadTS: ts})
		cancel()
		r.mu.Lock()
		it.seg.ts = sts
		r.mu.Unlock()
		return false
	}
	post := func(m Message, broadcast bool) {
		pctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
		defer cancel()
		_, _ = r.b.reply.post(pctx, r.channel, m, PostOptions{ThreadTS: ts, Broadcast: broadcast && ts != ""})
	}
	if it.msg != nil {
		post(*it.msg, false)
		return false
	}
	e := *it.event
	r.closeSegment(ctx)
	if e.Report == nil {
		post(textMessage(fmt.Sprintf("Drill %s ended without a report.", code(e.DrillID))), true)
		return true
	}
	r.postChecksums(ctx, ts, e.Report, post)
	v := verdictMessage(e.Report)
	post(v, true)
	r.mu.Lock()
	r.view.Report, r.dirty = e.Report, true
	its := r.incidentTS
	r.mu.Unlock()
	if its != "" {
		pctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
		_, _ = r.b.reply.post(pctx, r.incident, v, PostOptions{ThreadTS: its, Broadcast: true})
		cancel()
	}
	return true
}

// updateParent edits the parent (and its copy in the incident channel)
// and the current steps reply to their newest state.
func (r *reporter) updateParent(ctx context.Context) {
	r.updMu.Lock()
	defer r.updMu.Unlock()
	r.mu.Lock()
	m, ts := r.view.parent(), r.parentTS
	im, its := r.view.parentIn(r.channel), r.incidentTS
	var sm Message
	var sts string
	if g := r.seg; g != nil && g.dirty && g.ts != "" {
		sm, sts, g.dirty = g.message(), g.ts, false
	}
	r.dirty, r.lastUpdate = false, r.b.now()
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	if sts != "" {
		_ = r.b.reply.update(ctx, r.channel, sts, sm)
	}
	if its != "" {
		_ = r.b.reply.update(ctx, r.incident, its, im)
	}
	if ts == "" {
		return
	}
	_ = r.b.reply.update(ctx, r.channel, ts, m)
}

// closeSegment brings the current steps reply up to date and ends it: the
// next step starts a new reply, below whatever is posted now.
func (r *reporter) closeSegment(ctx context.Context) {
	r.updMu.Lock()
	defer r.updMu.Unlock()
	r.mu.Lock()
	g := r.seg
	r.seg = nil
	if g == nil || !g.dirty || g.ts == "" {
		r.mu.Unlock()
		return
	}
	m, ts := g.message(), g.ts
	g.dirty = false
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	defer cancel()
	_ = r.b.reply.update(ctx, r.channel, ts, m)
}

// wait waits until the reporter has delivered everything, or ctx ends.
func (r *reporter) wait(ctx context.Context) {
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}
