package bot

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryPending_ResolveIsSingleUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := NewMemoryPending()
	if err := m.Create(ctx, Pending{ID: "c1", State: StatePending}); err != nil {
		t.Fatal(err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			state := StateConfirmed
			if i%2 == 1 {
				state = StateExpired
			}
			if _, ok, _ := m.Resolve(ctx, "c1", state, "U", "x", time.Now()); ok {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d resolutions won, want 1", wins.Load())
	}
	p, err := m.Wait(ctx, "c1")
	if err != nil || p.State == StatePending {
		t.Fatalf("wait: %+v %v", p, err)
	}
	if _, err := m.Get(ctx, "nope"); err != ErrNoPending {
		t.Fatalf("unknown id: %v", err)
	}
}
