package localpg_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// ownedApp makes an app database owned by a new unprivileged login role,
// filled with sql run as that role (logged in as it, so its code runs with
// its own privileges only). It returns the app and the role; both are
// dropped at cleanup.
func ownedApp(t *testing.T, sql string) (app, owner string) {
	t.Helper()
	owner = "drill_owner_" + drilltest.RandomSuffix()
	drilltest.Exec(t, "", "CREATE ROLE "+owner+" LOGIN NOSUPERUSER")
	t.Cleanup(func() { drilltest.Exec(t, "", "DROP ROLE IF EXISTS "+owner) }) // after its databases
	app = newApp(t)
	drilltest.Exec(t, "", "ALTER DATABASE "+app+" OWNER TO "+owner)
	drilltest.Exec(t, app, `ALTER SCHEMA public OWNER TO `+owner+`;
		DO $$ DECLARE r record; BEGIN
			FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
				EXECUTE format('ALTER TABLE public.%I OWNER TO %I', r.tablename, '`+owner+`');
			END LOOP;
		END $$`)
	cfg := drilltest.ConnConfig(t, app)
	cfg.User = owner
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("log in as %s: %v", owner, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), drilltest.EscalateSQL(owner)+sql); err != nil {
		t.Fatalf("as %s: %v\n%s", owner, err, sql)
	}
	return app, owner
}

// A drill runs as a superuser; the database's owner, an unprivileged role,
// controls code in it. A default verify drill must never run that code with
// more privileges than the owner has: it passes safely or refuses, naming
// why, and the owner is no superuser afterwards.
func TestDrill_OwnerCodeNeverRunsAsSuperuser(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		sql     string
		refused string // "" when the drill passes
	}{
		{
			name: "TriggerOnPrecreatedCanary",
			sql: `
				CREATE SCHEMA restore_drill;
				CREATE TABLE restore_drill.canary (drill_id text PRIMARY KEY, token text NOT NULL, created_at timestamptz NOT NULL);
				CREATE FUNCTION public.on_canary() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM public.escalate(); RETURN NEW; END $$;
				CREATE TRIGGER grab BEFORE INSERT ON restore_drill.canary FOR EACH ROW EXECUTE FUNCTION public.on_canary();`,
			refused: "it has triggers",
		},
		{
			name: "CheckConstraintDuringLoad",
			sql: `
				CREATE TABLE guarded (id int PRIMARY KEY, v int CHECK (public.escalate()));
				INSERT INTO guarded SELECT g, g FROM generate_series(1, 5) g;`,
			refused: "CHECK constraint guarded_check on public.guarded calls public.escalate() of role drill_owner_",
		},
		{
			// A SECURITY DEFINER function runs as its owner, who cannot
			// RESET ROLE inside it: loading may call it.
			name: "SecurityDefinerCheckDuringLoad",
			sql: `CREATE FUNCTION public.definer_check() RETURNS bool LANGUAGE plpgsql SECURITY DEFINER AS $$
					BEGIN RETURN public.escalate(); END $$;
				CREATE TABLE defined (id int PRIMARY KEY, v int CHECK (public.definer_check()));
				INSERT INTO defined VALUES (1, 1);`,
		},
		{
			name: "DomainCheckDuringLoad",
			sql: `
				CREATE DOMAIN public.checked AS int CHECK (public.escalate());
				CREATE TABLE typed (id int PRIMARY KEY, v public.checked);
				INSERT INTO typed VALUES (1, 1);`,
			refused: "CHECK constraint checked_check on domain public.checked calls public.escalate()",
		},
		{
			// The owner may set the database's search_path so that its own
			// functions shadow pg_catalog's in the drill's sessions.
			name: "SearchPathShadowsCatalog",
			sql: `CREATE FUNCTION public.pg_export_snapshot() RETURNS text LANGUAGE plpgsql AS $$
					BEGIN PERFORM public.escalate(); RETURN pg_catalog.pg_export_snapshot(); END $$;
				CREATE FUNCTION public.later(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql AS $$
					BEGIN PERFORM public.escalate(); RETURN GREATEST($1, $2); END $$;
				CREATE AGGREGATE public.max(timestamptz) (SFUNC = public.later, STYPE = timestamptz);
				CREATE TABLE events (at timestamptz); CREATE INDEX ON events (at); INSERT INTO events VALUES (now());
				DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = public, pg_catalog', current_database()); END $$;`,
		},
		{
			// Index and materialized view expressions run as the table's
			// owner in a security-restricted operation, where RESET ROLE
			// is refused: with owners restored, the drill passes safely.
			name: "IndexAndMatviewExpressions",
			sql: `
				CREATE FUNCTION public.key(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM public.escalate(); RETURN x; END $$;
				CREATE TABLE indexed (id int PRIMARY KEY, v int);
				INSERT INTO indexed SELECT g, g FROM generate_series(1, 5) g;
				CREATE INDEX indexed_key ON indexed (public.key(v));
				CREATE MATERIALIZED VIEW keyed AS SELECT public.key(v) AS k FROM indexed;`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app, owner := ownedApp(t, tt.sql)
			rep, err := run(t, newProvider(t), drill.Options{App: app})
			drilltest.RequireSafeDrill(t, owner, rep, err, tt.refused)
			if left := leftovers(t, app); len(left) != 0 {
				t.Errorf("the refused drill left %v", left)
			}
		})
	}
}

