package drilltest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// Harness is what the conformance suite needs from a provider's tests.
type Harness struct {
	// Setup returns a provider and a new app on it, removed at cleanup. The
	// app's database holds a table public.drill_items (id int primary key,
	// note text) with at least 10 rows, among whatever else.
	Setup func(t *testing.T) (drill.Provider, string)
	// Maintenance reports the app's maintenance state as the platform holds
	// it.
	Maintenance func(t *testing.T, app string) bool
	// Leftovers names the databases drills created for app that still
	// exist.
	Leftovers func(t *testing.T, app string) []string
	// Exec runs SQL on a database of the platform.
	Exec func(t *testing.T, db drill.Database, sql string)
	// TryExec runs one statement on a database of the platform, as its
	// owner and outside a transaction block, and returns its error.
	TryExec func(db drill.Database, sql string) error
	// Reopen returns another provider on the platform that holds app, as
	// another process would make it: it shares nothing in memory with
	// the one Setup returned.
	Reopen func(t *testing.T, app string) drill.Provider
	// Companions, where the platform has them, returns the ids of the
	// databases reached through the app's other ways into its database
	// (Heroku's connection pooler, DATABASE_CONNECTION_POOL_URL), by name.
	// Each must move with the database that serves the app: after every
	// drill, restore and undo, each is that database.
	Companions func(t *testing.T, app string) map[string]string
}

// RequireCompanions fails the test when a companion of app (see
// Harness.Companions) does not reach serving, the database that serves it.
func (h Harness) RequireCompanions(t *testing.T, app string, serving drill.Database) {
	t.Helper()
	if h.Companions == nil {
		return
	}
	for name, id := range h.Companions(t, app) {
		if id != serving.ID {
			t.Errorf("%s of %s reaches database %s, not %s (%s) that serves it", name, app, id, serving.Name, serving.ID)
		}
	}
}

// Parking is a Confirmer that never waits: each request gets a new ticket,
// as a queued bot's confirmer does, and the drill parks.
type Parking struct {
	mu      sync.Mutex
	Tickets []string
	Steps   []string
}

// Confirm asks and returns drill.Awaiting.
func (p *Parking) Confirm(_ context.Context, req drill.ConfirmRequest) (drill.Confirmation, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := fmt.Sprintf("t%d-%s", len(p.Tickets)+1, req.DrillID)
	p.Tickets, p.Steps = append(p.Tickets, t), append(p.Steps, req.Step)
	return drill.Confirmation{}, &drill.Awaiting{Ticket: t, Until: time.Now().Add(10 * time.Minute)}
}

// Last returns the newest ticket.
func (p *Parking) Last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.Tickets[len(p.Tickets)-1]
}

// TypeConfirmer confirms every request by typing text, as user.
func TypeConfirmer(user, text string) drill.Confirmer {
	return drill.ConfirmerFunc(func(ctx context.Context, req drill.ConfirmRequest) (drill.Confirmation, error) {
		return drill.Confirmation{User: user, Typed: text, At: time.Now()}, nil
	})
}

// AppConfirmer confirms every request by typing what it expects.
func AppConfirmer(user string) drill.Confirmer {
	return drill.ConfirmerFunc(func(ctx context.Context, req drill.ConfirmRequest) (drill.Confirmation, error) {
		return drill.Confirmation{User: user, Typed: req.Expect, At: time.Now()}, nil
	})
}

