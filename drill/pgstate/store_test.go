package pgstate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// newState makes a fresh state database, migrated, and returns a pool
// factory: each call is a separate "process" with its own pool.
func newState(t *testing.T) func() *pgstate.Store {
	t.Helper()
	name := drilltest.CreateDatabase(t, "state")
	open := func() *pgstate.Store {
		pool, err := pgxpool.NewWithConfig(context.Background(), poolConfig(t, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		if _, err := pgstate.Migrate(context.Background(), pool); err != nil {
			t.Fatal(err)
		}
		return pgstate.New(pool)
	}
	return open
}

func poolConfig(t *testing.T, db string) *pgxpool.Config {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(drilltest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Database = db
	return cfg
}

func rec(app string) drill.DrillRecord {
	return drill.DrillRecord{DrillID: drill.NewDrillID(), App: app, Provider: "local", Mode: drill.ModeFull, Requester: "U1", StartedAt: time.Now()}
}

func TestMigrate_FromEmptyAndAgain(t *testing.T) {
	t.Parallel()
	name := drilltest.CreateDatabase(t, "state")
	pool, err := pgxpool.NewWithConfig(context.Background(), poolConfig(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	n, err := pgstate.Migrate(context.Background(), pool)
	if want := pgstate.MigrationCount(); err != nil || n != want || n < 5 {
		t.Fatalf("first migrate: %d, %v; want %d", n, err, want)
	}
	n, err = pgstate.Migrate(context.Background(), pool)
	if err != nil || n != 0 {
		t.Fatalf("second migrate applied %d, %v", n, err)
	}
	for _, table := range []string{"drills", "drill_steps", "drill_undo", "confirmations", "audit_log", "schedules", "drill_freeze", "pending_confirmations"} {
		var ok bool
		if err := pool.QueryRow(context.Background(), `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s missing", table)
		}
	}
	for _, column := range []string{"checkpoint", "parked_ticket", "parked_until"} {
		var ok bool
		if err := pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'drills' AND column_name = $1)`, column).Scan(&ok); err != nil || !ok {
			t.Errorf("column drills.%s missing", column)
		}
	}
}

func TestStore_OneDrillPerApp(t *testing.T) {
	t.Parallel()
	open := newState(t)
	a, b := open(), open()
	ctx := context.Background()
	first := rec("shop")
	release, err := a.Begin(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Begin(ctx, rec("shop"))
	if !errors.Is(err, drill.ErrLocked) || !strings.Contains(err.Error(), first.DrillID) || !strings.Contains(err.Error(), "U1") {
		t.Fatalf("second drill on the same app: %v, want locked naming %s and its requester", err, first.DrillID)
	}
	other, err := b.Begin(ctx, rec("blog"))
	if err != nil {
		t.Fatalf("another app is not held: %v", err)
	}
	other()
	if err := a.Finish(ctx, &drill.Report{DrillID: first.DrillID, App: "shop", Result: drill.Passed, EndedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	release()
	r2, err := b.Begin(ctx, rec("shop"))
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	r2()
}

func TestStore_AbandonedOnlyWhenOwnerDied(t *testing.T) {
	t.Parallel()
	open := newState(t)
	owner, resumer := open(), open()
	ctx := context.Background()
	live, dead := rec("live-app"), rec("dead-app")
	releaseLive, err := owner.Begin(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseLive()
	releaseDead, err := owner.Begin(ctx, dead)
	if err != nil {
		t.Fatal(err)
	}
	id, err := owner.PushUndo(ctx, dead.DrillID, drill.UndoRecord{Step: "maintenance_on", Kind: drill.UndoMaintenance, App: "dead-app", DrillID: dead.DrillID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.PushUndo(ctx, dead.DrillID, drill.UndoRecord{Step: "provision", Kind: drill.UndoDestroyScratch}); err != nil {
		t.Fatal(err)
	}
	if err := owner.Step(ctx, dead.DrillID, drill.StepRecord{Name: "capture", Status: drill.StatusSucceeded}); err != nil {
		t.Fatal(err)
	}
	if err := owner.DropUndo(ctx, dead.DrillID, id); err != nil {
		t.Fatal(err)
	}
	got, err := resumer.Abandoned(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("abandoned while both owners live: %+v %v", got, err)
	}
	releaseDead() // the owner's connection dies: Postgres drops its locks
	got, err = resumer.Abandoned(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("abandoned %+v %v: an owner whose connection died but whose process lives is not dead", got, err)
	}
	if err := owner.ExpireOwner(ctx, dead.DrillID); err != nil { // now its process is gone too
		t.Fatal(err)
	}
	got, err = resumer.Abandoned(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Record.DrillID != dead.DrillID {
		t.Fatalf("abandoned %+v, want only %s", got, dead.DrillID)
	}
	if len(got[0].Undo) != 1 || got[0].Undo[0].Kind != drill.UndoDestroyScratch || len(got[0].Steps) != 1 {
		t.Errorf("undo %+v steps %+v", got[0].Undo, got[0].Steps)
	}
	// While one resumer holds it, no other takes it.
	again, err := open().Abandoned(ctx)
	if err != nil || len(again) != 0 {
		t.Errorf("a second resumer took a claimed drill: %+v %v", again, err)
	}
	// While it is being resumed, its app is held.
	if _, err := open().Begin(ctx, rec("dead-app")); !errors.Is(err, drill.ErrLocked) {
		t.Errorf("begin on an app being resumed: %v, want locked", err)
	}
	// A resumer that dies too leaves it abandoned: a new drill is told to
	// resume first.
	got[0].Release()
	if _, err := open().Begin(ctx, rec("dead-app")); err == nil || !strings.Contains(err.Error(), "resume") {
		t.Errorf("begin on an app with an abandoned drill: %v", err)
	}
}

func TestStore_FreezeAndAudit(t *testing.T) {
	t.Parallel()
	open := newState(t)
	s := open()
	ctx := context.Background()
	if err := s.SetFreeze(ctx, true, "U-LEAD", "incident 42"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Begin(ctx, rec("shop"))
	if !errors.Is(err, drill.ErrFrozen) || !strings.Contains(err.Error(), "incident 42") {
		t.Fatalf("begin while frozen: %v", err)
	}
	forced := rec("shop")
	forced.Force = true
	release, err := s.Begin(ctx, forced)
	if err != nil {
		t.Fatalf("forced begin: %v", err)
	}
	release()
	if err := s.SetFreeze(ctx, false, "U-LEAD", "over"); err != nil {
		t.Fatal(err)
	}
	r2, err := s.Begin(ctx, rec("blog"))
	if err != nil {
		t.Fatal(err)
	}
	r2()
	if err := s.Audit(ctx, "x", "probe", "", "", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.AuditTamper(ctx); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("the audit log could be changed: %v", err)
	}
}

func TestStore_HistoryAndReport(t *testing.T) {
	t.Parallel()
	open := newState(t)
	s := open()
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		r := rec("shop")
		r.StartedAt = time.Now().Add(time.Duration(i) * time.Minute)
		release, err := s.Begin(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		rep := &drill.Report{DrillID: r.DrillID, App: "shop", Result: drill.Passed, RestoreSeconds: float64(i + 1), EndedAt: time.Now(),
			Confirmations: []drill.Confirmation{{Step: "promote", User: "U2", Typed: "shop"}}}
		if err := s.Finish(ctx, rep); err != nil {
			t.Fatal(err)
		}
		release()
		ids = append(ids, r.DrillID)
	}
	h, err := s.History(ctx, "shop", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[0].DrillID != ids[2] || h[1].DrillID != ids[1] || h[0].RestoreSeconds != 3 || h[0].Confirmations[0].User != "U2" {
		t.Fatalf("history: %+v", h)
	}
	rep, err := s.Report(ctx, ids[0])
	if err != nil || rep.DrillID != ids[0] || rep.Result != drill.Passed {
		t.Fatalf("report: %+v %v", rep, err)
	}
	if _, err := s.Report(ctx, "dnope123"); drill.ErrorCode(err) != drill.ENOTFOUND {
		t.Errorf("unknown drill: %v", err)
	}
}