// Drills and emergency restores restore the same way, so a drill predicts
// the incident: after a role that owns objects is renamed, the drill of the
// backup fails on the missing role exactly as the emergency restore does.
func TestRestore_DrillPredictsEmergencyAfterRoleRename(t *testing.T) {
	t.Parallel()
	role := "drill_renamed_" + drilltest.RandomSuffix()
	drilltest.Exec(t, "", "CREATE ROLE "+role)
	t.Cleanup(func() {
		drilltest.Exec(t, "", "DROP ROLE IF EXISTS "+role+"; DROP ROLE IF EXISTS "+role+"_new")
	})
	app := newApp(t)
	drilltest.Exec(t, app, `CREATE TABLE owned (id int PRIMARY KEY); INSERT INTO owned VALUES (1); ALTER TABLE owned OWNER TO `+role)
	t.Cleanup(func() { drilltest.Exec(t, "", "REASSIGN OWNED BY "+role+"_new TO CURRENT_USER") })
	p := newProvider(t)
	b, err := (&drill.Runner{Provider: p}).Capture(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	drilltest.Exec(t, "", "ALTER ROLE "+role+" RENAME TO "+role+"_new")
	missing := `role "` + role + `" does not exist`
	ref := drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}

	rep, err := run(t, p, drill.Options{App: app, Backup: ref})
	if err == nil || !strings.Contains(rep.Error, missing) {
		t.Fatalf("drill: err %v, report error %q: want it failed on %s", err, rep.Error, missing)
	}
	restored, err := (&drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U-ONCALL")}).Restore(context.Background(),
		drill.RestoreOptions{App: app, Backup: ref, Into: drill.IntoNew, NoSafetyBackup: true})
	if err == nil || !strings.Contains(restored.Error, missing) {
		t.Fatalf("emergency restore: err %v, report error %q: want it failed on %s like the drill", err, restored.Error, missing)
	}
}

// The owner may set the database's search_path (ALTER DATABASE … SET) so
// that its own functions shadow pg_catalog's; a restore carries that
// setting over. An emergency restore, which reads the restored data's
// freshness, must still run none of them as a superuser.
func TestEmergency_SearchPathCannotShadowCatalog(t *testing.T) {
	t.Parallel()
	app, owner := ownedApp(t, `
		CREATE FUNCTION public.later(timestamptz, timestamptz) RETURNS timestamptz LANGUAGE plpgsql AS $$
			BEGIN PERFORM public.escalate(); RETURN GREATEST($1, $2); END $$;
		CREATE AGGREGATE public.max(timestamptz) (SFUNC = public.later, STYPE = timestamptz);
		CREATE TABLE events (at timestamptz); CREATE INDEX ON events (at); INSERT INTO events VALUES (now());
		DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = public, pg_catalog', current_database()); END $$;`)
	p := newProvider(t)
	b, err := (&drill.Runner{Provider: p}).Capture(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	for _, into := range []drill.Into{drill.IntoNew, drill.IntoProduction} {
		rep, err := (&drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U-ONCALL")}).Restore(context.Background(),
			drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}, Into: into, NoSafetyBackup: true})
		if err != nil {
			t.Fatalf("restore into %s: %v %+v", into, err, rep.Steps)
		}
		drilltest.RequireNotSuperuser(t, owner)
	}
}

// An emergency restore in place whose load the provider would refuse (a
// CHECK calling a function of the unprivileged owner) is refused before a
// byte of production changes: before, production's schemas were dropped
// first, the load refused, and the rollback to the safety backup (the same
// functions) refused too, leaving production empty in maintenance.
func TestEmergencyInPlace_RefusedLoadChangesNothing(t *testing.T) {
	t.Parallel()
	app, owner := ownedApp(t, `
		CREATE TABLE guarded (id int PRIMARY KEY, v int CHECK (public.escalate()));
		INSERT INTO guarded SELECT g, g FROM generate_series(1, 5) g;`)
	p := newProvider(t)
	ctx := context.Background()
	b, err := (&drill.Runner{Provider: p}).Capture(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	count := func() (n int) {
		t.Helper()
		if err := drilltest.Connect(t, app).QueryRow(ctx, `SELECT count(*) FROM guarded`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	r := &drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U-ONCALL"), UndoTimeout: time.Minute}
	rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}, Into: drill.IntoProduction})
	if drill.ErrorCode(err) != drill.EREFUSED || !strings.Contains(drill.ErrorMessage(err), "before changing anything") {
		t.Fatalf("err %v (%s), want the in-place restore refused before changing anything", err, drill.ErrorCode(err))
	}
	if len(rep.UndoFailed) != 0 {
		t.Errorf("undo failed: %v", rep.UndoFailed)
	}
	drilltest.RequireNotSuperuser(t, owner)
	if got := count(); got != before || before == 0 {
		t.Errorf("production holds %d rows, had %d", got, before)
	}
	var limit int
	if err := drilltest.Connect(t, "").QueryRow(ctx, `SELECT datconnlimit FROM pg_database WHERE datname = $1`, app).Scan(&limit); err != nil || limit == 0 {
		t.Errorf("production is left in maintenance (connection limit %d): %v", limit, err)
	}
}
