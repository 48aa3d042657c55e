package localpg_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// outageDuring makes the state database unreachable from the start of the
// first in-place restore for outageFor: the restore goes on meanwhile, and
// the journal writes after it meet the outage too.
type outageDuring struct {
	drill.EmergencyProvider
	outage *drilltest.StateOutage
	once   *sync.Once
}

const outageFor = 5 * time.Second

func (o outageDuring) RestoreProduction(ctx context.Context, app string, b drill.Backup, proof drill.Confirmation, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	o.once.Do(func() {
		o.outage.Begin()
		time.AfterFunc(outageFor, o.outage.End)
		// Long enough for the owner to find its lock connection dead.
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
	})
	if err := ctx.Err(); err != nil {
		return drill.RestoreResult{}, err
	}
	return o.EmergencyProvider.RestoreProduction(ctx, app, b, proof, progress)
}

// A few seconds' outage of the state database in the middle of an
// emergency restore in place (its role may not log in, its sessions are
// ended) pauses the journal and goes on: the restore completes with the
// backup's data, with or without a safety backup, and the drill is
// journaled as passed once the state database is back.
func TestEmergency_StateOutageMidRestoreCompletesWithTheBackup(t *testing.T) {
	t.Parallel()
	for _, noSafety := range []bool{false, true} {
		name := "WithSafetyBackup"
		if noSafety {
			name = "NoSafetyBackup"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app := newApp(t)
			p := newProvider(t)
			b, err := (&drill.Runner{Provider: p}).Capture(context.Background(), app)
			if err != nil {
				t.Fatal(err)
			}
			drilltest.Exec(t, app, `DELETE FROM drill_items WHERE id > 10`) // the damage
			store, outage := drilltest.NewOutageStateStore(t)
			rec := &drill.Recorder{}
			r := &drill.Runner{Provider: outageDuring{EmergencyProvider: p, outage: outage, once: &sync.Once{}},
				Confirmer: drilltest.AppConfirmer("U-ONCALL"), Journal: store, Sink: rec}
			rep, err := r.Restore(context.Background(), drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num},
				Into: drill.IntoProduction, NoSafetyBackup: noSafety})
			if err != nil {
				t.Fatalf("the restore failed across a state database outage: %v (%s); steps %+v", err, drill.ErrorCode(err), rep.Steps)
			}
			rows, maintenance := countAndMaintenance(t, app)
			if rows != 50 || maintenance {
				t.Errorf("production holds %d rows (want the backup's 50), in maintenance %v", rows, maintenance)
			}
			saw := false
			for _, e := range rec.Events() {
				saw = saw || strings.Contains(strings.ToLower(e.Message), "state database unreachable, retrying for up to")
			}
			if !saw {
				t.Error("no event said the state database was unreachable")
			}
			hist, err := store.History(context.Background(), app, 1)
			if err != nil || len(hist) != 1 || hist[0].Result != drill.Passed {
				t.Errorf("journaled history %+v %v: want the restore recorded as passed", hist, err)
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
