package pgsum_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

func TestCanary(t *testing.T) {
	t.Parallel()

	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

	t.Run("WriteThenFind", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		conn := drilltest.Connect(t, drilltest.CreateDatabase(t, "pgsum_canary"))
		first := pgsum.Canary{DrillID: "drill-1", Token: "secret-1", At: at}
		second := pgsum.Canary{DrillID: "drill-2", Token: "secret-2", At: at.Add(time.Hour)}

		requireNoError(t, pgsum.WriteCanary(ctx, conn, first))
		requireNoError(t, pgsum.WriteCanary(ctx, conn, second))

		for _, tt := range []struct {
			name string
			c    pgsum.Canary
			want bool
		}{
			{"First", first, true},
			{"Second", second, true},
			{"WrongToken", pgsum.Canary{DrillID: "drill-1", Token: "secret-2"}, false},
			{"UnknownDrill", pgsum.Canary{DrillID: "drill-3", Token: "secret-1"}, false},
		} {
			found, err := pgsum.FindCanary(ctx, conn, tt.c)
			requireNoError(t, err)
			requireEqual(t, tt.want, found, tt.name)
		}

		var n int
		var got time.Time
		requireNoError(t, conn.QueryRow(ctx, `SELECT count(*), max(created_at) FROM restore_drill.canary`).Scan(&n, &got))
		requireEqual(t, 2, n, "canary rows")
		requireEqual(t, true, got.Equal(at.Add(time.Hour)), "latest created_at "+got.String())
	})

	t.Run("NoTable", func(t *testing.T) {
		t.Parallel()
		conn := drilltest.Connect(t, drilltest.CreateDatabase(t, "pgsum_nocanary"))
		found, err := pgsum.FindCanary(testContext(t), conn, pgsum.Canary{DrillID: "drill-1", Token: "secret-1"})
		requireNoError(t, err)
		requireEqual(t, false, found, "found")
	})

	t.Run("SameDrillTwice", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		conn := drilltest.Connect(t, drilltest.CreateDatabase(t, "pgsum_canary2"))
		c := pgsum.Canary{DrillID: "drill-1", Token: "secret-1", At: at}
		requireNoError(t, pgsum.WriteCanary(ctx, conn, c))
		if err := pgsum.WriteCanary(ctx, conn, c); err == nil {
			t.Fatal("writing the same drill id twice succeeded")
		}
		found, err := pgsum.FindCanary(ctx, conn, c)
		requireNoError(t, err)
		requireEqual(t, true, found, "found after the failed second write")
	})

	t.Run("EmptyFields", func(t *testing.T) {
		t.Parallel()
		conn := drilltest.Connect(t, drilltest.CreateDatabase(t, "pgsum_canary3"))
		if err := pgsum.WriteCanary(testContext(t), conn, pgsum.Canary{DrillID: "drill-1", At: at}); err == nil {
			t.Fatal("a canary without a token was written")
		}
	})
}

// The canary lives in the drill's own schema, owned by the database owner:
// a database without a public schema takes one, and the app's table list
// never shows it.
func TestCanary_OwnSchemaOwnedByDatabaseOwner(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	owner := "canary_owner_" + drilltest.RandomSuffix()
	drilltest.Exec(t, "", "CREATE ROLE "+owner)
	t.Cleanup(func() { drilltest.Exec(t, "", "DROP ROLE IF EXISTS "+owner) }) // after the database is gone
	db := drilltest.CreateDatabase(t, "pgsum_nopublic")
	drilltest.Exec(t, "", "ALTER DATABASE "+db+" OWNER TO "+owner)
	drilltest.Exec(t, db, "DROP SCHEMA public; CREATE SCHEMA app; CREATE TABLE app.items (id int PRIMARY KEY); INSERT INTO app.items VALUES (1)")
	conn := drilltest.Connect(t, db)
	c := pgsum.Canary{DrillID: "drill-1", Token: "secret-1", At: time.Now()}
	requireNoError(t, pgsum.WriteCanary(ctx, conn, c))
	found, err := pgsum.FindCanary(ctx, conn, c)
	requireNoError(t, err)
	requireEqual(t, true, found, "found")
	var schemaOwner, tableOwner string
	requireNoError(t, conn.QueryRow(ctx, `SELECT pg_get_userbyid(n.nspowner), pg_get_userbyid(c.relowner)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'restore_drill' AND c.relname = 'canary'`).Scan(&schemaOwner, &tableOwner))
	requireEqual(t, owner, schemaOwner, "schema owner")
	requireEqual(t, owner, tableOwner, "table owner")
	requireEqualSlices(t, []string{`"app"."items"`}, tableKeys(fingerprint(t, db, pgsum.Options{})), "tables")
}

