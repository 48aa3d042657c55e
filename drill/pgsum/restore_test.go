package pgsum_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

func TestFingerprint_RestoreMatches(t *testing.T) {
	t.Parallel()

	src := newSample(t)
	dst := restoreCopy(t, src)
	before := fingerprint(t, src, pgsum.Options{})
	after := fingerprint(t, dst, pgsum.Options{Workers: 2})

	requireEqualSlices(t, sampleTables(), tableKeys(before), "source tables")
	requireEqualSlices(t, sampleTables(), tableKeys(after), "restored tables")

	cmp := drill.Compare(before, after, true)
	if !cmp.OK() {
		t.Fatalf("restore does not match: %s\nmissing: %q\nextra: %q", cmp.Summary(), cmp.SchemaMissing, cmp.SchemaExtra)
	}
	requireEqual(t, len(sampleTables()), len(cmp.Tables), "compared tables")
	for _, tr := range cmp.Tables {
		requireEqual(t, true, tr.Match, "match of "+tr.Schema+"."+tr.Name)
	}
	requireEqual(t, fmt.Sprintf("all %d tables match", len(sampleTables())), cmp.Summary(), "summary")

	rows := map[string]int64{
		`"pg_catalog"."pg_largeobject"`:    3, // large objects, not pages
		`"public"."child_t"`:               1, // ONLY: not the parent's
		`"public"."parent_t"`:              1,
		`"public"."dupes"`:                 4, // duplicates each count
		`"public"."empty"`:                 0,
		`"public"."nocols"`:                3,
		`"public"."scratch"`:               2, // unlogged
		`"sales"."events_2022"`:            1,
		`"sales"."events_2023"`:            1,
		`"sales"."events_2024"`:            2,
		`"sales"."events_default"`:         1,
		`"sales"."everything"`:             4,
		`"sales"."tbl""quote"`:             3,
		`"Ünïcode Schema"."Ärger Tabelle"`: 3,
	}
	for key, n := range rows {
		requireEqual(t, n, tableByKey(t, before, key).Rows, "rows of "+key)
	}
	requireEqual(t, "0", tableByKey(t, before, `"public"."empty"`).Hash, "hash of the empty table")
	dupes := tableByKey(t, before, `"public"."dupes"`).Hash
	if dupes == "0" || strings.HasPrefix(dupes, "-0") {
		t.Fatalf("dupes hash %q looks empty", dupes)
	}

	requireEqualSlices(t, []string{
		`"sales"."Order Items_id_seq" 3 true 1 ["sales"."Order Items"."id"] 3`,
		`"sales"."everything_id_seq" 4 true 1 ["sales"."everything"."id"] 4`,
		`"sales"."ticket_seq" 130 true 5 [] nil`, // its column has no index
	}, seqLines(before), "sequences")
	requireEqualSlices(t, seqLines(before), seqLines(after), "restored sequences")

	for _, line := range []string{
		`column "Ünïcode Schema"."Ärger Tabelle"."Mixed Case" integer`,
		`column sales.everything.ci text collate pg_catalog."C"`,
		`column sales.everything.doubled numeric generated always as ((n * (2)::numeric)) stored`,
		`column sales.everything.id integer not null generated always as identity`,
		`column sales.everything.ticket integer default nextval('sales.ticket_seq'::regclass)`,
		`composite sales.pair (x integer, label text)`,
		`constraint sales.events_2022 events_customer FOREIGN KEY (id) REFERENCES sales.customer(id)`,
		`domain sales.code text code_check CHECK ((VALUE ~ '^[A-Z]+$'::text))`,
		`enum sales.mood 'sad', 'ok', 'happy, really', 'it''s'`,
		`extension hstore 1.8 schema public`,
		`index sales."Order Items" "Order Items sku" CREATE INDEX "Order Items sku" ON sales."Order Items" USING btree (lower(sku)) WHERE (qty > 1)`,
		`inherits public.child_t from public.parent_t`,
		`materialized view sales.order_count SELECT count(*) AS n FROM sales."Order Items";`,
		`partition sales.events_default of sales.events DEFAULT`,
		`partitioned sales.events RANGE (at)`,
		`schema "Ünïcode Schema"`,
		`sequence sales.ticket_seq bigint increment 5 minvalue 1 maxvalue 9223372036854775807 start 100 cache 1 no cycle`,
		`trigger sales."Order Items" touch CREATE TRIGGER touch BEFORE INSERT ON sales."Order Items" FOR EACH ROW EXECUTE FUNCTION sales.touch()`,
	} {
		requireContains(t, schemaLines(before), line)
	}
	for _, line := range schemaLines(before) {
		if strings.Contains(line, "ext_owned") || strings.Contains(line, "hstore_") {
			t.Fatalf("extension member in the schema lines: %q", line)
		}
	}
}

