package localpg_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// An outage that outlasts the bound does not stop the restore in progress
// either, nor is it ever called a cancellation: the restore completes
// with the backup's data, production leaves maintenance, and the report
// says it could not be recorded. The journal still holds the rollback it
// could not drop; a resume afterwards does not restore the safety backup
// over production, which serves users again (a row written since stays).
func TestEmergency_StateOutagePastTheBoundEndsRestoredAndUnrecorded(t *testing.T) {
	t.Parallel()
	for _, noSafety := range []bool{false, true} {
		name := "WithSafetyBackup"
		if noSafety {
			name = "NoSafetyBackup"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			app, p := newApp(t), newProvider(t)
			b, err := (&drill.Runner{Provider: p}).Capture(ctx, app)
			if err != nil {
				t.Fatal(err)
			}
			drilltest.Exec(t, app, `DELETE FROM drill_items WHERE id > 10`) // the damage
			store, outage := drilltest.NewOutageStateStore(t)
			store.SetOutage(time.Second)
			o := drilltest.NewOutageDuring(p, outage, 8*time.Second)
			rec := &drill.Recorder{}
			rep, err := (&drill.Runner{Provider: o, Confirmer: drilltest.AppConfirmer("U-ONCALL"), Journal: store, Sink: rec}).Restore(ctx,
				drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}, Into: drill.IntoProduction, NoSafetyBackup: noSafety})
			if err != nil {
				t.Fatalf("the restore failed across a long state database outage: %v (%s); steps %+v", err, drill.ErrorCode(err), rep.Steps)
			}
			if drilltest.Said(rec, "cancel") {
				t.Error("an event called the outage a cancellation")
			}
			if !drilltest.Said(rec, "could not be recorded in the state database") {
				t.Errorf("the report does not say it could not be recorded: %v", rep.Warnings)
			}
			if rows, maintenance := countAndMaintenance(t, app); rows != 50 || maintenance {
				t.Errorf("production holds %d rows (want the backup's 50), in maintenance %v", rows, maintenance)
			}
			<-o.Ended
			drilltest.Exec(t, app, `INSERT INTO drill_items VALUES (1000, 'written after the restore')`)
			resumed := &drill.Recorder{}
			reps, err := (&drill.Runner{Provider: p, Sink: resumed}).Resume(ctx, store)
			if err != nil || len(reps) != 1 {
				t.Fatalf("resume: %d reports, %v; want the unrecorded drill", len(reps), err)
			}
			if !noSafety && !drilltest.Said(resumed, "out of maintenance and serving users") {
				t.Errorf("the resume did not say why it left the safety backup alone: %+v", resumed.Events())
			}
			if rows, maintenance := countAndMaintenance(t, app); rows != 51 || maintenance {
				t.Errorf("after the resume production holds %d rows (want 51: the backup's and the one written since), in maintenance %v", rows, maintenance)
			}
		})
	}
}

func countAndMaintenance(t *testing.T, app string) (int, bool) {
	t.Helper()
	var rows int
	var limit int
	if err := drilltest.Connect(t, app).QueryRow(context.Background(), `SELECT count(*) FROM drill_items`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := drilltest.Connect(t, "").QueryRow(context.Background(), `SELECT datconnlimit FROM pg_database WHERE datname = $1`, app).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	return rows, limit == 0
}

// While a drill's lock connection is dropped (its backend ended) and
// before the drill takes its lock again, a second drill on the same app is
// refused, naming the first: the first is alive by its row, whatever the
// lock says. The first drill then finishes and passes.
func TestDrill_SecondRefusedWhileTheFirstHasLostItsLockConnection(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	store, name := drilltest.NewNamedStateStore(t)
	id := drill.NewDrillID()
	f := drilltest.NewFaulty(newProvider(t))
	var second error
	tried := false
	f.After = func(method string, _ ...any) {
		if method != "Capture" {
			return
		}
		tried = true
		admin := drilltest.Connect(t, "")
		ctx := context.Background()
		var pid int
		if err := admin.QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = hashtext($1)::oid`, id).Scan(&pid); err != nil {
			t.Error(err)
			return
		}
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
			t.Error(err)
			return
		}
		// Until the server has ended it, the lock is still held.
		for range 100 {
			var held bool
			if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = hashtext($1)::oid)`, id).Scan(&held); err != nil || !held {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		other := drilltest.OpenStateStore(t, name)
		rec := drill.DrillRecord{DrillID: drill.NewDrillID(), App: app, Provider: "local", Mode: drill.ModeVerify, Requester: "U2", StartedAt: time.Now()}
		release, err := other.Begin(ctx, rec)
		if err == nil {
			release()
		}
		second = err
	}
	rep, err := (&drill.Runner{Provider: f, Journal: store}).Run(context.Background(), drill.Options{App: app, DrillID: id})
	if !tried {
		t.Fatal("the drill never captured")
	}
	if !errors.Is(second, drill.ErrLocked) || !strings.Contains(drill.ErrorMessage(second), "held by drill "+id) {
		t.Errorf("second drill on %s while the first's lock connection was down: %v, want refused as held by drill %s", app, second, id)
	}
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("the first drill: %v %s, want passed; steps %+v", err, rep.Result, rep.Steps)
	}
}
