package drilltest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
)

// ExerciseEmergency runs the emergency-restore suite against a provider
// that implements drill.EmergencyProvider: both targets end to end, the
// checks of the typed proof, a restore that fails half-way, and bad input.
func ExerciseEmergency(t *testing.T, h Harness) {
	t.Helper()
	ctx := context.Background()

	// prepare makes an app, backs it up with the runner's capture, then
	// damages production the way an incident would.
	prepare := func(t *testing.T) (drill.EmergencyProvider, string, drill.Backup, drill.Database) {
		t.Helper()
		p, app := h.Setup(t)
		ep, ok := p.(drill.EmergencyProvider)
		if !ok {
			t.Fatalf("%s provider does not implement drill.EmergencyProvider", p.Name())
		}
		b, err := (&drill.Runner{Provider: p}).Capture(ctx, app)
		if err != nil {
			t.Fatalf("capture: %v", err)
		}
		prod, err := p.Serving(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		h.Exec(t, prod, `DELETE FROM public.drill_items`)
		return ep, app, b, prod
	}
	items := func(t *testing.T, p drill.Provider, db drill.Database) int64 {
		t.Helper()
		fp, err := p.Fingerprint(ctx, db)
		if err != nil {
			t.Fatalf("fingerprint %s: %v", db.Name, err)
		}
		for _, tb := range fp.Tables {
			if tb.Name == "drill_items" {
				return tb.Rows
			}
		}
		t.Fatalf("no drill_items in %s", db.Name)
		return 0
	}
	ref := func(b drill.Backup) drill.BackupRef { return drill.BackupRef{Kind: drill.BackupByID, Num: b.Num} }

	t.Run("IntoNew", func(t *testing.T) {
		t.Parallel()
		p, app, b, damaged := prepare(t)
		store := NewStateStore(t)
		// A drill of the backup, on record, before the incident.
		if rep, err := (&drill.Runner{Provider: p, Journal: store}).Run(ctx, drill.Options{App: app, Backup: ref(b)}); err != nil {
			t.Fatalf("drill of %s: %v %+v", b.ID, err, rep.Steps)
		}
		rec := &drill.Recorder{}
		var asked []drill.ConfirmRequest
		confirmer := drill.ConfirmerFunc(func(ctx context.Context, req drill.ConfirmRequest) (drill.Confirmation, error) {
			asked = append(asked, req)
			return AppConfirmer("U-ONCALL").Confirm(ctx, req)
		})
		r := &drill.Runner{Provider: p, Confirmer: confirmer, Sink: rec, Journal: store, History: store}
		rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: ref(b), Requester: "U-ONCALL"})
		if err != nil || rep.Result != drill.Passed {
			t.Fatalf("restore failed: %v\n%+v", err, rep.Steps)
		}
		serving, err := p.Serving(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		if serving.ID == damaged.ID {
			t.Fatalf("%s is still served by the damaged database", app)
		}
		h.RequireCompanions(t, app, serving)
		if n := items(t, p, serving); n < 10 {
			t.Errorf("the restored database serves %d drill_items, want the backup's", n)
		}
		kept, err := p.Lookup(ctx, damaged)
		if err != nil {
			t.Fatalf("the damaged database is gone: %v", err)
		}
		if n := items(t, p, kept); n != 0 {
			t.Errorf("the kept database was changed: %d rows", n)
		}
		// Before the promote, people see how recent the restored data is.
		if _, ok := p.(drill.Freshener); ok && (len(asked) != 2 || !strings.Contains(strings.Join(asked[1].Plan, "\n"), "restored data")) {
			t.Errorf("the promote confirmation does not say how recent the data is: %+v", asked)
		}
		if rep.KeptDatabase != kept.Name || rep.NowServing != serving.Name || rep.RemoveKept == "" {
			t.Errorf("report: kept %q now_serving %q remove %q; platform: kept %q serving %q", rep.KeptDatabase, rep.NowServing, rep.RemoveKept, kept.Name, serving.Name)
		}
		if rep.SafetyBackup == nil || rep.SafetyBackup.ID == b.ID || !strings.Contains(rep.Rollback, rep.SafetyBackup.ID) {
			t.Errorf("safety backup %+v rollback %q", rep.SafetyBackup, rep.Rollback)
		}
		if len(rep.Confirmations) != 2 || rep.Confirmations[0].Typed != app || rep.Confirmations[1].Step != drill.StepPromote {
			t.Errorf("confirmations %+v", rep.Confirmations)
		}
		if !rep.Exact || !strings.Contains(rep.Verification, "match") {
			t.Logf("verification: %s", rep.Verification)
		}
		if !strings.Contains(rep.ProductionState, "restored from "+b.ID) {
			t.Errorf("production state %q", rep.ProductionState)
		}
		var plan []string
		for _, e := range rec.Events() {
			if e.Step == drill.StepPlan && e.Kind == drill.DrillNote {
				plan = append(plan, e.Message)
			}
		}
		joined := strings.Join(plan, "\n")
		for _, want := range []string{"safety backup", "was verified by drill", "Estimated time", "median of the last 1 drill)", "kept, untouched"} {
			if !strings.Contains(joined, want) {
				t.Errorf("the plan posted before the restore does not say %q:\n%s", want, joined)
			}
		}
		hist, err := store.History(ctx, app, 5)
		if err != nil || len(hist) != 2 || hist[0].DrillID != rep.DrillID || hist[0].SafetyBackup == nil {
			t.Errorf("the restore is not on record: %+v %v", hist, err)
		}
		// The restored database is production now: no drill may destroy it,
		// and the next drill runs on it.
		forged := serving
		forged.DrillID = rep.DrillID
		if err := p.DestroyScratch(ctx, forged); drill.ErrorCode(err) != drill.EREFUSED {
			t.Errorf("destroy of the adopted database: %v, want refused", err)
		}
		if rep, err := (&drill.Runner{Provider: p}).Run(ctx, drill.Options{App: app}); err != nil {
			t.Errorf("a drill after the restore failed: %v %+v", err, rep.Steps)
		}
	})

	// parkedRestore starts a journaled emergency restore into into, which
	// parks on its first confirmation; process makes the runner of another
	// process on the same platform and journal.
	parkedRestore := func(t *testing.T, into drill.Into) (p drill.EmergencyProvider, app string, b drill.Backup, prod drill.Database, id string, park *Parking, process func() *drill.Runner) {
		t.Helper()
		if h.Reopen == nil {
			t.Skip("the harness cannot open a second provider")
		}
		p, app, b, prod = prepare(t)
		store := NewStateStore(t)
		park = &Parking{}
		rep, err := (&drill.Runner{Provider: p, Confirmer: park, Journal: store}).Restore(ctx, drill.RestoreOptions{App: app, Backup: ref(b), Into: into, Requester: "U-ONCALL"})
		if !drill.IsParked(err) {
			t.Fatalf("err %v, want the restore parked on its confirmation", err)
		}
		process = func() *drill.Runner {
			return &drill.Runner{Provider: h.Reopen(t, app), Confirmer: park, Journal: store}
		}
		return p, app, b, prod, rep.DrillID, park, process
	}

	t.Run("ParkedRestoreGoesOnInAnotherProcess", func(t *testing.T) {
		t.Parallel()
		p, app, b, damaged, id, park, process := parkedRestore(t, drill.IntoNew)
		yes := drill.Answer{Confirmation: drill.Confirmation{User: "U-SECOND", Typed: app, At: time.Now()}}
		if left := h.Leftovers(t, app); len(left) != 0 {
			t.Errorf("the restore made %v before anyone confirmed it", left)
		}
		rep, err := process().Continue(ctx, id, park.Last(), yes)
		if !drill.IsParked(err) || park.Steps[len(park.Steps)-1] != drill.StepPromote {
			t.Fatalf("err %v (asked %v), want the restore parked again before the promote", err, park.Steps)
		}
		if serving, err := p.Serving(ctx, app); err != nil || serving.ID != damaged.ID {
			t.Fatalf("%s served by %+v (%v) before the promote was confirmed", app, serving, err)
		}
		rep, err = process().Continue(ctx, id, park.Last(), yes)
		if err != nil || rep.Result != drill.Passed {
			t.Fatalf("continued restore: %v\n%+v", err, rep.Steps)
		}
		serving, err := p.Serving(ctx, app)
		if err != nil || serving.ID == damaged.ID || items(t, p, serving) < 10 {
			t.Fatalf("%s served by %+v (%v), want the restored database", app, serving, err)
		}
		h.RequireCompanions(t, app, serving)
		if rep.SafetyBackup == nil || rep.NowServing != serving.Name || rep.KeptDatabase == "" || len(rep.Confirmations) != 2 || rep.Requester != "U-ONCALL" {
			t.Errorf("report: safety %+v now serving %q kept %q confirmations %+v requester %q", rep.SafetyBackup, rep.NowServing, rep.KeptDatabase, rep.Confirmations, rep.Requester)
		}
		if !strings.Contains(rep.ProductionState, "restored from "+b.ID) {
			t.Errorf("production state %q", rep.ProductionState)
		}
	})

	t.Run("ParkedInPlaceConfirmedRestoresInAnotherProcess", func(t *testing.T) {
		t.Parallel()
		p, app, b, prod, id, park, process := parkedRestore(t, drill.IntoProduction)
		// The app's name alone does not confirm a restore in place.
		rep, err := process().Continue(ctx, id, park.Last(), drill.Answer{Confirmation: drill.Confirmation{User: "U-SECOND", Typed: app}})
		if drill.ErrorCode(err) != drill.EREFUSED || rep.SafetyBackup != nil {
			t.Fatalf("in place confirmed with the app's name alone: %v (safety %+v)", err, rep.SafetyBackup)
		}
		if serving, err := p.Serving(ctx, app); err != nil || serving.ID != prod.ID || items(t, p, serving) != 0 || h.Maintenance(t, app) {
			t.Fatalf("a refused restore changed production: %+v %v", serving, err)
		}
		p, app, b, prod, id, park, process = parkedRestore(t, drill.IntoProduction)
		rep, err = process().Continue(ctx, id, park.Last(), drill.Answer{Confirmation: drill.Confirmation{User: "U-SECOND", Typed: drill.ProductionProof(app, b.ID), At: time.Now()}})
		if err != nil || rep.Result != drill.Passed {
			t.Fatalf("continued in-place restore: %v\n%+v", err, rep.Steps)
		}
		serving, err := p.Serving(ctx, app)
		if err != nil || serving.ID != prod.ID || items(t, p, serving) < 10 || h.Maintenance(t, app) {
			t.Fatalf("after the restore in place: served by %+v (%v, want %s), maintenance %v", serving, err, prod.ID, h.Maintenance(t, app))
		}
		if rep.SafetyBackup == nil || !strings.Contains(rep.Rollback, rep.SafetyBackup.ID) || len(rep.Confirmations) != 1 || rep.Confirmations[0].User != "U-SECOND" {
			t.Errorf("report: safety %+v rollback %q confirmations %+v", rep.SafetyBackup, rep.Rollback, rep.Confirmations)
		}
	})

	t.Run("ParkedInPlaceFailingRollsBackInAnotherProcess", func(t *testing.T) {
		t.Parallel()
		p, app, b, prod, id, park, process := parkedRestore(t, drill.IntoProduction)
		r := process()
		f := NewFaultyEmergency(r.Provider.(drill.EmergencyProvider))
		f.FailAfter("RestoreProduction", 1, drill.Errorf(drill.EFAILED, "injected failure after the restore wrote"))
		r.Provider = f
		rep, err := r.Continue(ctx, id, park.Last(), drill.Answer{Confirmation: drill.Confirmation{User: "U-SECOND", Typed: drill.ProductionProof(app, b.ID), At: time.Now()}})
		if err == nil {
			t.Fatal("the restore passed with a failure injected")
		}
		if n := items(t, p, prod); n != 0 || h.Maintenance(t, app) {
			t.Errorf("production holds %d drill_items (want 0: rolled back to the safety backup), maintenance %v", n, h.Maintenance(t, app))
		}
		if f.Calls("RestoreProduction") != 2 || rep.SafetyBackup == nil || !strings.Contains(rep.ProductionState, "rolled back to the safety backup "+rep.SafetyBackup.ID) {
			t.Errorf("%d in-place restores (want the restore and its rollback), production state %q", f.Calls("RestoreProduction"), rep.ProductionState)
		}
	})

	t.Run("ParkedInPlaceExpiringChangesNothing", func(t *testing.T) {
		t.Parallel()
		p, app, _, prod, id, park, process := parkedRestore(t, drill.IntoProduction)
		rep, err := process().Continue(ctx, id, park.Last(),
			drill.Answer{Err: drill.Wrap(drill.EREFUSED, drill.ErrExpired, "nobody typed it")})
		if !errors.Is(err, drill.ErrExpired) || rep.Result != drill.Failed || rep.SafetyBackup != nil {
			t.Fatalf("err %v result %s safety %+v, want expired before anything", err, rep.Result, rep.SafetyBackup)
		}
		serving, err := p.Serving(ctx, app)
		if err != nil || serving.ID != prod.ID || items(t, p, serving) != 0 || h.Maintenance(t, app) {
			t.Fatalf("production changed: served by %+v (%v), maintenance %v", serving, err, h.Maintenance(t, app))
		}
	})

	t.Run("IntoProduction", func(t *testing.T) {
		t.Parallel()
		p, app, b, prod := prepare(t)
		r := &drill.Runner{Provider: p, Confirmer: AppConfirmer("U-ONCALL")}
		rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: ref(b), Into: drill.IntoProduction})
		if err != nil || rep.Result != drill.Passed {
			t.Fatalf("restore failed: %v\n%+v", err, rep.Steps)
		}
		serving, _ := p.Serving(ctx, app)
		if serving.ID != prod.ID {
			t.Errorf("an in-place restore changed which database serves %s", app)
		}
		if n := items(t, p, prod); n < 10 {
			t.Errorf("production holds %d drill_items after the restore", n)
		}
		if h.Maintenance(t, app) {
			t.Errorf("left in maintenance")
		}
		if len(rep.Confirmations) != 1 || rep.Confirmations[0].Typed != drill.ProductionProof(app, b.ID) {
			t.Errorf("confirmations %+v", rep.Confirmations)
		}
		if rep.NowServing != prod.Name || rep.SafetyBackup == nil {
			t.Errorf("now serving %q safety %+v", rep.NowServing, rep.SafetyBackup)
		}
	})

	// A few seconds' outage of the state database in the middle of the
	// restore (its role may not log in, its sessions are ended) pauses the
	// journal and goes on: the restore completes with the backup's data,
	// in place with or without a safety backup and into a new database,
	// the drill holds its lock again, and it is journaled as passed once
	// the state database is back. It is never a cancellation.
	t.Run("StateOutageMidRestoreCompletesWithTheBackup", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			into     drill.Into
			noSafety bool
		}{{drill.IntoProduction, false}, {drill.IntoProduction, true}, {drill.IntoNew, false}} {
			name := string(tc.into)
			if tc.noSafety {
				name += "/NoSafetyBackup"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				p, app, b, _ := prepare(t)
				store, outage := NewOutageStateStore(t)
				o := NewOutageDuring(p, outage, 5*time.Second)
				o.WaitRelock, o.DrillID = true, drill.NewDrillID()
				rec := &drill.Recorder{}
				r := &drill.Runner{Provider: o, Confirmer: AppConfirmer("U-ONCALL"), Journal: store, Sink: rec}
				rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: ref(b), Into: tc.into, NoSafetyBackup: tc.noSafety, DrillID: o.DrillID})
				if err != nil || rep.Result != drill.Passed {
					t.Fatalf("the restore failed across a state database outage: %v (%s); steps %+v", err, drill.ErrorCode(err), rep.Steps)
				}
				serving, err := p.Serving(ctx, app)
				if err != nil {
					t.Fatal(err)
				}
				if n := items(t, p, serving); n < 10 {
					t.Errorf("%s serves %d drill_items after the restore, want the backup's", app, n)
				}
				if h.Maintenance(t, app) {
					t.Errorf("left in maintenance")
				}
				if !Said(rec, "state database unreachable, retrying for up to 2m") {
					t.Error("no event said the state database was unreachable")
				}
				if Said(rec, "cancel") {
					t.Error("an event called the outage a cancellation")
				}
				if !o.Relocked {
					t.Error("the drill did not take its lock again after the outage")
				}
				hist, err := store.History(ctx, app, 1)
				if err != nil || len(hist) != 1 || hist[0].Result != drill.Passed {
					t.Errorf("journaled history %+v %v: want the restore recorded as passed", hist, err)
				}
			})
		}
	})

	t.Run("ProductionNeedsAppAndBackupTyped", func(t *testing.T) {
		t.Parallel()
		p, app, b, prod := prepare(t)
		r := &drill.Runner{Provider: p, Confirmer: TypeConfirmer("U-ONCALL", app)}
		rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: ref(b), Into: drill.IntoProduction})
		if drill.ErrorCode(err) != drill.EREFUSED {
			t.Fatalf("err %v, want refused", err)
		}
		if rep.SafetyBackup != nil || items(t, p, prod) != 0 || h.Maintenance(t, app) {
			t.Errorf("a refused restore changed something: %+v", rep)
		}
		// The provider refuses too, without the typed proof.
		_, err = p.RestoreProduction(ctx, app, b, drill.Confirmation{User: "U", Typed: app}, nil)
		if drill.ErrorCode(err) != drill.EREFUSED {
			t.Errorf("provider restore onto production with the wrong proof: %v", err)
		}
		if items(t, p, prod) != 0 {
			t.Errorf("production changed")
		}
	})

	// A restore in place that fails after it wrote: production is rolled
	// back to the safety backup before maintenance is lifted.
	t.Run("InPlaceFailureRollsBack", func(t *testing.T) {
		t.Parallel()
		p, app, b, prod := prepare(t)
		f := NewFaultyEmergency(p)
		f.FailAfter("RestoreProduction", 1, drill.Errorf(drill.EFAILED, "injected failure after the restore wrote"))
		r := &drill.Runner{Provider: f, Confirmer: AppConfirmer("U-ONCALL")}
		rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: ref(b), Into: drill.IntoProduction})
		if err == nil {
			t.Fatal("the restore passed with a failure injected")
		}
		if n := items(t, p, prod); n != 0 {
			t.Errorf("production holds %d drill_items: it was not rolled back to the safety backup (0 rows)", n)
		}
		if h.Maintenance(t, app) {
			t.Errorf("left in maintenance after a rollback")
		}
		if !strings.Contains(rep.ProductionState, "rolled back to the safety backup "+rep.SafetyBackup.ID) {
			t.Errorf("production state %q", rep.ProductionState)
		}
		if f.Calls("RestoreProduction") != 2 {
			t.Errorf("%d in-place restores, want the restore and its rollback", f.Calls("RestoreProduction"))
		}
	})

	// Without a safety backup there is nothing to roll back to: production
	// stays in maintenance, and the report says why and what to do.
	t.Run("InPlaceFailureWithoutSafetyStaysInMaintenance", func(t *testing.T) {
		t.Parallel()
		p, app, b, _ := prepare(t)
		f := NewFaultyEmergency(p)
		f.FailAfter("RestoreProduction", 1, drill.Errorf(drill.EFAILED, "injected failure after the restore wrote"))
		r := &drill.Runner{Provider: f, Confirmer: AppConfirmer("U-ONCALL")}
		rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: ref(b), Into: drill.IntoProduction, NoSafetyBackup: true})
		if err == nil {
			t.Fatal("the restore passed with a failure injected")
		}
		if !h.Maintenance(t, app) {
			t.Errorf("a half-restored production was put back online")
		}
		if !strings.Contains(rep.ProductionState, "IN MAINTENANCE") || !strings.Contains(rep.ProductionState, "PARTLY RESTORED") {
			t.Errorf("production state %q", rep.ProductionState)
		}
		// Put it back as it was, for the cleanup.
		if err := p.SetMaintenance(ctx, app, false); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("UnknownBackupChangesNothing", func(t *testing.T) {
		t.Parallel()
		p, app, _, _ := prepare(t)
		r := &drill.Runner{Provider: p, Confirmer: AppConfirmer("U")}
		rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: 77}})
		if drill.ErrorCode(err) != drill.ENOTFOUND || len(rep.Confirmations) != 0 || rep.SafetyBackup != nil {
			t.Fatalf("err %v report %+v", err, rep)
		}
		if !strings.Contains(rep.ProductionState, "unchanged") {
			t.Errorf("production state %q", rep.ProductionState)
		}
	})

	// A failure once the restored database serves the app (adopting it,
	// or looking up the database it replaced) leaves the restored database
	// serving as the app's own, and the verdict says so: which database
	// serves, which is kept, and how to roll back.
	for _, method := range []string{"Adopt", "Lookup"} {
		t.Run("FailureIn"+method+"StatesTheRestoredDatabaseServing", func(t *testing.T) {
			t.Parallel()
			p, app, b, damaged := prepare(t)
			f := NewFaultyEmergency(p)
			f.FailOn(method, 1, drill.Errorf(drill.EFAILED, "injected failure in %s", method))
			r := &drill.Runner{Provider: f, Confirmer: AppConfirmer("U-ONCALL"), Journal: NewStateStore(t)}
			rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: ref(b)})
			if err == nil {
				t.Fatal("the restore passed with a failure injected")
			}
			serving, serr := p.Serving(ctx, app)
			kept, kerr := p.Lookup(ctx, damaged)
			if serr != nil || kerr != nil || serving.ID == damaged.ID || serving.DrillID != "" {
				t.Fatalf("serving %+v (%v), kept %+v (%v): want the restored database serving as the app's own", serving, serr, kept, kerr)
			}
			if n := items(t, p, serving); n < 10 {
				t.Errorf("the restored database serves %d drill_items, want the backup's", n)
			}
			for _, want := range []string{"served by " + serving.Name + ", restored from " + b.ID, "kept as " + kept.Name, "to roll back: `" + rep.Rollback} {
				if !strings.Contains(rep.ProductionState, want) {
					t.Errorf("production state %q does not say %q", rep.ProductionState, want)
				}
			}
			if strings.Contains(rep.ProductionState, "unchanged") || rep.NowServing != serving.Name || rep.KeptDatabase != kept.Name || len(rep.UndoFailed) > 0 {
				t.Errorf("report: now serving %q, kept %q, undo failed %v, state %q", rep.NowServing, rep.KeptDatabase, rep.UndoFailed, rep.ProductionState)
			}
			if left := h.Leftovers(t, app); len(left) > 1 {
				t.Errorf("left behind: %v", left)
			}
		})
	}

	t.Run("PromoteRefusedKeepsProduction", func(t *testing.T) {
		t.Parallel()
		p, app, b, prod := prepare(t)
		calls := 0
		c := drill.ConfirmerFunc(func(ctx context.Context, req drill.ConfirmRequest) (drill.Confirmation, error) {
			calls++
			if calls == 1 {
				return drill.Confirmation{User: "U", Typed: req.Expect}, nil
			}
			return drill.Confirmation{}, drill.ErrExpired
		})
		rep, err := (&drill.Runner{Provider: p, Confirmer: c}).Restore(ctx, drill.RestoreOptions{App: app, Backup: ref(b)})
		if err == nil {
			t.Fatal("restore passed without the promote confirmation")
		}
		serving, _ := p.Serving(ctx, app)
		if serving.ID != prod.ID {
			t.Errorf("production was promoted away without confirmation")
		}
		h.RequireCompanions(t, app, serving)
		if rep.SafetyBackup == nil {
			t.Errorf("the safety backup is missing from the report")
		}
		if left := h.Leftovers(t, app); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}
