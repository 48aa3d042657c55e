package drill_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
)

func TestCompare(t *testing.T) {
	t.Parallel()
	tbl := func(schema, name string, rows int64, hash string) drill.TableSum {
		return drill.TableSum{Schema: schema, Name: name, Rows: rows, Hash: hash}
	}
	src := drill.Fingerprint{
		Tables:    []drill.TableSum{tbl("public", "a", 3, "111"), tbl("public", "b", 2, "222"), tbl("Ünï Schema", "Order Items", 0, "0")},
		Sequences: []drill.SequenceState{{Schema: "public", Name: "a_id_seq", LastValue: 3, IsCalled: true}},
		Schema: []drill.SchemaObject{
			{Kind: "column", Name: "public.a.id", Def: "integer not null"},
			{Kind: "constraint", Name: "public.a a_title_check", Def: "CHECK (((title)::text = ANY ((ARRAY['x'::character varying, 'y'::character varying])::text[])))"},
			{Kind: "index", Name: "public.a a_pkey", Def: "CREATE UNIQUE INDEX a_pkey ON public.a USING btree (id)"},
		},
	}
	tests := []struct {
		name        string
		mutate      func(f *drill.Fingerprint)
		exact       bool
		wantOK      bool
		wantInSumm  []string
		wantMissing int
		descending  bool
		// invalidIndex makes the source's index invalid, matView its third
		// table a materialized view.
		invalidIndex, matView bool
		wantNote              string
	}{
		{name: "Identical", mutate: func(*drill.Fingerprint) {}, exact: true, wantOK: true, wantInSumm: []string{"all 3 tables match"}},
		{name: "RowMissing", mutate: func(f *drill.Fingerprint) { f.Tables[1].Rows = 1 }, exact: true,
			wantInSumm: []string{`"public"."b" (2 rows in the source, 1 restored)`}},
		{name: "RowChanged", mutate: func(f *drill.Fingerprint) { f.Tables[0].Hash = "999" }, exact: true,
			wantInSumm: []string{`"public"."a" (same row count, different content)`}},
		{name: "DriftIsNotFailure", mutate: func(f *drill.Fingerprint) { f.Tables[0].Rows = 2 }, exact: false, wantOK: true,
			wantInSumm: []string{"drift"}},
		{name: "DriftMissingTableFails", mutate: func(f *drill.Fingerprint) { f.Tables = f.Tables[1:] }, exact: false,
			wantInSumm: []string{`"public"."a" (missing from the restore)`}},
		{name: "TableMissing", mutate: func(f *drill.Fingerprint) { f.Tables = f.Tables[:2] }, exact: true,
			wantInSumm: []string{`"Ünï Schema"."Order Items" (missing from the restore)`}},
		{name: "TableExtra", mutate: func(f *drill.Fingerprint) { f.Tables = append(f.Tables, tbl("public", "z", 1, "5")) }, exact: true,
			wantInSumm: []string{`"public"."z" (only in the restore)`}},
		{name: "ColumnTypeChanged", mutate: func(f *drill.Fingerprint) { f.Schema[0].Def = "bigint not null" },
			exact: false, wantInSumm: []string{"schema differs in 1 object: column public.a.id changed"}, wantMissing: 1},
		// postgres.md: the CHECK as printed after one dump/restore round trip.
		{name: "DefinitionReprintedMatches", mutate: func(f *drill.Fingerprint) {
			f.Schema[1].Def = "CHECK (((title)::text = ANY (ARRAY[('x'::character varying)::text, ('y'::character varying)::text])))"
		}, exact: true, wantOK: true},
		{name: "DefinitionChangedFails", mutate: func(f *drill.Fingerprint) {
			f.Schema[1].Def = "CHECK (((title)::text = ANY (ARRAY[('x'::character varying)::text, ('z'::character varying)::text])))"
		}, exact: true, wantInSumm: []string{"constraint public.a a_title_check changed"}, wantMissing: 1},
		{name: "IndexMissingFails", mutate: func(f *drill.Fingerprint) { f.Schema = f.Schema[:2] }, exact: true,
			wantInSumm: []string{"index public.a a_pkey missing from the restore"}, wantMissing: 1},
		{name: "InvalidIndexMissingIsANote", mutate: func(f *drill.Fingerprint) { f.Schema = f.Schema[:2] }, exact: true, wantOK: true,
			invalidIndex: true, wantNote: "index public.a a_pkey is invalid in the source"},
		{name: "MatViewDiffersIsANote", mutate: func(f *drill.Fingerprint) { f.Tables[2].Rows = 7 }, exact: true, wantOK: true,
			matView: true, wantNote: `materialized view "Ünï Schema"."Order Items" differs from the source (0 rows in the source, 7 restored)`},
		{name: "SequenceBehindItsColumnsFails", mutate: func(f *drill.Fingerprint) {
			f.Sequences[0].LastValue, f.Sequences[0].Columns, f.Sequences[0].Used = 5, []string{"public.a.id"}, ptr(int64(6))
		}, exact: true, wantInSumm: []string{`"public"."a_id_seq" (restored at 5, behind the value 6 that public.a.id already holds)`}},
		{name: "SequenceBehindSourceBeyondItsColumnsPasses", mutate: func(f *drill.Fingerprint) {
			f.Sequences[0].LastValue, f.Sequences[0].Columns, f.Sequences[0].Used = 2, []string{"public.a.id"}, ptr(int64(2))
		}, exact: true, wantOK: true},
		{name: "FreeSequenceBehindIsDriftWhenNotExact", mutate: func(f *drill.Fingerprint) { f.Sequences[0].LastValue = 2 }, exact: false, wantOK: true},
		{name: "SequenceBehind", mutate: func(f *drill.Fingerprint) { f.Sequences[0].LastValue = 2 }, exact: true,
			wantInSumm: []string{`"public"."a_id_seq" (source at 3, restored at 2)`}},
		{name: "SequenceAheadIsSafe", mutate: func(f *drill.Fingerprint) { f.Sequences[0].LastValue = 9 }, exact: true, wantOK: true},
		{name: "DescendingSequenceBehind", mutate: func(f *drill.Fingerprint) { f.Sequences[0].LastValue = 5 }, exact: true,
			wantInSumm: []string{"a_id_seq"}, descending: true},
		{name: "DescendingSequenceAheadIsSafe", mutate: func(f *drill.Fingerprint) { f.Sequences[0].LastValue = -9 }, exact: true,
			wantOK: true, descending: true},
		{name: "SequenceNotCalled", mutate: func(f *drill.Fingerprint) { f.Sequences[0].IsCalled = false }, exact: true,
			wantInSumm: []string{"a_id_seq"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := clone(src)
			if tt.descending {
				src.Sequences[0].Increment = -1
			}
			if tt.invalidIndex {
				src.Schema[2].Kind = drill.KindInvalidIndex
			}
			if tt.matView {
				src.Tables[2].Kind = drill.KindMatView
			}
			dst := clone(src)
			tt.mutate(&dst)
			c := drill.Compare(src, dst, tt.exact)
			if c.OK() != tt.wantOK {
				t.Errorf("OK() = %v, want %v (%s)", c.OK(), tt.wantOK, c.Summary())
			}
			for _, want := range tt.wantInSumm {
				if !strings.Contains(c.Summary(), want) {
					t.Errorf("summary %q does not contain %q", c.Summary(), want)
				}
			}
			if len(c.SchemaMissing) != tt.wantMissing {
				t.Errorf("schema missing %v", c.SchemaMissing)
			}
			if tt.wantNote != "" && !slices.ContainsFunc(c.Notes, func(n string) bool { return strings.Contains(n, tt.wantNote) }) {
				t.Errorf("notes %q, want one saying %q", c.Notes, tt.wantNote)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func clone(f drill.Fingerprint) drill.Fingerprint {
	return drill.Fingerprint{
		Tables:    append([]drill.TableSum(nil), f.Tables...),
		Sequences: append([]drill.SequenceState(nil), f.Sequences...),
		Schema:    append([]drill.SchemaObject(nil), f.Schema...),
	}
}

func TestRedactor(t *testing.T) {
	t.Parallel()
	r := drill.NewRedactor()
	r.AddSecret("hrku-my-api-key-123")
	for _, tc := range []struct{ in, secret string }{
		{"dial postgres://u:pa55word@db.example.com:5432/d failed", "pa55word"},
		{"postgresql://alice:p%40ss@host/db", "p%40ss"},
		{"postgres://bob:pa@ss:w@rd@db.internal:5432/app", "ss:w@rd"},
		{"host=db user=x password=hunter22 dbname=y", "hunter22"},
		{"password='quoted secret' host=x", "quoted secret"},
		{"token xoxb-1234-5678-abcdefg sent", "xoxb-1234-5678-abcdefg"},
		{"app token xapp-1-A1-123-abc", "xapp-1-A1-123-abc"},
		{"Authorization: Bearer hrku-my-api-key-123", "hrku-my-api-key-123"},
		{"https://bucket.s3.amazonaws.com/b001?X-Amz-Signature=abc123&X-Amz-Expires=600", "abc123"},
	} {
		got := r.Redact(tc.in)
		if strings.Contains(got, tc.secret) {
			t.Errorf("Redact(%q) = %q still holds %q", tc.in, got, tc.secret)
		}
		if !strings.Contains(got, "REDACTED") {
			t.Errorf("Redact(%q) = %q says nothing was removed", tc.in, got)
		}
	}
	if got := r.Redact("restore of b002 onto demo_drill_dab failed"); got != "restore of b002 onto demo_drill_dab failed" {
		t.Errorf("ordinary text changed: %q", got)
	}
}

func TestParseBackupRef(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]drill.BackupRef{
		"fresh": {Kind: drill.BackupFresh}, "latest": {Kind: drill.BackupLatest},
		"b002": {Kind: drill.BackupByID, Num: 2}, "a005": {Kind: drill.BackupByID, Num: 5},
		"2": {Kind: drill.BackupByID, Num: 2}, "B1234": {Kind: drill.BackupByID, Num: 1234},
		"ob001": {Kind: drill.BackupByID, Name: "ob001"}, "OA012": {Kind: drill.BackupByID, Name: "oa012"},
	} {
		got, err := drill.ParseBackupRef(in)
		if err != nil || got != want {
			t.Errorf("ParseBackupRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if s := (drill.BackupRef{Kind: drill.BackupByID, Name: "ob001"}).String(); s != "ob001" {
		t.Errorf("a legacy backup's ref prints as %q", s)
	}
	for _, bad := range []string{"", "b", "x002", "b-1", "b0", "b 2", "latest ", "b1234567890", "２", "o", "ob", "o001", "ob0x1"} {
		if _, err := drill.ParseBackupRef(bad); drill.ErrorCode(err) != drill.EINVALID {
			t.Errorf("ParseBackupRef(%q) err %v, want invalid", bad, err)
		}
	}
}

func TestComparison_LimitDrift(t *testing.T) {
	t.Parallel()
	src := drill.Fingerprint{Tables: []drill.TableSum{
		{Schema: "public", Name: "busy", Rows: 100000, Hash: "1"},
		{Schema: "public", Name: "emptied", Rows: 50, Hash: "2"},
		{Schema: "public", Name: "halved", Rows: 100000, Hash: "3"},
		{Schema: "public", Name: "grew", Rows: 10, Hash: "4"},
	}}
	dst := drill.Fingerprint{Tables: []drill.TableSum{
		{Schema: "public", Name: "busy", Rows: 100500, Hash: "9"},
		{Schema: "public", Name: "emptied", Rows: 0, Hash: "0"},
		{Schema: "public", Name: "halved", Rows: 50000, Hash: "8"},
		{Schema: "public", Name: "grew", Rows: 900, Hash: "7"},
	}}
	c := drill.Compare(src, dst, false)
	if !c.OK() {
		t.Fatalf("unlimited drift failed: %s", c.Summary())
	}
	c.LimitDrift(1000, 0.10)
	if c.OK() {
		t.Fatal("a table emptied and one halved passed as drift")
	}
	for _, tr := range c.Tables {
		wantDrift := tr.Name == "busy" || tr.Name == "grew"
		if tr.Drift != wantDrift {
			t.Errorf("%s: drift %v, want %v (%s)", tr.Name, tr.Drift, wantDrift, tr.Problem)
		}
	}
	if s := c.Summary(); !strings.Contains(s, "emptied") || !strings.Contains(s, "halved") || strings.Contains(s, "busy") {
		t.Errorf("summary %q should name emptied and halved only", s)
	}
}

// TestNormalizeDefinition holds the definitions PostgreSQL prints before and
// after one dump/restore round trip (postgres.md) equal, and real changes
// apart.
func TestNormalizeDefinition(t *testing.T) {
	t.Parallel()
	same := []struct{ name, before, after string }{
		{"InOnVarchar",
			`CHECK (((title)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])))`,
			`CHECK (((title)::text = ANY (ARRAY[('a'::character varying)::text, ('b'::character varying)::text])))`},
		{"BetweenInsideAnd",
			`CHECK ((((qty >= 1) AND (qty <= 99)) AND ((qty < 50) OR (qty = ANY (ARRAY[60, 70])))))`,
			`CHECK (((qty >= 1) AND (qty <= 99) AND ((qty < 50) OR (qty = ANY (ARRAY[60, 70])))))`},
		{"NaturalJoinOnTrue", `SELECT a.x FROM (a JOIN b ON TRUE);`, `SELECT a.x FROM (a JOIN b ON (true));`},
		{"MultiWordCasts", `'2024-01-01 00:00:00+00'::timestamp with time zone`, `('2024-01-01 00:00:00+00'::timestamp(6) with time zone)`},
		{"Whitespace", "SELECT a,\n    b\n   FROM t;", "SELECT a, b FROM t;"},
		{"IntervalCast", `('1 day'::interval day to second)`, `'1 day'::interval day to second`},
		{"WithAfterCast", `unnest((a)::integer[]) WITH ORDINALITY`, `unnest(a::integer[]) WITH ORDINALITY`},
	}
	for _, tt := range same {
		if a, b := drill.NormalizeDefinition(tt.before), drill.NormalizeDefinition(tt.after); a != b {
			t.Errorf("%s: %q and %q normalise apart:\n%s\n%s", tt.name, tt.before, tt.after, a, b)
		}
	}
	differ := []struct{ name, a, b string }{
		{"Constant", `CHECK ((qty > 0))`, `CHECK ((qty > 1))`},
		{"Operator", `CHECK ((qty > 0))`, `CHECK ((qty >= 0))`},
		{"Column", `CHECK ((qty > 0))`, `CHECK ((len > 0))`},
		{"LiteralCase", `CHECK ((kind = 'Drama'::text))`, `CHECK ((kind = 'drama'::text))`},
		{"QuotedIdentifierCase", `SELECT "Ab" FROM t`, `SELECT "ab" FROM t`},
		{"ListMember", `WHERE (kind = ANY (ARRAY['a'::text, 'b'::text]))`, `WHERE (kind = ANY (ARRAY['a'::text]))`},
		{"TypeModifier", `character varying(40) not null`, `character varying(50) not null`},
	}
	for _, tt := range differ {
		if drill.NormalizeDefinition(tt.a) == drill.NormalizeDefinition(tt.b) {
			t.Errorf("%s: %q and %q normalise to the same %q", tt.name, tt.a, tt.b, drill.NormalizeDefinition(tt.a))
		}
	}
}

// A backup's fingerprint stored before schema objects had parts holds
// one-line strings: it still loads, and its schema is not compared (a note
// says so) rather than failing every object.
func TestCompare_StoredFingerprintOfAnOlderVersion(t *testing.T) {
	t.Parallel()
	var old drill.Fingerprint
	if err := json.Unmarshal([]byte(`{"tables":[{"schema":"public","name":"a","rows":1,"hash":"5"}],
		"sequences":[],"schema":["column public.a.id integer not null"]}`), &old); err != nil {
		t.Fatalf("an older fingerprint does not load: %v", err)
	}
	now := drill.Fingerprint{Tables: old.Tables, Schema: []drill.SchemaObject{{Kind: "column", Name: "public.a.id", Def: "integer not null"}}}
	c := drill.Compare(old, now, true)
	if !c.OK() || len(c.Notes) != 1 || !strings.Contains(c.Notes[0], "schema was not compared") {
		t.Fatalf("ok %v notes %q: %s", c.OK(), c.Notes, c.Summary())
	}
	data, err := json.Marshal(now)
	if err != nil {
		t.Fatal(err)
	}
	var back drill.Fingerprint
	if err := json.Unmarshal(data, &back); err != nil || !slices.Equal(back.Schema, now.Schema) {
		t.Fatalf("a fingerprint does not survive JSON: %+v %v", back.Schema, err)
	}
}

// TestSummary_CountsAreWrittenWithTheirPlural: one table, one row and one
// schema difference are written in the singular.
func TestSummary_CountsAreWrittenWithTheirPlural(t *testing.T) {
	t.Parallel()
	one := drill.Fingerprint{Tables: []drill.TableSum{{Schema: "public", Name: "a", Rows: 1, Hash: "1"}}, Schema: []drill.SchemaObject{{Kind: "column", Name: "public.a.id", Def: "integer"}}}
	if got := drill.Compare(one, one, true).Summary(); got != "the 1 table matches" {
		t.Errorf("summary %q", got)
	}
	dst := drill.Fingerprint{Tables: []drill.TableSum{{Schema: "public", Name: "a", Rows: 0, Hash: "0"}}, Schema: []drill.SchemaObject{{Kind: "column", Name: "public.a.id", Def: "bigint"}}}
	got := drill.Compare(one, dst, true).Summary()
	for _, want := range []string{"1 of 1 table differs", "1 row in the source, 0 restored", "the schema differs in 1 object: column public.a.id changed"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
}
