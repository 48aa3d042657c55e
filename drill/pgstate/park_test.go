package pgstate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// newParkState makes a fresh state database and returns a store on it and
// a factory of more: each is a separate "process" with its own pool. All of
// them run in the test's process, so each names a live owner.
func newParkState(t *testing.T) (*pgstate.Store, func() *pgstate.Store) {
	t.Helper()
	first, name := drilltest.NewNamedStateStore(t)
	return first, func() *pgstate.Store {
		pool, err := pgxpool.NewWithConfig(context.Background(), poolConfig(t, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		return pgstate.New(pool)
	}
}

// checkpoint is a checkpoint as the drill package writes one, waiting for
// ticket.
func checkpoint(t *testing.T, ticket string) []byte {
	t.Helper()
	cp, err := json.Marshal(map[string]any{"ticket": ticket, "step": "promote", "until": time.Now().Add(10 * time.Minute).UTC(),
		"options": map[string]any{"keep": true}, "calls": 7, "scratch": map[string]any{"id": "db-1", "name": "scratch_1"}})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// park begins a drill of app on s with two undo records (one already run),
// parks it on ticket for ten minutes and releases it, as a process waiting
// for a confirmation does. It returns the record, the checkpoint and the
// undo record still to run.
func park(t *testing.T, s *pgstate.Store, app, ticket string) (drill.DrillRecord, []byte, drill.UndoRecord) {
	t.Helper()
	ctx := t.Context()
	r := rec(app)
	r.Channel, r.ThreadTS, r.Keep = "C1", "1700000000.000100", true
	release, err := s.Begin(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	done, err := s.PushUndo(ctx, r.DrillID, drill.UndoRecord{Step: "maintenance_on", Kind: drill.UndoMaintenance, App: app, DrillID: r.DrillID})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DropUndo(ctx, r.DrillID, done); err != nil {
		t.Fatal(err)
	}
	pending := drill.UndoRecord{Step: "provision", Kind: drill.UndoDestroyScratch, App: app, DrillID: r.DrillID,
		Database: drill.Database{ID: "db-1", Name: "scratch_1", DrillID: r.DrillID}}
	if pending.ID, err = s.PushUndo(ctx, r.DrillID, pending); err != nil {
		t.Fatal(err)
	}
	cp := checkpoint(t, ticket)
	if err := s.Park(ctx, r.DrillID, cp, time.Now().Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	release()
	return r, cp, pending
}

// sameJSON tells whether a and b hold the same JSON value (jsonb keeps the
// value, not the text).
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func sameRecord(got, want drill.DrillRecord) bool {
	if d := got.StartedAt.Sub(want.StartedAt); d < -time.Microsecond || d > time.Microsecond {
		return false
	}
	got.StartedAt, got.ParkedUntil, got.ParkedTicket = want.StartedAt, want.ParkedUntil, want.ParkedTicket
	return got == want
}

func TestPark_HoldsTheApp(t *testing.T) {
	t.Parallel()
	parker, open := newParkState(t)
	ctx := t.Context()
	r, _, _ := park(t, parker, "shop", "T-1")
	other := open()
	if held, err := other.LockHeld(ctx, r.DrillID); err != nil || held {
		t.Fatalf("the parker still holds the drill's lock after release: %v %v", held, err)
	}
	refused := rec("shop")
	_, err := other.Begin(ctx, refused)
	if !errors.Is(err, drill.ErrLocked) || drill.ErrorCode(err) != drill.EREFUSED || !strings.Contains(err.Error(), r.DrillID) ||
		!strings.Contains(err.Error(), "waiting for a confirmation until") || !strings.Contains(err.Error(), "U1") {
		t.Fatalf("begin on an app with a parked drill: %v, want locked naming %s and what it waits for", err, r.DrillID)
	}
	if _, err := other.Report(ctx, refused.DrillID); drill.ErrorCode(err) != drill.ENOTFOUND {
		t.Errorf("the refused drill was recorded: %v", err)
	}
	if held, err := other.LockHeld(ctx, refused.DrillID); err != nil || held {
		t.Errorf("the refused drill's lock is held: %v %v", held, err)
	}
	// The refusal let the app's lock go: a parked drill holds its app by
	// its row alone, and another app is free.
	blog := rec("blog")
	releaseBlog, err := other.Begin(ctx, blog)
	if err != nil {
		t.Fatalf("another app: %v", err)
	}
	if err := other.Finish(ctx, &drill.Report{DrillID: blog.DrillID, App: "blog", Result: drill.Passed, EndedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	releaseBlog()
	if _, err := open().Begin(ctx, rec("shop")); !errors.Is(err, drill.ErrLocked) {
		t.Errorf("a second begin on the parked app: %v, want locked", err)
	}

	running, err := other.Running(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(running) != 1 || running[0].DrillID != r.DrillID || !running[0].Parked() || running[0].Ticket != "T-1" ||
		time.Until(running[0].ParkedUntil) < 9*time.Minute || !strings.HasPrefix(running[0].Waiting(), "waiting for a confirmation until ") {
		t.Errorf("running: %+v", running)
	}
	if recs, err := other.RunningDrills(ctx); err != nil || len(recs) != 1 || !sameRecord(recs[0], r) || !recs[0].ParkedUntil.Equal(running[0].ParkedUntil) {
		t.Errorf("running drills: %+v %v, want %+v parked until %s", recs, err, r, running[0].ParkedUntil)
	}
	if alive, err := other.DrillAlive(ctx, r.DrillID); err != nil || !alive {
		t.Errorf("a parked drill counts as dead: %v %v", alive, err)
	}
	if actions, err := other.AuditActions(ctx, r.DrillID); err != nil || !slices.Contains(actions, "drill_parked") {
		t.Errorf("audit %v %v, want drill_parked", actions, err)
	}
}

func TestPark_NeedsARunningDrillAndATicket(t *testing.T) {
	t.Parallel()
	s, _ := newParkState(t)
	ctx := t.Context()
	if err := s.Park(ctx, "dnope123", checkpoint(t, "T-1"), time.Now().Add(time.Minute)); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("park of an unknown drill: %v", err)
	}
	r := rec("shop")
	release, err := s.Begin(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := s.Park(ctx, r.DrillID, []byte(`{"step":"promote"}`), time.Now().Add(time.Minute)); err == nil {
		t.Error("parked on no ticket")
	}
	if err := s.Park(ctx, r.DrillID, []byte(`not json`), time.Now().Add(time.Minute)); err == nil {
		t.Error("parked with an unreadable checkpoint")
	}
	if err := s.Finish(ctx, &drill.Report{DrillID: r.DrillID, App: "shop", Result: drill.Failed, EndedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.Park(ctx, r.DrillID, checkpoint(t, "T-1"), time.Now().Add(time.Minute)); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("park of a finished drill: %v", err)
	}
}

func TestPark_AbandonedOnlyOnceExpired(t *testing.T) {
	t.Parallel()
	parker, open := newParkState(t)
	ctx := t.Context()
	r, _, pending := park(t, parker, "shop", "T-1")
	resumer := open()
	// Its parker released its locks, but it waits for a confirmation.
	if got, err := resumer.Abandoned(ctx); err != nil || len(got) != 0 {
		t.Fatalf("abandoned a parked drill: %+v %v", got, err)
	}
	// Expired, but within the grace left to its expiry's continuation.
	if err := resumer.ParkedAgo(ctx, r.DrillID, pgstate.ParkGrace/2); err != nil {
		t.Fatal(err)
	}
	if got, err := resumer.Abandoned(ctx); err != nil || len(got) != 0 {
		t.Fatalf("abandoned a parked drill within the grace: %+v %v", got, err)
	}
	if alive, err := resumer.DrillAlive(ctx, r.DrillID); err != nil || !alive {
		t.Errorf("a drill parked within the grace counts as dead: %v %v", alive, err)
	}
	if _, err := resumer.Begin(ctx, rec("shop")); !errors.Is(err, drill.ErrLocked) || !strings.Contains(err.Error(), r.DrillID) {
		t.Errorf("begin within the grace: %v, want locked", err)
	}
	// Past the grace: nobody owns it, though the process that parked it
	// (this one) lives.
	if err := resumer.ParkedAgo(ctx, r.DrillID, pgstate.ParkGrace+time.Minute); err != nil {
		t.Fatal(err)
	}
	if alive, err := resumer.DrillAlive(ctx, r.DrillID); err != nil || alive {
		t.Errorf("a drill parked past its expiry and grace counts as alive: %v %v", alive, err)
	}
	if _, err := resumer.Begin(ctx, rec("shop")); err == nil || !strings.Contains(err.Error(), "resume") || !strings.Contains(err.Error(), r.DrillID) {
		t.Errorf("begin past the grace: %v, want to be told to resume %s", err, r.DrillID)
	}
	got, err := resumer.Abandoned(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !sameRecord(got[0].Record, r) {
		t.Fatalf("abandoned %+v, want only %s", got, r.DrillID)
	}
	if len(got[0].Undo) != 1 || got[0].Undo[0].ID != pending.ID || got[0].Undo[0].Kind != drill.UndoDestroyScratch || got[0].Undo[0].Database != pending.Database {
		t.Errorf("undo %+v, want only %+v", got[0].Undo, pending)
	}
	// Taken over, it is parked no more: a late continuation finds nothing,
	// and no other resumer takes it.
	if _, ok, err := open().Unpark(ctx, r.DrillID, "T-1"); err != nil || ok {
		t.Errorf("unpark of a drill being resumed: %v %v, want not ok", ok, err)
	}
	if again, err := open().Abandoned(ctx); err != nil || len(again) != 0 {
		t.Errorf("a second resumer took a claimed drill: %+v %v", again, err)
	}
	if running, err := resumer.Running(ctx); err != nil || len(running) != 1 || running[0].Parked() {
		t.Errorf("running %+v %v, want the drill not parked", running, err)
	}
	// A resumer that gives it up unfinished leaves it abandoned, though the
	// process that parked it lives.
	got[0].Release()
	again, err := open().Abandoned(ctx)
	if err != nil || len(again) != 1 || again[0].Record.DrillID != r.DrillID {
		t.Fatalf("after the resumer gave it up: %+v %v, want %s abandoned", again, err, r.DrillID)
	}
	again[0].Release()
	if _, ok, err := open().Unpark(ctx, r.DrillID, "T-1"); err != nil || ok {
		t.Errorf("late unpark: %v %v, want not ok", ok, err)
	}
	if actions, err := resumer.AuditActions(ctx, r.DrillID); err != nil || !slices.Contains(actions, "drill_park_expired") || slices.Contains(actions, "drill_unparked") {
		t.Errorf("audit %v %v, want drill_park_expired and no drill_unparked", actions, err)
	}
}

func TestUnpark_WrongTicket(t *testing.T) {
	t.Parallel()
	parker, open := newParkState(t)
	ctx := t.Context()
	r, _, _ := park(t, parker, "shop", "T-1")
	before, err := parker.DrillRow(ctx, r.DrillID)
	if err != nil {
		t.Fatal(err)
	}
	s := open()
	for _, ticket := range []string{"T-2", "", "t-1"} {
		p, ok, err := s.Unpark(ctx, r.DrillID, ticket)
		if err != nil || ok || p.Release != nil {
			t.Fatalf("unpark on ticket %q: %+v %v %v, want not ok", ticket, p, ok, err)
		}
	}
	if _, ok, err := s.Unpark(ctx, "dnope123", "T-1"); err != nil || ok {
		t.Errorf("unpark of an unknown drill: %v %v", ok, err)
	}
	after, err := parker.DrillRow(ctx, r.DrillID)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("a wrong ticket changed the drill:\n%s\n%s", before, after)
	}
	if held, err := s.LockHeld(ctx, r.DrillID); err != nil || held {
		t.Errorf("a wrong ticket kept the drill's lock: %v %v", held, err)
	}
	if s.Lost(r.DrillID) != nil {
		t.Error("a wrong ticket made this process the owner")
	}
	if _, err := open().Begin(ctx, rec("shop")); !errors.Is(err, drill.ErrLocked) || !strings.Contains(err.Error(), r.DrillID) {
		t.Errorf("begin after a wrong ticket: %v, want the app still held by %s", err, r.DrillID)
	}
}

func TestUnpark_TakesTheDrillOnce(t *testing.T) {
	t.Parallel()
	parker, open := newParkState(t)
	ctx := t.Context()
	r, cp, pending := park(t, parker, "shop", "T-1")
	s := open()
	p, ok, err := s.Unpark(ctx, r.DrillID, "T-1")
	if err != nil || !ok {
		t.Fatalf("unpark: %v %v", ok, err)
	}
	released := false
	t.Cleanup(func() {
		if !released {
			p.Release()
		}
	})
	if !sameRecord(p.Record, r) {
		t.Errorf("record %+v, want %+v", p.Record, r)
	}
	if !sameJSON(t, p.Checkpoint, cp) {
		t.Errorf("checkpoint %s, want %s", p.Checkpoint, cp)
	}
	if len(p.Undo) != 1 || p.Undo[0].ID != pending.ID || p.Undo[0].Database != pending.Database {
		t.Errorf("undo %+v, want only %+v", p.Undo, pending)
	}
	if s.Lost(r.DrillID) == nil {
		t.Error("the new owner has no Lost channel")
	}

	// The new owner holds the drill and its app.
	if held, err := s.LockHeld(ctx, r.DrillID); err != nil || !held {
		t.Errorf("lock held after unpark: %v %v", held, err)
	}
	if _, ok, err := open().Unpark(ctx, r.DrillID, "T-1"); err != nil || ok {
		t.Errorf("second unpark on the same ticket: %v %v, want not ok", ok, err)
	}
	if got, err := open().Abandoned(ctx); err != nil || len(got) != 0 {
		t.Errorf("abandoned after unpark: %+v %v", got, err)
	}
	other := rec("shop")
	if _, err := open().Begin(ctx, other); !errors.Is(err, drill.ErrLocked) || !strings.Contains(err.Error(), r.DrillID) {
		t.Errorf("begin on the app of an unparked drill: %v, want locked by %s", err, r.DrillID)
	}
	if running, err := s.Running(ctx); err != nil || len(running) != 1 || running[0].Parked() || running[0].Waiting() != "" {
		t.Errorf("running %+v %v, want the drill not parked", running, err)
	}
	if actions, err := s.AuditActions(ctx, r.DrillID); err != nil || !slices.Contains(actions, "drill_unparked") {
		t.Errorf("audit %v %v, want drill_unparked", actions, err)
	}

	// It may park again, on another ticket: only that one takes it up.
	cp2 := checkpoint(t, "T-2")
	if err := s.Park(ctx, r.DrillID, cp2, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	p.Release()
	released = true
	if s.Lost(r.DrillID) != nil {
		t.Error("Lost after release")
	}
	if held, err := s.LockHeld(ctx, r.DrillID); err != nil || held {
		t.Errorf("lock held after release: %v %v", held, err)
	}
	if _, ok, err := open().Unpark(ctx, r.DrillID, "T-1"); err != nil || ok {
		t.Errorf("unpark on the old ticket: %v %v, want not ok", ok, err)
	}
	p2, ok, err := parker.Unpark(ctx, r.DrillID, "T-2")
	if err != nil || !ok {
		t.Fatalf("unpark on the new ticket: %v %v", ok, err)
	}
	defer p2.Release()
	if !sameJSON(t, p2.Checkpoint, cp2) {
		t.Errorf("checkpoint %s, want %s", p2.Checkpoint, cp2)
	}
}

func TestUnpark_ConcurrentOnlyOne(t *testing.T) {
	t.Parallel()
	parker, open := newParkState(t)
	ctx := t.Context()
	r, _, _ := park(t, parker, "shop", "T-1")
	const n = 6
	stores := make([]*pgstate.Store, n)
	for i := range stores {
		stores[i] = open()
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	results := make([]drill.Parked, n)
	oks := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], oks[i], errs[i] = stores[i].Unpark(ctx, r.DrillID, "T-1")
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("unpark %d: %v", i, errs[i])
		}
		if oks[i] {
			won++
			defer results[i].Release()
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent unparks took the drill, want exactly 1", won)
	}
}

func TestUnpark_WaitsForTheParkerToLetGo(t *testing.T) {
	t.Parallel()
	parker, open := newParkState(t)
	ctx := t.Context()
	r := rec("shop")
	release, err := parker.Begin(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := parker.Park(ctx, r.DrillID, checkpoint(t, "T-1"), time.Now().Add(time.Minute)); err != nil {
		release()
		t.Fatal(err)
	}
	// The answer comes before the parker has released the drill.
	type result struct {
		p   drill.Parked
		ok  bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, ok, err := open().Unpark(ctx, r.DrillID, "T-1")
		done <- result{p, ok, err}
	}()
	select {
	case res := <-done:
		release()
		t.Fatalf("unpark while the parker holds the drill: %v %v", res.ok, res.err)
	case <-time.After(300 * time.Millisecond):
	}
	release()
	select {
	case res := <-done:
		if res.err != nil || !res.ok {
			t.Fatalf("unpark once the parker let go: %v %v", res.ok, res.err)
		}
		res.p.Release()
	case <-time.After(10 * time.Second):
		t.Fatal("unpark still waits after the parker let go")
	}
}

// TestUnpark_WaitsForAParkOnItsTicket: an answer (a cancel) to a ticket
// the live owner has not parked on yet waits for the park; a ticket the
// drill already went past, or a dead drill, gives ok false at once.
func TestUnpark_WaitsForAParkOnItsTicket(t *testing.T) {
	t.Parallel()
	owner, open := newParkState(t)
	ctx := t.Context()
	r := rec("shop")
	release, err := owner.Begin(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	go func() {
		p, ok, err := open().Unpark(ctx, r.DrillID, "T-1")
		if err != nil {
			t.Error(err)
		}
		if ok {
			p.Release()
		}
		done <- ok
	}()
	select {
	case ok := <-done:
		release()
		t.Fatalf("unpark returned %v before the owner parked on its ticket", ok)
	case <-time.After(300 * time.Millisecond):
	}
	if err := owner.Park(ctx, r.DrillID, checkpoint(t, "T-1"), time.Now().Add(time.Minute)); err != nil {
		release()
		t.Fatal(err)
	}
	release()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("unpark did not take the drill once it parked on the ticket")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("unpark still waits after the park")
	}
	// T-1 was taken up: it is past, and answers to it end at once.
	start := time.Now()
	if _, ok, err := open().Unpark(ctx, r.DrillID, "T-1"); ok || err != nil || time.Since(start) > 2*time.Second {
		t.Fatalf("unpark of a consumed ticket: %v %v after %s", ok, err, time.Since(start))
	}
}

// TestPendingPrompt_ClaimedOnceRepostedWhenItsPosterDied: the prompt of a
// parked drill's confirmation is claimed by one process; a parked drill's
// unposted prompt is listed for another to post, and so is one whose
// claimer died, but not one a live process is posting.
func TestPendingPrompt_ClaimedOnceRepostedWhenItsPosterDied(t *testing.T) {
	t.Parallel()
	s, open := newParkState(t)
	ctx := t.Context()
	r, _, _ := park(t, s, "shop", "c0000001")
	p := pgstate.Pending{ID: "c0000001", DrillID: r.DrillID, App: "shop", Expect: "shop", ExpiresAt: time.Now().Add(time.Minute), Job: []byte(`{"id":"x"}`)}
	if err := s.CreatePending(ctx, p); err != nil {
		t.Fatal(err)
	}
	// A confirmation no parked drill waits for is not listed.
	if err := s.CreatePending(ctx, pgstate.Pending{ID: "c0000002", DrillID: r.DrillID, App: "shop", ExpiresAt: time.Now().Add(time.Minute), Job: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	unposted := func() []string {
		t.Helper()
		list, err := open().UnpostedPending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, q := range list {
			ids = append(ids, q.ID+"="+q.PromptTS)
		}
		return ids
	}
	if got := unposted(); len(got) != 1 || got[0] != "c0000001=" {
		t.Fatalf("unposted %v, want the parked drill's prompt", got)
	}
	wins := 0
	for _, st := range []*pgstate.Store{s, open(), open()} {
		if ok, err := st.ClaimPendingPrompt(ctx, p.ID, ""); err != nil {
			t.Fatal(err)
		} else if ok {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d claims won, want 1", wins)
	}
	// This process claimed it and lives: nobody else posts it.
	if got := unposted(); len(got) != 0 {
		t.Fatalf("unposted %v while a live process posts it", got)
	}
	host, _ := os.Hostname()
	for _, c := range []struct {
		claim string
		stale bool
	}{
		{fmt.Sprintf("posting:%s:%d", pgstate.OwnerLike(1<<22+7, "1"), time.Now().Unix()), true},      // dead here
		{fmt.Sprintf("posting:%s:%d", pgstate.OwnerLike(os.Getpid(), "1"), time.Now().Unix()), true},  // dead here, its pid now this process's
		{fmt.Sprintf("posting:other/%d:%d", 42, time.Now().Unix()), false},                            // another machine, just now
		{fmt.Sprintf("posting:other/%d:%d", 42, time.Now().Add(-10*time.Minute).Unix()), true},        // another machine, long silent
		{fmt.Sprintf("posting:%s:%d", pgstate.OwnerLike(os.Getpid(), ""), time.Now().Unix()), false},  // alive here, just now
		{fmt.Sprintf("posting:%s/%d:%d", host, os.Getpid(), time.Now().Add(-time.Hour).Unix()), true}, // a pid check never says alive
	} {
		if err := s.SetPendingPromptTS(ctx, p.ID, c.claim); err != nil {
			t.Fatal(err)
		}
		got := unposted()
		if stale := len(got) == 1; stale != c.stale {
			t.Errorf("claim %q: listed %v, want stale %v", c.claim, got, c.stale)
		}
		if c.stale {
			if ok, err := open().ClaimPendingPrompt(ctx, p.ID, c.claim); err != nil || !ok {
				t.Errorf("reclaiming the stale %q: %v %v", c.claim, ok, err)
			}
		}
	}
}

// TestPark_RefusedAfterACancel: a drill cancelled from another process
// while it ran does not park at its next confirmation: it ends, undone.
func TestPark_RefusedAfterACancel(t *testing.T) {
	t.Parallel()
	s, open := newParkState(t)
	ctx := t.Context()
	r := rec("shop")
	release, err := s.Begin(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if running, err := open().RequestCancel(ctx, r.DrillID, "U9"); err != nil || !running {
		t.Fatalf("cancel: %v %v", running, err)
	}
	err = s.Park(ctx, r.DrillID, checkpoint(t, "T-1"), time.Now().Add(time.Minute))
	if drill.ErrorCode(err) != drill.ECANCELED || !strings.Contains(err.Error(), "U9") {
		t.Fatalf("park after a cancel: %v, want cancelled by U9", err)
	}
	if list, err := s.Running(ctx); err != nil || len(list) != 1 || list[0].Parked() {
		t.Fatalf("running %+v %v, want the drill not parked", list, err)
	}
}
