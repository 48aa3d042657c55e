package pgstate_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// A drill left by a process that died is resumed once its lock is free,
// even when its owner had this process's hostname and pid (a restarted
// container's first process gets the pid of the one before it): the owner
// is who its random id says, and a pid check never says it is alive. A
// live owner of this very process (another store) whose lock connection
// died is not taken.
func TestResume_DeadOwnerWithThisHostAndPidIsTakenOnceItsLockIsFree(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name   string
		owner  string
		silent time.Duration
		dead   bool
	}{
		{"PreviousProcessWithThisPid", pgstate.OwnerLike(os.Getpid(), "1"), 0, true},
		{"OldNameWithThisPidSilentPastTheLease", fmt.Sprintf("%s/%d", host, os.Getpid()), time.Hour, true},
		{"AnotherStoreOfThisProcess", pgstate.OwnerLike(os.Getpid(), ""), 0, false},
		{"OldNameWithThisPidJustHeardOf", fmt.Sprintf("%s/%d", host, os.Getpid()), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			open := newState(t)
			prev, resumer := open(), open()
			ctx := context.Background()
			r := rec("shop")
			release, err := prev.Begin(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			release() // its connection is gone: its lock is free
			if err := prev.SetOwner(ctx, r.DrillID, tc.owner, tc.silent); err != nil {
				t.Fatal(err)
			}
			if alive, err := resumer.DrillAlive(ctx, r.DrillID); err != nil || alive == tc.dead {
				t.Errorf("owner %q silent %s: alive %v, %v; want %v", tc.owner, tc.silent, alive, err, !tc.dead)
			}
			got, err := resumer.Abandoned(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range got {
				a.Release()
			}
			if taken := len(got) == 1; taken != tc.dead {
				t.Errorf("owner %q silent %s: taken over %v, want %v", tc.owner, tc.silent, taken, tc.dead)
			}
		})
	}
}

// A live owner in another pid namespace with this hostname (containers
// sharing a host name), whose pid runs no process here, keeps its lock:
// its session is never ended on a pid check, and its drill is not taken.
func TestResume_LiveOwnerInAnotherPidNamespaceKeepsItsLockSession(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	for _, tc := range []struct{ name, owner string }{
		{"OtherNamespace", pgstate.OwnerIn("1", 1<<22+7, "1")},
		{"OldName", fmt.Sprintf("%s/%d", host, 1<<22+7)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			open := newState(t)
			live, resumer := open(), open()
			ctx := context.Background()
			r := rec("shop")
			release, err := live.Begin(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			holder, err := live.LockHolder(ctx, r.DrillID)
			if err != nil || holder == 0 {
				t.Fatalf("lock holder %d, %v", holder, err)
			}
			if err := live.SetOwner(ctx, r.DrillID, tc.owner, 0); err != nil {
				t.Fatal(err)
			}
			got, err := resumer.Abandoned(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range got {
				a.Release()
			}
			if len(got) != 0 {
				t.Errorf("a live owner's drill was taken over: %+v", got)
			}
			if now, err := live.LockHolder(ctx, r.DrillID); err != nil || now != holder {
				t.Errorf("the lock is held by session %d (%v), want the owner's %d, never terminated", now, err, holder)
			}
			select {
			case <-live.Lost(r.DrillID):
				t.Error("the live owner lost its drill")
			default:
			}
		})
	}
}

// An undo record whose insert was made but whose answer was lost with the
// connection is journaled once, not twice, when the write is tried again:
// a resume would otherwise undo the change twice.
func TestPushUndo_AnswerLostRecordsTheUndoOnce(t *testing.T) {
	t.Parallel()
	s := newState(t)()
	ctx := context.Background()
	r := rec("shop")
	release, err := s.Begin(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	u := drill.UndoRecord{Step: "maintenance_on", Kind: drill.UndoMaintenance, App: "shop", DrillID: r.DrillID}
	first, err := s.PushUndo(ctx, r.DrillID, u)
	if err != nil {
		t.Fatal(err)
	}
	s.LoseAnswers(1)
	second, err := s.PushUndo(ctx, r.DrillID, u) // the same record again, legitimately
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.UndoCount(ctx, r.DrillID); err != nil || n != 2 || second == first {
		t.Errorf("%d undo records (%v), ids %d and %d: want two, each journaled once", n, err, first, second)
	}
}
