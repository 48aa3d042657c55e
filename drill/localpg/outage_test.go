package localpg_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// outageDuring makes the state database unreachable from the start of the
// first restore (in place or into a new database) for lasts: the restore goes on meanwhile, and the
// journal writes after it meet the outage too. ended is closed when the
// outage is over.
type outageDuring struct {
	drill.EmergencyProvider
	outage *drilltest.StateOutage
	lasts  time.Duration
	once   *sync.Once
	ended  chan struct{}
	// relocked, when set, makes the restore wait for the outage's end and
	// then tells whether drillID's lock was taken again within seconds.
	relocked *bool
	drillID  string
}

func (o outageDuring) RestoreProduction(ctx context.Context, app string, b drill.Backup, proof drill.Confirmation, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	return o.during(ctx, func() (drill.RestoreResult, error) {
		return o.EmergencyProvider.RestoreProduction(ctx, app, b, proof, progress)
	})
}

func (o outageDuring) Restore(ctx context.Context, b drill.Backup, target drill.Database, progress drill.ProgressFunc) (drill.RestoreResult, error) {
	return o.during(ctx, func() (drill.RestoreResult, error) { return o.EmergencyProvider.Restore(ctx, b, target, progress) })
}

// during runs restore, the first one inside the outage.
func (o outageDuring) during(ctx context.Context, restore func() (drill.RestoreResult, error)) (drill.RestoreResult, error) {
	first := false
	o.once.Do(func() {
		first = true
		o.outage.Begin()
		time.AfterFunc(o.lasts, func() {
			o.outage.End()
			close(o.ended)
		})
		// Long enough for the owner to find its lock connection dead.
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
	})
	if err := ctx.Err(); err != nil {
		return drill.RestoreResult{}, err
	}
	res, err := restore()
	if first && err == nil && o.relocked != nil {
		<-o.ended
		*o.relocked = lockTakenAgain(ctx, o.drillID)
	}
	return res, err
}

