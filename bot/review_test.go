package bot_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgstate"
	"github.com/restore-drill/restore-drill/drill/schedule"
)

var drillIDInParent = regexp.MustCompile("Drill (d[a-z0-9]{7})")

// TestScheduledDrill_TwoPersonAppliesToCreator: a full-mode scheduled
// drill runs as its creator's, so with the two-person rule the creator
// cannot confirm its destructive steps herself.
func TestScheduledDrill_TwoPersonAppliesToCreator(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{store: drilltest.NewStateStore(t), twoPerson: true})
	_, a := bd.command(t, alice, `schedule `+bd.app+` "0 * * * *" --mode full`)
	if txt := ackText(t, a); !strings.Contains(txt, "Scheduled a full drill") {
		t.Fatalf("schedule ack %q", txt)
	}
	bd.bot.Tick(context.Background(), time.Now().Add(3*time.Hour))
	parent := bd.fake.WaitCall(t, "scheduled parent", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.ThreadTS == "" && strings.Contains(c.Text, "Drill ") && strings.Contains(c.Text, bd.app)
	})
	if !strings.Contains(parent.BlockText(), "scheduled by <@"+alice+">") {
		t.Errorf("parent does not say who scheduled it: %q", parent.BlockText())
	}
	m := drillIDInParent.FindStringSubmatch(parent.Text)
	if m == nil {
		t.Fatalf("parent %q", parent.Text)
	}
	id := m[1]
	prompt, cid := bd.prompt(t, parent.Reply, 1)
	if e := bd.submit(t, alice, cid, bd.app); !strings.Contains(e, "Two people are required") {
		t.Fatalf("the schedule's creator confirmed her own scheduled drill: %q", e)
	}
	bd.confirm(t, bob, prompt, cid)
	bd.command(t, alice, "cancel "+id)
	bd.verdict(t, parent, id)
	bd.bot.Wait()
}