// A canary table the drill did not make in exactly its form is refused
// before a row goes in, so no trigger, rule, default, CHECK function or
// index expression of the owner's runs with the drill's privileges.
func TestCanary_RefusesTablesTheDrillDidNotMake(t *testing.T) {
	t.Parallel()
	const table = `CREATE SCHEMA restore_drill; CREATE TABLE restore_drill.canary (drill_id text PRIMARY KEY, token text NOT NULL, created_at timestamptz NOT NULL);
		CREATE TABLE public.hits (n int); CREATE FUNCTION public.hit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.hits VALUES (1); RETURN NEW; END $$;
		CREATE FUNCTION public.note(text) RETURNS bool LANGUAGE sql AS $$ INSERT INTO public.hits VALUES (1) RETURNING true $$;
		CREATE FUNCTION public.yes(text) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT true $$;`
	other := "canary_other_" + drilltest.RandomSuffix()
	drilltest.Exec(t, "", "CREATE ROLE "+other)
	t.Cleanup(func() { drilltest.Exec(t, "", "DROP ROLE IF EXISTS "+other) }) // after the subtests' databases
	for _, tt := range []struct{ name, sql, why string }{
		{"Trigger", `CREATE TRIGGER t BEFORE INSERT ON restore_drill.canary FOR EACH ROW EXECUTE FUNCTION public.hit()`, "triggers"},
		{"Rule", `CREATE RULE r AS ON INSERT TO restore_drill.canary DO ALSO INSERT INTO public.hits VALUES (1)`, "rules"},
		{"Check", `ALTER TABLE restore_drill.canary ADD CHECK (public.note(token))`, "constraints"},
		{"IndexExpression", `CREATE INDEX ON restore_drill.canary ((public.yes(token)))`, "indexes"},
		{"Default", `ALTER TABLE restore_drill.canary ADD COLUMN extra bool DEFAULT public.note('x')`, "columns"},
		{"OtherOwner", `ALTER TABLE restore_drill.canary OWNER TO ` + other, "belongs to"},
		{"View", `DROP TABLE restore_drill.canary; CREATE VIEW restore_drill.canary AS SELECT 'x'::text AS drill_id, 'y'::text AS token, now() AS created_at`, "not a plain table"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			db := drilltest.CreateDatabase(t, "pgsum_badcanary")
			drilltest.Exec(t, db, table)
			drilltest.Exec(t, db, tt.sql)
			conn := drilltest.Connect(t, db)
			err := pgsum.WriteCanary(ctx, conn, pgsum.Canary{DrillID: "drill-1", Token: "secret-1", At: time.Now()})
			if !errors.Is(err, pgsum.ErrCanaryUnsafe) || !strings.Contains(err.Error(), tt.why) {
				t.Fatalf("err %v, want it refused because of %s", err, tt.why)
			}
			var hits int
			requireNoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM public.hits`).Scan(&hits))
			requireEqual(t, 0, hits, "the owner's code ran")
		})
	}
}

func TestFreshness_NewestIndexedTimestamps(t *testing.T) {
	t.Parallel()
	db := drilltest.CreateDatabase(t, "fresh")
	drilltest.Exec(t, db, `
		CREATE TABLE orders (id int PRIMARY KEY, placed_at timestamptz, note text);
		CREATE INDEX ON orders (placed_at);
		INSERT INTO orders VALUES (1, '2026-11-01 10:00+00', 'a'), (2, '2026-11-25 23:30+00', 'b'), (3, NULL, 'c');
		CREATE TABLE events (at timestamp, kind text);
		CREATE INDEX ON events (at);
		INSERT INTO events VALUES ('2026-10-01 00:00', 'x');
		CREATE TABLE unindexed (seen timestamptz);
		INSERT INTO unindexed VALUES ('2030-01-01 00:00+00');
		CREATE TABLE empty_one (at timestamptz PRIMARY KEY);`)
	conn := drilltest.Connect(t, db)
	got, err := pgsum.Freshness(context.Background(), conn, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Table != "orders" || got[0].Column != "placed_at" ||
		!got[0].Newest.Equal(time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC)) || got[1].Table != "events" {
		t.Fatalf("freshness %+v: want orders.placed_at 2026-11-25 23:30 UTC, then events", got)
	}
	if one, _ := pgsum.Freshness(context.Background(), conn, 1); len(one) != 1 {
		t.Errorf("limit 1 gave %d", len(one))
	}
}