// lockTakenAgain waits up to 3 lock checks for some session to hold
// drillID's lock.
func lockTakenAgain(ctx context.Context, drillID string) bool {
	conn, err := pgx.Connect(ctx, drilltest.ServerURL())
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	for range 60 {
		var held bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid = hashtext($1)::oid)`, drillID).Scan(&held); err == nil && held {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// outageBundle is an emergency restore in place run across a state
// database outage.
type outageBundle struct {
	app   string
	p     drill.EmergencyProvider
	store *pgstate.Store
	rec   *drill.Recorder
	ended chan struct{}
	rep   *drill.Report
	err   error
	// id is the drill's; relocked says whether its lock was taken again
	// after an outage within the bound.
	id       string
	relocked *bool
}

// restoreAcrossOutage restores (into), a backup of a new app whose
// 50 rows were then cut to 10, while the state database (waited for up to
// bound) is unreachable for lasts from the start of the restore.
func restoreAcrossOutage(t *testing.T, into drill.Into, noSafety bool, bound, lasts time.Duration) *outageBundle {
	t.Helper()
	x := &outageBundle{app: newApp(t), rec: &drill.Recorder{}, ended: make(chan struct{}), id: drill.NewDrillID()}
	if bound > lasts {
		x.relocked = new(bool)
	}
	p := newProvider(t)
	x.p = p
	b, err := (&drill.Runner{Provider: p}).Capture(context.Background(), x.app)
	if err != nil {
		t.Fatal(err)
	}
	drilltest.Exec(t, x.app, `DELETE FROM drill_items WHERE id > 10`) // the damage
	var outage *drilltest.StateOutage
	x.store, outage = drilltest.NewOutageStateStore(t)
	x.store.SetOutage(bound)
	r := &drill.Runner{Provider: outageDuring{EmergencyProvider: p, outage: outage, lasts: lasts, once: &sync.Once{}, ended: x.ended,
		relocked: x.relocked, drillID: x.id},
		Confirmer: drilltest.AppConfirmer("U-ONCALL"), Journal: x.store, Sink: x.rec}
	x.rep, x.err = r.Restore(context.Background(), drill.RestoreOptions{App: x.app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num},
		Into: into, NoSafetyBackup: noSafety, DrillID: x.id})
	return x
}

// said tells whether an event's message contains text, in any case.
func (x *outageBundle) said(text string) bool {
	for _, e := range x.rec.Events() {
		if strings.Contains(strings.ToLower(e.Message), text) {
			return true
		}
	}
	return false
}

func safetyName(noSafety bool) string {
	if noSafety {
		return "NoSafetyBackup"
	}
	return "WithSafetyBackup"
}

// A few seconds' outage of the state database in the middle of an
// emergency restore in place (its role may not log in, its sessions are
// ended) pauses the journal and goes on: the restore completes with the
// backup's data, in place with or without a safety backup and into a new
// database, the drill holds its lock again, and it is journaled as passed
// once the state database is back.
func TestEmergency_StateOutageMidRestoreCompletesWithTheBackup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		into     drill.Into
		noSafety bool
	}{{drill.IntoProduction, false}, {drill.IntoProduction, true}, {drill.IntoNew, false}} {
		t.Run(string(tc.into)+"/"+safetyName(tc.noSafety), func(t *testing.T) {
			t.Parallel()
			x := restoreAcrossOutage(t, tc.into, tc.noSafety, pgstate.DefaultOutage, 5*time.Second)
			if x.err != nil {
				t.Fatalf("the restore failed across a state database outage: %v (%s); steps %+v", x.err, drill.ErrorCode(x.err), x.rep.Steps)
			}
			if rows, maintenance := countAndMaintenance(t, x.app); rows != 50 || maintenance {
				t.Errorf("production holds %d rows (want the backup's 50), in maintenance %v", rows, maintenance)
			}
			if !x.said("state database unreachable, retrying for up to 2m") {
				t.Error("no event said the state database was unreachable")
			}
			if !*x.relocked {
				t.Error("the drill did not take its lock again after the outage")
			}
			hist, err := x.store.History(context.Background(), x.app, 1)
			if err != nil || len(hist) != 1 || hist[0].Result != drill.Passed {
				t.Errorf("journaled history %+v %v: want the restore recorded as passed", hist, err)
			}
		})
	}
}

// An outage that outlasts the bound does not stop the restore in progress
// either, nor is it ever called a cancellation: the restore completes
// with the backup's data, production leaves maintenance, and the report
// says it could not be recorded. The journal still holds the rollback it
// could not drop; a resume afterwards does not restore the safety backup
// over production, which serves users again (a row written since stays).
func TestEmergency_StateOutagePastTheBoundEndsRestoredAndUnrecorded(t *testing.T) {
	t.Parallel()
	for _, noSafety := range []bool{false, true} {
		t.Run(safetyName(noSafety), func(t *testing.T) {
			t.Parallel()
			x := restoreAcrossOutage(t, drill.IntoProduction, noSafety, time.Second, 8*time.Second)
			if x.err != nil {
				t.Fatalf("the restore failed across a long state database outage: %v (%s); steps %+v", x.err, drill.ErrorCode(x.err), x.rep.Steps)
			}
			if x.said("cancel") {
				t.Error("an event called the outage a cancellation")
			}
			if !x.said("could not be recorded in the state database") {
				t.Errorf("the report does not say it could not be recorded: %v", x.rep.Warnings)
			}
			if rows, maintenance := countAndMaintenance(t, x.app); rows != 50 || maintenance {
				t.Errorf("production holds %d rows (want the backup's 50), in maintenance %v", rows, maintenance)
			}
			<-x.ended
			drilltest.Exec(t, x.app, `INSERT INTO drill_items VALUES (1000, 'written after the restore')`)
			resumed := &drill.Recorder{}
			reps, err := (&drill.Runner{Provider: x.p, Sink: resumed}).Resume(context.Background(), x.store)
			if err != nil || len(reps) != 1 {
				t.Fatalf("resume: %d reports, %v; want the unrecorded drill", len(reps), err)
			}
			refused := false
			for _, e := range resumed.Events() {
				refused = refused || strings.Contains(e.Message, "out of maintenance and serving users")
			}
			if !noSafety && !refused {
				t.Errorf("the resume did not say why it left the safety backup alone: %+v", resumed.Events())
			}
			if rows, maintenance := countAndMaintenance(t, x.app); rows != 51 || maintenance {
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
