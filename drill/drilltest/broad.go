package drilltest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
)

// BroadSchema returns the SQL of testdata/broad.sql: a schema whose printed
// definitions change in a dump/restore round trip (IN on varchar, BETWEEN
// inside AND, BEGIN ATOMIC bodies, NATURAL JOIN), with rules, partial and
// expression indexes, domains, ranges, partitions of every kind (hash on an
// enum among them), materialized views (one stale), row-level security,
// triggers, an invalid index and public.drill_items. A correct restore of
// it must pass a drill.
func BroadSchema(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate the drilltest package's files")
	}
	sql, err := os.ReadFile(filepath.Join(filepath.Dir(file), "testdata", "broad.sql"))
	if err != nil {
		tb.Fatalf("reading the broad schema fixture: %v", err)
	}
	return string(sql)
}

// AlterBroad changes a restore of BroadSchema the ways a drill
// must catch: a dropped constraint, a changed view, a missing index, a
// dropped policy and trigger, a changed function body, a changed row.
const AlterBroad = `
ALTER TABLE shop.orders DROP CONSTRAINT qty_sane;
CREATE OR REPLACE VIEW shop.mid_films AS SELECT id, title FROM shop.films
	WHERE len BETWEEN 10 AND 201 AND kind IN ('drama', 'comedy') AND (title <> 'x' OR len > 3);
DROP INDEX shop.films_len_expr;
DROP POLICY notes_read ON shop.notes;
DROP TRIGGER orders_log ON shop.orders;
CREATE OR REPLACE FUNCTION shop.film_len(f bigint) RETURNS int LANGUAGE sql STABLE
BEGIN ATOMIC
	SELECT len FROM shop.films WHERE id = f AND len BETWEEN 1 AND 501 AND kind IN ('drama', 'comedy');
END;
UPDATE shop.customers SET name = name || '!' WHERE cid = 1;
`

// AlterBroadNames are what a verdict on a restore changed by AlterBroad
// must name.
func AlterBroadNames() []string {
	return []string{
		"constraint shop.orders qty_sane missing from the restore",
		"view shop.mid_films changed",
		"index shop.films films_len_expr missing from the restore",
		"policy shop.notes notes_read missing from the restore",
		"trigger shop.orders orders_log missing from the restore",
		"function shop.film_len(f bigint) changed",
		`"shop"."customers" (same row count, different content)`,
	}
}

// ExerciseBroadSchema loads BroadSchema into an app and requires a verify
// drill, a full drill and an emergency restore into a new database of it
// to pass, with notes naming the invalid index, the enum hash tree compared
// at its root and the stale materialized view; and a drill whose restore
// AlterBroad changed to fail, naming each difference.
func ExerciseBroadSchema(t *testing.T, h Harness) {
	t.Helper()
	ctx := context.Background()
	setup := func(t *testing.T) (drill.Provider, *Faulty, string) {
		t.Helper()
		p, app := h.Setup(t)
		prod, err := p.Serving(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		h.Exec(t, prod, BroadSchema(t))
		MakeBroadInvalidIndex(t, func(sql string) error { return h.TryExec(prod, sql) })
		return p, NewFaulty(p), app
	}
	requirePassedWithNotes := func(t *testing.T, rep *drill.Report, err error) {
		t.Helper()
		if err != nil || rep.Result != drill.Passed {
			t.Fatalf("the broad schema's %s did not pass: %v\n%s", rep.Mode, err, rep.Verification)
		}
		if !slices.ContainsFunc(rep.Tables, func(tr drill.TableResult) bool { return tr.SourceRows >= 0 }) {
			return // nothing to compare with (a backup without a fingerprint)
		}
		notes := strings.Join(rep.Warnings, "\n")
		for _, want := range []string{"index shop.customers customers_region is invalid in the source", `"shop"."paint" is compared as a whole`} {
			if !strings.Contains(notes, want) {
				t.Errorf("the report's warnings do not say %q:\n%s", want, notes)
			}
		}
		if rep.Exact && !strings.Contains(notes, `materialized view "shop"."customer_count" differs`) {
			t.Errorf("the stale materialized view is not named:\n%s", notes)
		}
	}

	t.Run("VerifyPasses", func(t *testing.T) {
		t.Parallel()
		_, f, app := setup(t)
		rep, err := (&drill.Runner{Provider: f}).Run(ctx, drill.Options{App: app})
		requirePassedWithNotes(t, rep, err)
	})
	t.Run("FullPasses", func(t *testing.T) {
		t.Parallel()
		_, f, app := setup(t)
		rep, err := (&drill.Runner{Provider: f, Confirmer: AppConfirmer("U-A")}).Run(ctx, drill.Options{App: app, Mode: drill.ModeFull})
		requirePassedWithNotes(t, rep, err)
	})
	t.Run("RestoreIntoNewPasses", func(t *testing.T) {
		t.Parallel()
		p, _, app := setup(t)
		b, err := (&drill.Runner{Provider: p}).Capture(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		r := &drill.Runner{Provider: p, Confirmer: AppConfirmer("U-ONCALL")}
		rep, err := r.Restore(ctx, drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}, Into: drill.IntoNew})
		requirePassedWithNotes(t, rep, err)
	})
	t.Run("AlteredRestoreFailsNamingEachDifference", func(t *testing.T) {
		t.Parallel()
		_, f, app := setup(t)
		f.After = func(method string, args ...any) {
			if method == "Restore" {
				h.Exec(t, args[1].(drill.Database), AlterBroad)
			}
		}
		rep, err := (&drill.Runner{Provider: f}).Run(ctx, drill.Options{App: app})
		if drill.ErrorCode(err) != drill.EFAILED {
			t.Fatalf("err %v, want the altered restore failed", err)
		}
		names := AlterBroadNames()
		if !rep.Exact {
			names = names[:len(names)-1] // a changed row is drift when not exact
		}
		for _, want := range names {
			if !strings.Contains(rep.Error, want) {
				t.Errorf("the verdict does not name %q: %s", want, rep.Error)
			}
		}
		if len(rep.SchemaDiffs) != 6 {
			t.Errorf("report schema differences %v, want the 6 made", rep.SchemaDiffs)
		}
	})
}

// BroadInvalidIndex is the statement that leaves the broad schema's invalid
// index: a unique index built concurrently over duplicate regions fails and
// leaves shop.customers_region with indisvalid false, as a failed
// CREATE INDEX CONCURRENTLY does in production. pg_dump leaves it out.
const BroadInvalidIndex = `CREATE UNIQUE INDEX CONCURRENTLY customers_region ON shop.customers (region)`

// MakeBroadInvalidIndex runs BroadInvalidIndex with exec, which must run it
// alone (outside a transaction block) as the database's owner, and requires
// the failure that leaves the index invalid.
func MakeBroadInvalidIndex(tb testing.TB, exec func(sql string) error) {
	tb.Helper()
	err := exec(BroadInvalidIndex)
	if err == nil || !strings.Contains(err.Error(), "could not create unique index") {
		tb.Fatalf("the concurrent unique index over duplicates did not fail as expected: %v", err)
	}
}

// LoadBroadSchema loads the broad schema, invalid index included, into the
// local database dbname.
func LoadBroadSchema(tb testing.TB, dbname string) {
	tb.Helper()
	Exec(tb, dbname, BroadSchema(tb))
	conn := Connect(tb, dbname)
	MakeBroadInvalidIndex(tb, func(sql string) error {
		_, err := conn.Exec(context.Background(), sql)
		return err
	})
}