// ExerciseProvider runs the conformance suite against a provider: whole
// drills in both modes, refusals, and the undo stack after a failure at
// every step. Every provider's tests call it.
func ExerciseProvider(t *testing.T, h Harness) {
	t.Helper()

	type bundle struct {
		provider drill.Provider
		faulty   *Faulty
		app      string
		rec      *drill.Recorder
		before   drill.Database
		data     drill.Fingerprint
	}
	setup := func(t *testing.T) *bundle {
		t.Helper()
		p, app := h.Setup(t)
		before, err := p.Serving(context.Background(), app)
		if err != nil {
			t.Fatalf("serving before the drill: %v", err)
		}
		data, err := p.Fingerprint(context.Background(), before)
		if err != nil {
			t.Fatalf("fingerprint before the drill: %v", err)
		}
		return &bundle{provider: p, faulty: NewFaulty(p), app: app, rec: &drill.Recorder{}, before: before, data: data}
	}
	runner := func(b *bundle, c drill.Confirmer) *drill.Runner {
		return &drill.Runner{Provider: b.faulty, Confirmer: c, Sink: b.rec, UndoTimeout: time.Minute}
	}
	// requireIntact checks production is as it was: maintenance off, served
	// by its original database, and no database of the drill left behind.
	requireIntact := func(t *testing.T, b *bundle) {
		t.Helper()
		if h.Maintenance(t, b.app) {
			t.Errorf("%s was left in maintenance", b.app)
		}
		now, err := b.provider.Serving(context.Background(), b.app)
		if err != nil {
			t.Fatalf("serving after the drill: %v", err)
		}
		if now.ID != b.before.ID {
			t.Errorf("%s is served by %s (%s), not by its original %s (%s)", b.app, now.Name, now.ID, b.before.Name, b.before.ID)
		}
		h.RequireCompanions(t, b.app, now)
		if left := h.Leftovers(t, b.app); len(left) > 0 {
			t.Errorf("the drill left databases behind: %v", left)
		}
		// The data is exactly as it was: the canary lives in the drill's own
		// schema, which fingerprints leave out.
		after, err := b.provider.Fingerprint(context.Background(), now)
		if err != nil {
			t.Fatalf("fingerprint after the drill: %v", err)
		}
		c := drill.Compare(b.data, after, true)
		if !c.OK() {
			t.Errorf("production changed: %s", c.Summary())
		}
	}
	requirePassed := func(t *testing.T, rep *drill.Report, err error) {
		t.Helper()
		if err != nil || rep.Result != drill.Passed {
			t.Fatalf("drill did not pass: result %s, err %v, steps %+v", rep.Result, err, rep.Steps)
		}
	}

	t.Run("VerifyPasses", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rep, err := runner(b, nil).Run(context.Background(), drill.Options{App: b.app})
		requirePassed(t, rep, err)
		if !rep.Canary.Expected || !rep.Canary.Found {
			t.Errorf("canary: %+v, want expected and found", rep.Canary)
		}
		if !rep.Exact {
			t.Logf("comparison is drift only (provider cannot fingerprint the backup's snapshot)")
		}
		if len(rep.Tables) == 0 {
			t.Fatal("no tables compared")
		}
		for _, tr := range rep.Tables {
			if !tr.Match && rep.Exact {
				t.Errorf("table %s.%s does not match: %s", tr.Schema, tr.Name, tr.Problem)
			}
		}
		if !slices.ContainsFunc(rep.Tables, func(tr drill.TableResult) bool { return tr.Name == "drill_items" && tr.SourceRows >= 10 }) {
			t.Errorf("drill_items not compared: %+v", rep.Tables)
		}
		if rep.Backup == nil || !rep.Backup.Fresh || rep.Backup.ID == "" || rep.Backup.SizeBytes <= 0 {
			t.Errorf("backup in report: %+v", rep.Backup)
		}
		if len(rep.Confirmations) != 0 {
			t.Errorf("verify mode asked for confirmations: %+v", rep.Confirmations)
		}
		list, err := b.provider.Backups(context.Background(), b.app)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := list.NewestSucceeded(); !ok {
			t.Errorf("the drill's backup is not listed as succeeded: %+v", list.Backups)
		}
		requireIntact(t, b)
		requireEvents(t, b.rec, drill.StepRestore, drill.StepStarted, drill.StepSucceeded)
	})

	t.Run("FullPasses", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rep, err := runner(b, AppConfirmer("U-ALICE")).Run(context.Background(), drill.Options{App: b.app, Mode: drill.ModeFull})
		requirePassed(t, rep, err)
		if len(rep.Confirmations) != 2 || rep.Confirmations[0].User != "U-ALICE" || rep.Confirmations[1].Step != drill.StepPromote {
			t.Errorf("confirmations: %+v, want maintenance_on and promote by U-ALICE", rep.Confirmations)
		}
		if rep.Canary.FoundServing == nil || !*rep.Canary.FoundServing {
			t.Errorf("canary not checked through the promoted app: %+v", rep.Canary)
		}
		for _, s := range []string{drill.StepMaintenanceOn, drill.StepPromote, drill.StepCheckPromoted, drill.StepPromoteBack, drill.StepMaintenanceOff, drill.StepDestroy} {
			if !hasStep(rep, s, drill.StatusSucceeded) {
				t.Errorf("step %s did not succeed: %+v", s, rep.Steps)
			}
		}
		requireIntact(t, b)
	})

	t.Run("LatestBackupRestores", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rep, err := runner(b, nil).Run(context.Background(), drill.Options{App: b.app})
		requirePassed(t, rep, err)
		rep2, err := runner(b, nil).Run(context.Background(), drill.Options{App: b.app, Backup: drill.BackupRef{Kind: drill.BackupLatest}})
		requirePassed(t, rep2, err)
		if rep2.Backup.ID != rep.Backup.ID || rep2.Backup.Fresh {
			t.Errorf("latest restored %+v, want %s", rep2.Backup, rep.Backup.ID)
		}
		if rep2.Canary.Expected {
			t.Errorf("an existing backup cannot hold this drill's canary: %+v", rep2.Canary)
		}
		requireIntact(t, b)
	})

	t.Run("UnknownBackupChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rep, err := runner(b, nil).Run(context.Background(), drill.Options{App: b.app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: 999}})
		if drill.ErrorCode(err) != drill.ENOTFOUND || !strings.Contains(rep.Error, "b999") {
			t.Fatalf("err %v (report %q), want not found naming b999", err, rep.Error)
		}
		if b.faulty.Calls("CreateScratch") != 0 || b.faulty.Calls("WriteCanary") != 0 {
			t.Errorf("a drill with an unknown backup changed something")
		}
		requireIntact(t, b)
	})

	// A canary table someone else made, with a trigger that would run its
	// owner's code as the drill, is refused before a row goes in, and the
	// drill undoes what it did.
	t.Run("ForeignCanaryTableIsRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		h.Exec(t, b.before, `CREATE SCHEMA restore_drill;
			CREATE TABLE restore_drill.canary (drill_id text PRIMARY KEY, token text NOT NULL, created_at timestamptz NOT NULL);
			CREATE FUNCTION restore_drill.grab() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
			CREATE TRIGGER grab BEFORE INSERT ON restore_drill.canary FOR EACH ROW EXECUTE FUNCTION restore_drill.grab();`)
		rep, err := runner(b, nil).Run(context.Background(), drill.Options{App: b.app})
		if drill.ErrorCode(err) != drill.EREFUSED || !strings.Contains(rep.Error, "it has triggers") {
			t.Fatalf("err %v (report %q), want refused because the canary table has triggers", err, rep.Error)
		}
		requireIntact(t, b)
	})

	t.Run("UnknownAppIsUsage", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rep, err := runner(b, nil).Run(context.Background(), drill.Options{App: b.app + "-nope"})
		if !drill.IsUsage(err) || drill.ErrorCode(err) != drill.ENOTFOUND {
			t.Fatalf("err %v, want a not-found usage error", err)
		}
		if rep.Result != drill.Failed || rep.Error == "" {
			t.Errorf("report %+v", rep)
		}
		requireIntact(t, b)
	})

	t.Run("WrongConfirmationChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rep, err := runner(b, TypeConfirmer("U-BOB", "not-the-app")).Run(context.Background(), drill.Options{App: b.app, Mode: drill.ModeFull})
		if drill.ErrorCode(err) != drill.EREFUSED {
			t.Fatalf("err %v, want refused", err)
		}
		if b.faulty.Calls("SetMaintenance") != 0 {
			t.Errorf("maintenance was touched without a confirmation")
		}
		if len(rep.Confirmations) != 0 {
			t.Errorf("a wrong confirmation was recorded as given: %+v", rep.Confirmations)
		}
		if !slices.Contains(rep.Undone, drill.StepProvision) {
			t.Errorf("undone %v, want the scratch database destroyed", rep.Undone)
		}
		requireIntact(t, b)
	})

	// parkedFull starts a full drill, journaled, that parks on its first
	// confirmation; process makes the runner of another process on the
	// same platform and journal.
	parkedFull := func(t *testing.T) (b *bundle, id string, park *Parking, store *pgstate.Store, process func() *drill.Runner) {
		t.Helper()
		if h.Reopen == nil {
			t.Skip("the harness cannot open a second provider")
		}
		b, park, store = setup(t), &Parking{}, NewStateStore(t)
		r := &drill.Runner{Provider: b.provider, Confirmer: park, Sink: b.rec, UndoTimeout: time.Minute, Journal: store}
		rep, err := r.Run(context.Background(), drill.Options{App: b.app, Mode: drill.ModeFull, Requester: "U-ASK"})
		if !drill.IsParked(err) {
			t.Fatalf("err %v, want the drill parked on its first confirmation", err)
		}
		process = func() *drill.Runner {
			return &drill.Runner{Provider: h.Reopen(t, b.app), Confirmer: park, Sink: b.rec, UndoTimeout: time.Minute, Journal: store}
		}
		return b, rep.DrillID, park, store, process
	}

	t.Run("ParkedDrillContinuesInAnotherProcess", func(t *testing.T) {
		t.Parallel()
		b, id, park, store, process := parkedFull(t)
		ctx := context.Background()
		if h.Maintenance(t, b.app) {
			t.Fatalf("maintenance is on before anyone confirmed it")
		}
		if len(h.Leftovers(t, b.app)) != 1 {
			t.Fatalf("leftovers %v, want the parked drill's scratch database", h.Leftovers(t, b.app))
		}
		// A parked drill belongs to nobody, yet is not abandoned.
		if list, err := store.Abandoned(ctx); err != nil || len(list) != 0 {
			t.Fatalf("abandoned %v %v, want none while the drill is parked", list, err)
		}
		// A second drill of the app is refused while the first is parked.
		if _, err := (&drill.Runner{Provider: b.provider, Journal: store}).Run(ctx, drill.Options{App: b.app}); !errors.Is(err, drill.ErrLocked) {
			t.Fatalf("second drill: %v, want ErrLocked", err)
		}
		// The answer to another ticket changes nothing.
		other := process()
		if _, err := other.Continue(ctx, id, "t9-nope", drill.Answer{Confirmation: drill.Confirmation{User: "U-OK", Typed: b.app}}); !errors.Is(err, drill.ErrNotParked) {
			t.Fatalf("wrong ticket: %v, want ErrNotParked", err)
		}
		first := park.Last()
		rep, err := other.Continue(ctx, id, first, drill.Answer{Confirmation: drill.Confirmation{User: "U-OK", Typed: b.app, At: time.Now()}})
		if !drill.IsParked(err) || park.Steps[len(park.Steps)-1] != drill.StepPromote {
			t.Fatalf("err %v (steps asked %v), want the drill parked again before the promote", err, park.Steps)
		}
		if !h.Maintenance(t, b.app) {
			t.Fatalf("maintenance is off while the full drill waits for the promote")
		}
		// The same answer again finds the drill parked on another ticket.
		if _, err := other.Continue(ctx, id, first, drill.Answer{Confirmation: drill.Confirmation{User: "U-OK", Typed: b.app}}); !errors.Is(err, drill.ErrNotParked) {
			t.Fatalf("replayed answer: %v, want ErrNotParked", err)
		}
		rep, err = process().Continue(ctx, id, park.Last(), drill.Answer{Confirmation: drill.Confirmation{User: "U-OK", Typed: b.app, At: time.Now()}})
		requirePassed(t, rep, err)
		if len(rep.Confirmations) != 2 || rep.Confirmations[1].Step != drill.StepPromote || rep.Requester != "U-ASK" {
			t.Errorf("confirmations %+v requester %s, want both, by U-OK, of U-ASK's drill", rep.Confirmations, rep.Requester)
		}
		for _, s := range []string{drill.StepPreflight, drill.StepCapture, drill.StepVerify, drill.StepPromote, drill.StepPromoteBack, drill.StepDestroy} {
			if !hasStep(rep, s, drill.StatusSucceeded) {
				t.Errorf("step %s did not succeed: %+v", s, rep.Steps)
			}
		}
		if len(rep.Tables) == 0 || rep.Backup == nil {
			t.Errorf("the continued report lost what came before the park: tables %d backup %v", len(rep.Tables), rep.Backup)
		}
		// The report is the drill's, as if it had never waited.
		if !rep.Exact || !rep.Canary.Expected || !rep.Canary.Found || rep.Canary.FoundServing == nil || !*rep.Canary.FoundServing || rep.RestoreSeconds <= 0 {
			t.Errorf("continued report: exact %v canary %+v restore %.2fs, want an exact full drill's", rep.Exact, rep.Canary, rep.RestoreSeconds)
		}
		if slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "continues") }) {
			t.Errorf("the waits are recorded as warnings: %v", rep.Warnings)
		}
		requireIntact(t, b)
	})

	t.Run("ParkedDrillExpiringUndoes", func(t *testing.T) {
		t.Parallel()
		b, id, park, store, process := parkedFull(t)
		ctx := context.Background()
		if _, err := process().Continue(ctx, id, park.Last(), drill.Answer{Confirmation: drill.Confirmation{User: "U-OK", Typed: b.app}}); !drill.IsParked(err) {
			t.Fatalf("err %v, want parked before the promote", err)
		}
		// Nobody confirms the promote: the expiry takes the drill up in a
		// third process, which undoes it, maintenance included.
		rep, err := process().Continue(ctx, id, park.Last(), drill.Answer{Err: fmt.Errorf("nobody typed it: %w", drill.ErrExpired)})
		if !errors.Is(err, drill.ErrExpired) || rep.Result != drill.Failed {
			t.Fatalf("err %v result %s, want the expiry to fail the drill", err, rep.Result)
		}
		if !slices.Contains(rep.Undone, drill.StepMaintenanceOn) || hasStep(rep, drill.StepPromote, drill.StatusSucceeded) {
			t.Errorf("undone %v steps %+v, want maintenance undone and no promote", rep.Undone, rep.Steps)
		}
		requireIntact(t, b)
		if list, err := store.Abandoned(ctx); err != nil || len(list) != 0 {
			t.Errorf("abandoned %v %v, want the expired drill finished", list, err)
		}
	})

	t.Run("ExpiredConfirmationUndoes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		calls := 0
		c := drill.ConfirmerFunc(func(ctx context.Context, req drill.ConfirmRequest) (drill.Confirmation, error) {
			calls++
			if calls == 1 {
				return drill.Confirmation{User: "U-A", Typed: req.Expect}, nil
			}
			return drill.Confirmation{}, drill.ErrExpired
		})
		rep, err := runner(b, c).Run(context.Background(), drill.Options{App: b.app, Mode: drill.ModeFull})
		if !errors.Is(err, drill.ErrExpired) {
			t.Fatalf("err %v, want expired", err)
		}
		if b.faulty.Calls("Promote") != 0 {
			t.Errorf("promoted without a confirmation")
		}
		if !slices.Contains(rep.Undone, drill.StepMaintenanceOn) {
			t.Errorf("undone %v, want maintenance undone", rep.Undone)
		}
		requireIntact(t, b)
	})

	t.Run("AlteredRestoreIsCaughtAndNamed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.faulty.After = func(method string, args ...any) {
			if method == "Restore" {
				h.Exec(t, args[1].(drill.Database), `UPDATE public.drill_items SET note = note || ' (tampered)' WHERE id = (SELECT min(id) FROM public.drill_items)`)
			}
		}
		rep, err := runner(b, nil).Run(context.Background(), drill.Options{App: b.app})
		if drill.ErrorCode(err) != drill.EFAILED || !strings.Contains(rep.Error, "drill_items") {
			t.Fatalf("err %v (report %q), want a failure naming drill_items", err, rep.Error)
		}
		if !rep.Exact {
			t.Skip("the provider's comparison is drift-only; a changed row cannot be told from a write")
		}
		bad := 0
		for _, tr := range rep.Tables {
			if !tr.Match {
				bad++
				if tr.Name != "drill_items" {
					t.Errorf("table %s reported as differing", tr.Name)
				}
			}
		}
		if bad != 1 {
			t.Errorf("%d tables differ, want exactly drill_items", bad)
		}
		requireIntact(t, b)
	})

	// A failure at each provider call in turn, in full mode, must leave
	// production intact and report what was undone.
	for _, fc := range []struct {
		method string
		nth    int
	}{
		{"Describe", 1}, {"Backups", 1}, {"CreateScratch", 1}, {"WriteCanary", 1},
		{"SetMaintenance", 1}, {"Capture", 1}, {"Restore", 1}, {"Fingerprint", 1},
		{"FindCanary", 1}, {"Promote", 1}, {"Serving", 1}, {"FindCanary", 2},
		{"Promote", 2}, {"SetMaintenance", 2}, {"DestroyScratch", 1},
	} {
		t.Run(fmt.Sprintf("FailAt%s%d", fc.method, fc.nth), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			injected := drill.Errorf(drill.EFAILED, "injected failure of %s #%d", fc.method, fc.nth)
			b.faulty.FailOn(fc.method, fc.nth, injected)
			rep, err := runner(b, AppConfirmer("U-A")).Run(context.Background(), drill.Options{App: b.app, Mode: drill.ModeFull})
			if err == nil || rep.Result != drill.Failed {
				t.Fatalf("drill passed with %s #%d failing", fc.method, fc.nth)
			}
			if !strings.Contains(rep.Error, "injected failure") && len(rep.UndoFailed) == 0 {
				t.Errorf("report error %q does not say what failed", rep.Error)
			}
			// An undo that failed once is retried by the undo run; a second
			// injected failure of the same call is not planned here.
			if len(rep.UndoFailed) > 0 {
				t.Errorf("undo failed: %v", rep.UndoFailed)
			}
			requireIntact(t, b)
		})
	}

	// When promoting the original back keeps failing, nothing else is
	// undone: lifting maintenance or destroying the scratch database would
	// put the wrong database in front of users, or drop the one serving.
	t.Run("PromoteBackFailingStopsTheUndo", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.faulty.FailFrom("Promote", 2, drill.Errorf(drill.EFAILED, "injected: promote back keeps failing"))
		b.faulty.FailOn("FindCanary", 2, drill.Errorf(drill.EFAILED, "injected: check through the app fails"))
		rep, err := runner(b, AppConfirmer("U-A")).Run(context.Background(), drill.Options{App: b.app, Mode: drill.ModeFull})
		if err == nil {
			t.Fatal("drill passed")
		}
		if !slices.Contains(rep.UndoFailed, drill.StepPromote) || !slices.Contains(rep.UndoFailed, drill.StepMaintenanceOn) || !slices.Contains(rep.UndoFailed, drill.StepProvision) {
			t.Errorf("undo failed %v, want promote failed and the rest not attempted", rep.UndoFailed)
		}
		if len(rep.Undone) != 0 {
			t.Errorf("undone %v while the app is served by the scratch database", rep.Undone)
		}
		if !h.Maintenance(t, b.app) {
			t.Errorf("maintenance was lifted with the scratch database serving the app")
		}
		// A person puts it right; then production is as before.
		ctx := context.Background()
		if err := b.provider.Promote(ctx, b.app, b.before); err != nil {
			t.Fatalf("promote back by hand: %v", err)
		}
		if err := b.provider.SetMaintenance(ctx, b.app, false); err != nil {
			t.Fatal(err)
		}
		if err := b.provider.DestroyScratch(ctx, *rep.Scratch); err != nil {
			t.Fatal(err)
		}
		requireIntact(t, b)
	})

	t.Run("CancelAtEachStepUndoes", func(t *testing.T) {
		t.Parallel()
		for _, step := range []string{drill.StepProvision, drill.StepCanary, drill.StepMaintenanceOn, drill.StepCapture, drill.StepRestore, drill.StepVerify, drill.StepPromote, drill.StepCheckPromoted, drill.StepPromoteBack} {
			t.Run(step, func(t *testing.T) {
				b := setup(t)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				r := runner(b, AppConfirmer("U-A"))
				r.Sink = drill.SinkFunc(func(e drill.Event) {
					if e.Step == step && e.Kind == drill.StepStarted {
						cancel()
					}
				})
				rep, err := r.Run(ctx, drill.Options{App: b.app, Mode: drill.ModeFull})
				if drill.ErrorCode(err) != drill.ECANCELED && err != nil {
					// A step that finished before it saw the cancellation
					// fails the next one as cancelled; anything else is a bug.
					t.Fatalf("err %v, want cancelled", err)
				}
				if err == nil {
					t.Fatalf("drill passed although cancelled at %s", step)
				}
				if len(rep.UndoFailed) > 0 {
					t.Errorf("undo failed: %v", rep.UndoFailed)
				}
				requireIntact(t, b)
			})
		}
	})

	t.Run("RefusesWhatTheDrillDidNotCreate", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		prod := b.before
		forged := prod
		forged.DrillID = drill.NewDrillID()
		if err := b.provider.DestroyScratch(ctx, forged); drill.ErrorCode(err) != drill.EREFUSED {
			t.Errorf("destroy production: err %v, want refused", err)
		}
		list := mustCapture(t, b.provider, b.app)
		if _, err := b.provider.Restore(ctx, list, forged, nil); drill.ErrorCode(err) != drill.EREFUSED {
			t.Errorf("restore onto production: err %v, want refused", err)
		}
		if err := b.provider.Promote(ctx, b.app, forged); err != nil && drill.ErrorCode(err) != drill.EREFUSED {
			t.Errorf("promote production onto itself: err %v", err)
		}
		now, err := b.provider.Serving(ctx, b.app)
		if err != nil || now.ID != prod.ID {
			t.Fatalf("production changed: %+v %v", now, err)
		}
		fp, err := b.provider.Fingerprint(ctx, prod)
		if err != nil || len(fp.Tables) == 0 {
			t.Fatalf("production unreadable after refusals: %v", err)
		}
		requireIntact(t, b)
	})
}

func mustCapture(t *testing.T, p drill.Provider, app string) drill.Backup {
	t.Helper()
	c, err := p.Capture(context.Background(), app, false, nil)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	return c.Backup
}

func hasStep(rep *drill.Report, name string, status drill.StepStatus) bool {
	return slices.ContainsFunc(rep.Steps, func(s drill.StepRecord) bool { return s.Name == name && s.Status == status })
}

// requireEvents checks that step emitted the kinds in order.
func requireEvents(t *testing.T, rec *drill.Recorder, step string, kinds ...drill.EventKind) {
	t.Helper()
	var got []drill.EventKind
	for _, e := range rec.Events() {
		if e.Step == step && e.Kind != drill.StepProgress {
			got = append(got, e.Kind)
		}
	}
	if !slices.Equal(got, kinds) {
		t.Errorf("events of %s: %v, want %v", step, got, kinds)
	}
}