// TestFingerprint_PhysicalLayoutIgnored shows why rows are hashed with their
// columns in name order and large objects by content: pg_dump changes both
// physical layouts, and a naive hash would call the faithful restore broken.
func TestFingerprint_PhysicalLayoutIgnored(t *testing.T) {
	t.Parallel()

	src := newSample(t)
	dst := restoreCopy(t, src)

	naive := func(db, sql string) string {
		var got string
		requireNoError(t, drilltest.Connect(t, db).QueryRow(testContext(t), sql).Scan(&got))
		return got
	}
	for _, sql := range []string{
		// the child's column d moves after c in the restore
		`SELECT sum(hashtextextended(t::text, 0))::text FROM ONLY public.child_t t`,
		// the sparse object's missing pages are written out in the restore
		`SELECT count(*) || ' pages ' || sum(hashtextextended(loid || ':' || pageno || ':' || encode(data, 'hex'), 0)) FROM pg_largeobject`,
	} {
		if a, b := naive(src, sql), naive(dst, sql); a == b {
			t.Fatalf("expected the naive hash to differ after restore, both are %s: %s", a, sql)
		}
	}

	before := fingerprint(t, src, pgsum.Options{})
	after := fingerprint(t, dst, pgsum.Options{})
	for _, key := range []string{`"public"."child_t"`, `"pg_catalog"."pg_largeobject"`} {
		requireEqual(t, tableByKey(t, before, key), tableByKey(t, after, key), key)
	}
}

func TestFingerprint_AlteredRestoreIsCaught(t *testing.T) {
	t.Parallel()

	src := newSample(t)
	dst := restoreCopy(t, src)
	drilltest.Exec(t, dst, `
UPDATE sales."Order Items" SET qty = qty + 1 WHERE id = 2;
DELETE FROM public.dupes WHERE ctid = (SELECT ctid FROM public.dupes WHERE a = 1 LIMIT 1);
ALTER TABLE "Ünïcode Schema"."Ärger Tabelle" ALTER COLUMN "Mixed Case" TYPE bigint;
`)
	cmp := drill.Compare(fingerprint(t, src, pgsum.Options{}), fingerprint(t, dst, pgsum.Options{Workers: 1}), true)

	requireEqual(t, false, cmp.OK(), "OK")
	bad := cmp.Mismatched()
	requireEqual(t, 2, len(bad), fmt.Sprintf("mismatched tables (%+v)", bad))
	requireEqual(t, "public", bad[0].Schema, "first mismatch schema")
	requireEqual(t, "dupes", bad[0].Name, "first mismatch name")
	requireEqual(t, "4 rows in the source, 3 restored", bad[0].Problem, "dupes problem")
	requireEqual(t, "sales", bad[1].Schema, "second mismatch schema")
	requireEqual(t, "Order Items", bad[1].Name, "second mismatch name")
	requireEqual(t, "same row count, different content", bad[1].Problem, "Order Items problem")

	// int -> bigint keeps every row's text form: only the schema tells.
	requireEqualSlices(t, []string{`column "Ünïcode Schema"."Ärger Tabelle"."Mixed Case" integer`}, cmp.SchemaMissing, "schema missing")
	requireEqualSlices(t, []string{`column "Ünïcode Schema"."Ärger Tabelle"."Mixed Case" bigint`}, cmp.SchemaExtra, "schema extra")
	if !strings.Contains(cmp.Summary(), `2 of 17 tables differ: "public"."dupes" (4 rows in the source, 3 restored), "sales"."Order Items" (same row count, different content)`) {
		t.Fatalf("summary does not name the tables: %s", cmp.Summary())
	}
}
