package pgstate_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// Two processes (two stores on one state database) resolve a confirmation
// at once: exactly one wins, and a waiter on a third sees the result.
func TestStore_PendingResolvesOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	open := newState(t)
	a, b, waiter := open(), open(), open()
	ctx := context.Background()
	exp := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	p := pgstate.Pending{ID: "c1234567", DrillID: "d1234567", App: "shop", Step: "promote", Action: "promote the scratch database",
		Expect: "shop", Requester: "U1", Plan: []string{"one", "two"}, Channel: "C1", ThreadTS: "1.1", ExpiresAt: exp}
	if err := a.CreatePending(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPendingPromptTS(ctx, p.ID, "2.2"); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetPending(ctx, p.ID)
	if err != nil || got.State != "pending" || got.PromptTS != "2.2" || len(got.Plan) != 2 || !got.ExpiresAt.Equal(exp) || !got.At.IsZero() {
		t.Fatalf("get: %+v %v", got, err)
	}

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	waited := make(chan pgstate.Pending, 1)
	go func() {
		w, err := waiter.WaitPending(wctx, p.ID, 10*time.Millisecond)
		if err != nil {
			t.Errorf("wait: %v", err)
		}
		waited <- w
	}()

	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			s, state, by := a, "confirmed", "U2"
			if i%2 == 1 {
				s, state, by = b, "expired", ""
			}
			if _, ok, err := s.ResolvePending(ctx, p.ID, state, by, "shop", time.Now()); err != nil {
				t.Error(err)
			} else if ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d resolutions won, want 1", wins.Load())
	}
	w := <-waited
	if w.State == "pending" || w.At.IsZero() {
		t.Fatalf("waiter saw %+v", w)
	}
	again, ok, err := b.ResolvePending(ctx, p.ID, "cancelled", "", "", time.Now())
	if ok || err != nil || again.State != w.State {
		t.Fatalf("late resolve: %+v %v %v", again, ok, err)
	}
	if _, err := a.GetPending(ctx, "nope"); !errors.Is(err, pgstate.ErrNoPending) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, _, err := a.ResolvePending(ctx, "nope", "confirmed", "U", "x", time.Now()); !errors.Is(err, pgstate.ErrNoPending) {
		t.Fatalf("resolve unknown id: %v", err)
	}
}

