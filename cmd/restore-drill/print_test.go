package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/localpg"
)

// alteredRestore runs a verify drill of a fresh app on the local provider
// whose restore is altered by sql before it is fingerprinted, as a restore
// that lost or changed part of the schema would be.
func alteredRestore(t *testing.T, appSQL, sql string) *drill.Report {
	t.Helper()
	app := drilltest.CreateDatabase(t, "print")
	drilltest.Exec(t, app, appSQL)
	t.Cleanup(func() { dropLeftovers(t, app) })
	p, err := localpg.New(localpg.Config{Server: drilltest.ConnConfig(t, ""), BackupDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	f := drilltest.NewFaulty(p)
	f.After = func(method string, args ...any) {
		if method == "Restore" {
			drilltest.Exec(t, args[1].(drill.Database).Name, sql)
		}
	}
	rep, err := (&drill.Runner{Provider: f, Confirmer: drilltest.AppConfirmer("tester")}).Run(context.Background(), drill.Options{App: app})
	if drill.ErrorCode(err) != drill.EFAILED {
		t.Fatalf("err %v, want a failed drill", err)
	}
	return rep
}

// TestReport_SchemaFailureShowsBothSidesAndWhy: a restore whose schema
// differs shows, in the terminal and in the exported report, each
// difference with its source and its restore side, and says in one line
// why the drill failed although every table's rows match.
func TestReport_SchemaFailureShowsBothSidesAndWhy(t *testing.T) {
	t.Parallel()
	rep := alteredRestore(t, `
		CREATE TABLE orders (id int PRIMARY KEY, qty int CONSTRAINT qty_positive CHECK (qty > 0), note text DEFAULT 'none');
		CREATE INDEX orders_note ON orders (note);
		INSERT INTO orders SELECT g, g, 'n' FROM generate_series(1, 10) g;`,
		`ALTER TABLE orders DROP CONSTRAINT qty_positive, ADD CONSTRAINT qty_positive CHECK (qty > 5) NOT VALID;
		 ALTER TABLE orders ALTER COLUMN note SET DEFAULT 'other';
		 DROP INDEX orders_note;`)
	var out bytes.Buffer
	printReport(&out, rep)
	md := rep.Markdown()
	for _, want := range []string{
		"why:      the restore does not match the source: the schema differs in 3 objects: column public.orders.note changed, constraint public.orders qty_positive changed, index public.orders orders_note missing from the restore; every table's rows and content match\n",
		"source:  column public.orders.note text default 'none'::text\n    restore: column public.orders.note text default 'other'::text\n",
		"source:  constraint public.orders qty_positive CHECK ((qty > 0))\n    restore: constraint public.orders qty_positive CHECK ((qty > 5)) NOT VALID\n",
		"source:  index public.orders orders_note CREATE INDEX orders_note ON public.orders USING btree (note)\n    restore: (absent)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("terminal report lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "the schema differs"); n != 1 {
		t.Errorf("the terminal says why %d times:\n%s", n, out.String())
	}
	for _, want := range []string{
		"**the restore does not match the source: the schema differs in 3 objects: column public.orders.note changed, constraint public.orders qty\\_positive changed, index public.orders orders\\_note missing from the restore; every table's rows and content match**",
		"| `column public.orders.note text default 'none'::text` | `column public.orders.note text default 'other'::text` |",
		"| `index public.orders orders_note CREATE INDEX orders_note ON public.orders USING btree (note)` | *(absent)* |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("exported report lacks %q:\n%s", want, md)
		}
	}
	if n := strings.Count(md, "the schema differs"); n != 2 { // the verdict and the failed step
		t.Errorf("the exported report says why %d times:\n%s", n, md)
	}
}

// TestRestore_FreshnessNamesSchemaAndReadsInYears: before a restored
// database serves, its newest timestamps are shown with their schema, and
// an age of years reads in years and months, not tens of thousands of hours.
func TestRestore_FreshnessNamesSchemaAndReadsInYears(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	drilltest.Exec(t, app, `
		CREATE SCHEMA ledger;
		CREATE TABLE ledger."Entries" (id int PRIMARY KEY, "booked at" timestamptz);
		CREATE INDEX ON ledger."Entries" ("booked at");
		INSERT INTO ledger."Entries" VALUES (1, now() - interval '4 years 3 months 10 days');`)
	if r := cli(t, env, "capture", app); r.code != 0 {
		t.Fatalf("capture: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r := cli(t, env, "restore", app, "b001", "--confirm", app)
	if r.code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{`newest data: "ledger"."Entries"."booked at": `, "(4 years 3 months before the restore)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.stdout)
		}
	}
}
