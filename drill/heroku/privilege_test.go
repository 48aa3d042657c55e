package heroku_test

import (
	"context"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
)

// On Heroku the drill and the restores act as the database's own role,
// which is no superuser; the fake does the same. Code the owner planted
// (a trigger on a pre-created canary table, a CHECK function run while the
// restore loads rows, an index or materialized view expression) never runs
// with more privileges than the owner has: the drill passes safely or
// refuses, naming why.
func TestDrill_OwnerCodeNeverRunsWithMorePrivileges(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	for _, tt := range []struct {
		name    string
		sql     string
		refused string // "" when the drill passes
	}{
		{
			name: "TriggerOnPrecreatedCanary",
			sql: `CREATE SCHEMA restore_drill;
				CREATE TABLE restore_drill.canary (drill_id text PRIMARY KEY, token text NOT NULL, created_at timestamptz NOT NULL);
				CREATE FUNCTION public.on_canary() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM public.escalate(); RETURN NEW; END $$;
				CREATE TRIGGER grab BEFORE INSERT ON restore_drill.canary FOR EACH ROW EXECUTE FUNCTION public.on_canary();`,
			refused: "it has triggers",
		},
		{
			name: "CodeRunDuringRestore",
			sql: `CREATE TABLE guarded (id int PRIMARY KEY, v int CHECK (public.escalate()));
				INSERT INTO guarded SELECT g, g FROM generate_series(1, 5) g;
				CREATE FUNCTION public.key(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM public.escalate(); RETURN x; END $$;
				CREATE INDEX guarded_key ON guarded (public.key(v));
				CREATE MATERIALIZED VIEW keyed AS SELECT public.key(v) AS k FROM guarded;`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			app := newApp(t, s)
			owner := databaseOwner(t, s, app)
			if err := s.Exec(s.AddOns(app)[0].ID, drilltest.EscalateSQL(owner)+tt.sql); err != nil {
				t.Fatal(err)
			}
			rep, err := run(t, newProvider(t, s), drill.Options{App: app})
			drilltest.RequireSafeDrill(t, owner, rep, err, tt.refused)
		})
	}
}

// databaseOwner is the role that owns the app's database on the fake.
func databaseOwner(t *testing.T, s *herokutest.Server, app string) string {
	t.Helper()
	var owner string
	err := drilltest.Connect(t, "").QueryRow(context.Background(),
		`SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, s.AddOns(app)[0].Database).Scan(&owner)
	if err != nil {
		t.Fatal(err)
	}
	return owner
}

// A database without a public schema takes the canary (in the drill's own
// schema), and its drill passes although Heroku's restore makes an empty
// public schema, as every new database has.
func TestDrill_DatabaseWithoutPublicSchema(t *testing.T) {
	t.Parallel()
	s := herokutest.NewServer(t)
	app := newApp(t, s, func(o *herokutest.AppOptions) {
		o.SQL = `DROP SCHEMA public CASCADE; CREATE SCHEMA app;
			CREATE TABLE app.drill_items (id int PRIMARY KEY); INSERT INTO app.drill_items VALUES (1), (2);`
	})
	rep, err := run(t, newProvider(t, s), drill.Options{App: app})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("drill: %v %+v", err, rep)
	}
}