// A waiter gives up when its context ends.
func TestStore_WaitPendingEndsWithContext(t *testing.T) {
	t.Parallel()
	s := newState(t)()
	ctx := context.Background()
	if err := s.CreatePending(ctx, pgstate.Pending{ID: "c7654321", DrillID: "d1", App: "a", Expect: "a", ExpiresAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.WaitPending(wctx, "c7654321", time.Millisecond); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait: %v", err)
	}
}

// RunningDrills lists unfinished drills of every owner; DrillAlive tells a
// live owner from a dead one.
func TestStore_RunningDrillsAndAlive(t *testing.T) {
	t.Parallel()
	open := newState(t)
	s := open()
	ctx := context.Background()
	live, dead := rec("live-app"), rec("dead-app")
	live.Channel, live.ThreadTS = "C1", "1.1"
	releaseLive, err := s.Begin(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseLive()
	releaseDead, err := s.Begin(ctx, dead)
	if err != nil {
		t.Fatal(err)
	}
	releaseDead()
	if err := s.ExpireOwner(ctx, dead.DrillID); err != nil { // and its process is gone
		t.Fatal(err)
	}
	got, err := open().RunningDrills(ctx)
	if err != nil || len(got) != 2 {
		t.Fatalf("running: %+v %v", got, err)
	}
	for _, r := range got {
		alive, err := s.DrillAlive(ctx, r.DrillID)
		if err != nil || alive != (r.DrillID == live.DrillID) {
			t.Errorf("%s alive %v, %v", r.App, alive, err)
		}
		if r.DrillID == live.DrillID && (r.Channel != "C1" || r.ThreadTS != "1.1") {
			t.Errorf("record %+v lost its thread", r)
		}
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// An expired confirmation cannot be confirmed, though it may still be
// expired or cancelled; CancelPendingOf cancels a drill's open ones.
func TestStore_ConfirmRequiresNotExpired(t *testing.T) {
	t.Parallel()
	s := newState(t)()
	ctx := context.Background()
	old := pgstate.Pending{ID: "cold0001", DrillID: "d1", App: "shop", Expect: "shop", ExpiresAt: time.Now().Add(-time.Second)}
	if err := s.CreatePending(ctx, old); err != nil {
		t.Fatal(err)
	}
	if p, ok, err := s.ResolvePending(ctx, old.ID, "confirmed", "U2", "shop", time.Now()); err != nil || ok || p.State != "pending" {
		t.Fatalf("confirmed after expiry: %+v %v %v", p, ok, err)
	}
	if _, ok, err := s.ResolvePending(ctx, old.ID, "expired", "", "", time.Now()); err != nil || !ok {
		t.Fatalf("expire: %v %v", ok, err)
	}
	for _, id := range []string{"cnew0001", "cnew0002"} {
		if err := s.CreatePending(ctx, pgstate.Pending{ID: id, DrillID: "d2", App: "shop", Expect: "shop", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := s.ResolvePending(ctx, "cnew0001", "confirmed", "U2", "shop", time.Now()); err != nil || !ok {
		t.Fatalf("confirm in time: %v %v", ok, err)
	}
	if ids, err := s.CancelPendingOf(ctx, "d2", "", time.Now()); err != nil || len(ids) != 1 || ids[0] != "cnew0002" {
		t.Fatalf("cancel: %v %v", ids, err)
	}
	if p, _ := s.GetPending(ctx, "cnew0002"); p.State != "cancelled" {
		t.Fatalf("still %s", p.State)
	}
	if p, _ := s.GetPending(ctx, "cnew0001"); p.State != "confirmed" {
		t.Fatalf("a confirmed one became %s", p.State)
	}
}

// TestStore_PurgePending deletes only confirmations answered, or expired,
// more than the retention ago.
func TestStore_PurgePending(t *testing.T) {
	t.Parallel()
	s, name := drilltest.NewNamedStateStore(t)
	ctx := context.Background()
	old := time.Now().Add(-pgstate.PendingRetention - time.Hour)
	for _, p := range []pgstate.Pending{
		{ID: "cold0001", DrillID: "d1", App: "shop", ExpiresAt: old},                       // answered long ago
		{ID: "cold0002", DrillID: "d1", App: "shop", ExpiresAt: old},                       // never answered, expired long ago
		{ID: "cnew0003", DrillID: "d2", App: "shop", ExpiresAt: time.Now().Add(time.Hour)}, // waiting
		{ID: "cnew0004", DrillID: "d2", App: "shop", ExpiresAt: time.Now().Add(time.Hour)}, // answered just now
	} {
		if err := s.CreatePending(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := s.ResolvePending(ctx, "cnew0004", "cancelled", "", "", time.Now()); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok, err := s.ResolvePending(ctx, "cold0001", "expired", "", "", old); err != nil || !ok {
		t.Fatal(ok, err)
	}
	drilltest.Exec(t, name, `UPDATE pending_confirmations SET resolved_at = now() - interval '31 days' WHERE id = 'cold0001'`)
	n, err := s.PurgePending(ctx)
	if err != nil || n != 2 {
		t.Fatalf("purged %d (%v), want the two old ones", n, err)
	}
	for id, want := range map[string]bool{"cold0001": false, "cold0002": false, "cnew0003": true, "cnew0004": true} {
		if _, err := s.GetPending(ctx, id); (err == nil) != want {
			t.Errorf("%s kept %v, want %v (%v)", id, err == nil, want, err)
		}
	}
}