// TestScheduledDrill_AccessRecheckedAtFire: a schedule whose creator is no
// longer allowed, or whose channel no longer is, is skipped with a reason.
func TestScheduledDrill_AccessRecheckedAtFire(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	const incident = "C0INCIDNT"
	bd := setup(t, options{store: store, incidentChannel: incident,
		access: bot.Access{AllowedUsers: []string{alice, bob}, AllowedChannels: []string{channel, incident}}})
	ctx := context.Background()
	if err := store.SaveSchedule(ctx, schedule.Entry{App: bd.app, Spec: "daily", Mode: drill.ModeVerify, Channel: channel, CreatedBy: mallory, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveSchedule(ctx, schedule.Entry{App: "otherapp", Spec: "daily", Mode: drill.ModeVerify, Channel: "C0GONE001", CreatedBy: alice, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	bd.bot.Tick(ctx, time.Now().Add(48*time.Hour))
	bd.fake.WaitCall(t, "creator skip", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Channel == channel && strings.Contains(c.Text, "did not start") && strings.Contains(c.Text, "no longer allowed")
	})
	bd.fake.WaitCall(t, "channel skip", func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.Channel == incident && strings.Contains(c.Text, "did not start") && strings.Contains(c.Text, "no longer works in <#C0GONE001>")
	})
	bd.bot.Wait()
	for _, c := range bd.fake.Calls() {
		if c.Method == "chat.postMessage" && strings.Contains(c.Text, "Drill d") {
			t.Errorf("a skipped schedule started a drill: %q", c.Text)
		}
	}
}

// TestSubmitAfterExpiryRefused: a confirmation still pending in the state
// database but past its expiry (its drill's process is slow or gone) cannot
// be confirmed any more.
func TestSubmitAfterExpiryRefused(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	bd := setup(t, options{store: store})
	ctx := context.Background()
	p := pgstate.Pending{ID: "cexpired1", DrillID: "dexpired", App: bd.app, Step: "promote", Action: "promote", Expect: bd.app,
		Requester: alice, Channel: channel, ExpiresAt: time.Now().Add(-time.Minute)}
	if err := store.CreatePending(ctx, p); err != nil {
		t.Fatal(err)
	}
	if e := bd.submit(t, bob, p.ID, bd.app); !strings.Contains(e, "confirmation expired") {
		t.Fatalf("submission after expiry: %q", e)
	}
	if got, err := store.GetPending(ctx, p.ID); err != nil || got.State == "confirmed" {
		t.Fatalf("expired confirmation was confirmed: %+v %v", got, err)
	}
}

// confirmEngine's Run asks for one confirmation and reports the
// confirmer's error on errs.
type confirmEngine struct {
	bot.Engine
	errs chan error
}

func (e *confirmEngine) Run(ctx context.Context, opts drill.Options, th bot.Thread) (*drill.Report, error) {
	_, err := th.Confirmer.Confirm(ctx, drill.ConfirmRequest{DrillID: opts.DrillID, App: opts.App, Step: "promote", Action: "promote the copy",
		Expect: opts.App, Requester: opts.Requester})
	e.errs <- err
	rep := &drill.Report{DrillID: opts.DrillID, App: opts.App, Mode: opts.Mode, Result: drill.Failed, Error: "x"}
	th.Sink.Event(drill.Event{Kind: drill.DrillFinished, DrillID: opts.DrillID, App: opts.App, Report: rep})
	return rep, err
}

// edgePending resolves a confirmation as cancelled just as its wait ends
// on the deadline, as a second party (the console's prompt) would.
type edgePending struct{ bot.PendingStore }

func (p edgePending) Wait(ctx context.Context, id string) (bot.Pending, error) {
	got, err := p.PendingStore.Wait(ctx, id)
	if err != nil {
		_, _, _ = p.PendingStore.Resolve(context.WithoutCancel(ctx), id, bot.StateCancelled, "", "", time.Now())
	}
	return got, err
}

// TestConfirmExpiredIsErrExpired: whenever the wait ended on the deadline,
// Confirm's error wraps drill.ErrExpired, whoever resolved it meanwhile.
func TestConfirmExpiredIsErrExpired(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 1)
	bd := setup(t, options{confirmTimeout: 300 * time.Millisecond,
		engine:  func(e bot.Engine) bot.Engine { return &confirmEngine{Engine: e, errs: errs} },
		pending: func(p bot.PendingStore) bot.PendingStore { return edgePending{p} }})
	bd.run(t, "run "+bd.app)
	select {
	case err := <-errs:
		if !errors.Is(err, drill.ErrExpired) {
			t.Fatalf("Confirm after the deadline returned %v, not ErrExpired", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Confirm did not return")
	}
	bd.bot.Wait()
}

// TestResumeCancelsPendingOfDeadDrill: once a dead drill is resumed, its
// confirmations still pending are cancelled, and nobody can confirm them.
func TestResumeCancelsPendingOfDeadDrill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := drilltest.NewStateStore(t)
	bd := setup(t, options{store: store})
	rec := drill.DrillRecord{DrillID: drill.NewDrillID(), App: bd.app, Provider: "local", Mode: drill.ModeFull, Requester: alice, Channel: channel, StartedAt: time.Now()}
	release, err := store.Begin(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	p := pgstate.Pending{ID: "cdead0001", DrillID: rec.DrillID, App: bd.app, Step: "promote", Action: "promote", Expect: bd.app,
		Requester: alice, Channel: channel, ExpiresAt: time.Now().Add(time.Hour)}
	if err := store.CreatePending(ctx, p); err != nil {
		t.Fatal(err)
	}
	release()
	if err := store.ExpireOwner(ctx, rec.DrillID); err != nil {
		t.Fatal(err)
	}
	// The background tick may resume it first: Resume waits for it.
	if _, err := bd.bot.Resume(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got, err := store.GetPending(ctx, p.ID); err != nil || got.State != "cancelled" {
		t.Fatalf("pending of the resumed drill: %+v %v", got, err)
	}
	if e := bd.submit(t, bob, p.ID, bd.app); !strings.Contains(e, "cancelled") {
		t.Fatalf("submission for a resumed drill: %q", e)
	}
}

// TestAdminGroupCacheFailsClosed: while usergroups.users.list keeps
// failing, the cached member list is trusted for a while, then no longer:
// destructive commands are refused with a "try again".
func TestAdminGroupCacheFailsClosed(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	start := time.Now()
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	bd := setup(t, options{access: bot.Access{AdminGroup: "S0ADMINS"}, now: now})
	bd.fake.SetGroup("S0ADMINS", alice)
	if _, a := bd.command(t, alice, "cancel d1234567"); !strings.Contains(ackText(t, a), "is not running") {
		t.Fatalf("member refused: %q", ackText(t, a))
	}
	bd.fake.Fail("usergroups.users.list", "internal_error", 1000)
	clock.Store(start.Add(2 * time.Minute).UnixNano()) // stale, still young enough
	if _, a := bd.command(t, alice, "cancel d1234567"); !strings.Contains(ackText(t, a), "is not running") {
		t.Fatalf("member refused while the list is young: %q", ackText(t, a))
	}
	clock.Store(start.Add(4 * time.Minute).UnixNano()) // past 3×TTL
	if _, a := bd.command(t, alice, "cancel d1234567"); !strings.Contains(ackText(t, a), "cannot check your membership in the admin group right now") {
		t.Fatalf("a list past its maximum age was trusted: %q", ackText(t, a))
	}
}

// hungStore's freeze check hangs, heeding no context, until release.
type hungStore struct {
	bot.StateStore
	release chan struct{}
}

func (s hungStore) Frozen(ctx context.Context) (bool, string, string, time.Time, error) {
	<-s.release
	return false, "", "", time.Time{}, errors.New("the state database hung")
}

// TestSlowDependencyAcksInTime: while the state database hangs, every
// command is still acked within 1.5 s, well inside Slack's 3 s once the
// round trip is counted (a "try again" for those that need it), and a
// cancel is answered at once rather than queued behind them.
func TestSlowDependencyAcksInTime(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	bd := setup(t, options{store: drilltest.NewStateStore(t),
		wrapStore: func(s bot.StateStore) bot.StateStore { return hungStore{StateStore: s, release: release} }})
	t.Cleanup(func() { close(release) })
	var runs []string
	for range 3 {
		runs = append(runs, bd.fake.SlashCommand(t, slacktest.Slash{User: alice, Channel: channel, Text: "run " + bd.app}))
	}
	cancel := bd.fake.SlashCommand(t, slacktest.Slash{User: alice, Channel: channel, Text: "cancel d1234567"})
	a := bd.fake.WaitAck(t, cancel)
	if !strings.Contains(ackText(t, a), "is not running") || a.Latency > time.Second {
		t.Errorf("cancel behind a hung dependency: %q after %s", ackText(t, a), a.Latency)
	}
	for _, id := range runs {
		a := bd.fake.WaitAck(t, id)
		if a.Latency >= 1500*time.Millisecond {
			t.Errorf("ack of %s took %s", id, a.Latency)
		}
		if txt := ackText(t, a); !strings.Contains(txt, "try again") {
			t.Errorf("ack of a command that could not be answered: %q", txt)
		}
	}
}

// TestRedactBeforeEscapeAndClip: a secret with & < > is redacted though
// the reply escapes it, a URL's password though the echo is clipped before
// its @, in acks and in view-submission errors alike.
func TestRedactBeforeEscapeAndClip(t *testing.T) {
	t.Parallel()
	const secret = "Sup3r&Secret>Key"
	store := drilltest.NewStateStore(t)
	bd := setup(t, options{store: store, secrets: []string{secret}})
	_, a := bd.command(t, alice, secret+" now")
	if txt := string(a.Payload); strings.Contains(txt, "Sup3r") || strings.Contains(txt, "Secret") {
		t.Errorf("ack echoes the secret: %s", txt)
	}
	p := pgstate.Pending{ID: "credact01", DrillID: "dredact1", App: bd.app, Step: "promote", Action: "promote", Expect: bd.app,
		Requester: alice, Channel: channel, ExpiresAt: time.Now().Add(time.Hour)}
	if err := store.CreatePending(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	e := bd.submit(t, bob, p.ID, "postgres://admin:averyveryverylongpassword123@db.example.com/x")
	if !strings.Contains(e, "you typed") || strings.Contains(e, "averyvery") {
		t.Errorf("submission error shows the password: %q", e)
	}
	e = bd.submit(t, bob, p.ID, secret)
	if !strings.Contains(e, "you typed") || strings.Contains(e, "Sup3r") {
		t.Errorf("submission error shows the secret: %q", e)
	}
}

// TestStalledSlackCallsAreBounded: with chat.update stalled, the drill's
// thread still ends and the bot's drills finish (the app is not kept busy),
// since every Web API call has a timeout.
func TestStalledSlackCallsAreBounded(t *testing.T) {
	t.Parallel()
	bd := setup(t, options{httpTimeout: time.Second})
	bd.fake.Slow("chat.update", 2*time.Minute)
	id, parent := bd.run(t, "run "+bd.app)
	bd.verdict(t, parent, id)
	done := make(chan struct{})
	go func() {
		defer close(done)
		bd.bot.Wait()
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("a stalled chat.update kept the drill running")
	}
	if _, a := bd.command(t, alice, "run "+bd.app); !strings.Contains(ackText(t, a), "Starting drill") {
		t.Fatalf("app still busy: %q", ackText(t, a))
	}
	bd.bot.Wait()
}

// TestLongSchedulesAck: a schedules list too big for an ack (slack-go
// refuses acks of 20 KB and more, leaving the envelope unacked) is acked
// briefly and sent in full with the Web API, in messages within Slack's
// block and text limits (12,000 characters across a message's blocks),
// joining the channel first (ephemeral messages need membership); the
// harness's invariants fail on any call Slack refused.
func TestLongSchedulesAck(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	bd := setup(t, options{store: store})
	ctx := context.Background()
	const n = 300
	for i := range n {
		e := schedule.Entry{App: fmt.Sprintf("app-%03d-with-a-rather-long-name", i), Spec: "weekly", Mode: drill.ModeVerify, Channel: channel, CreatedBy: alice, CreatedAt: time.Now()}
		if err := store.SaveSchedule(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	_, a := bd.command(t, alice, "schedules")
	if len(a.Payload) >= 20*1024 || !strings.Contains(ackText(t, a), "too long") {
		t.Fatalf("ack of %d bytes: %.200s", len(a.Payload), a.Payload)
	}
	bd.bot.Wait() // the list is sent after the ack
	var all strings.Builder
	for _, c := range bd.fake.Calls() {
		if c.Method == "chat.postEphemeral" && c.Error == "" {
			all.WriteString(c.BlockText())
		}
	}
	for _, app := range []string{"app-000-", "app-150-", fmt.Sprintf("app-%03d-", n-1)} {
		if !strings.Contains(all.String(), app) {
			t.Errorf("the full list lacks %s", app)
		}
	}
}
