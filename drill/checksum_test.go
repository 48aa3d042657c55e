package drill_test

import (
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
		Schema:    []string{"column public.a.id integer not null", "index public.a CREATE UNIQUE INDEX a_pkey ON public.a USING btree (id)"},
	}
	tests := []struct {
		name        string
		mutate      func(f *drill.Fingerprint)
		exact       bool
		wantOK      bool
		wantInSumm  []string
		wantMissing int
		descending  bool
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
		{name: "ColumnTypeChanged", mutate: func(f *drill.Fingerprint) {
			f.Schema = []string{"column public.a.id bigint not null", f.Schema[1]}
		}, exact: false, wantInSumm: []string{"schema differs in 1 place (1 changed): column public.a.id"}, wantMissing: 1},
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
		})
	}
}

func clone(f drill.Fingerprint) drill.Fingerprint {
	return drill.Fingerprint{
		Tables:    append([]drill.TableSum(nil), f.Tables...),
		Sequences: append([]drill.SequenceState(nil), f.Sequences...),
		Schema:    append([]string(nil), f.Schema...),
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
	} {
		got, err := drill.ParseBackupRef(in)
		if err != nil || got != want {
			t.Errorf("ParseBackupRef(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "b", "x002", "b-1", "b0", "b 2", "latest ", "b1234567890", "２"} {
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

// TestSummary_CountsAreWrittenWithTheirPlural: one table, one row and one
// schema difference are written in the singular.
func TestSummary_CountsAreWrittenWithTheirPlural(t *testing.T) {
	t.Parallel()
	one := drill.Fingerprint{Tables: []drill.TableSum{{Schema: "public", Name: "a", Rows: 1, Hash: "1"}}, Schema: []string{"column public.a.id integer"}}
	if got := drill.Compare(one, one, true).Summary(); got != "the 1 table matches" {
		t.Errorf("summary %q", got)
	}
	dst := drill.Fingerprint{Tables: []drill.TableSum{{Schema: "public", Name: "a", Rows: 0, Hash: "0"}}, Schema: []string{"column public.a.id bigint"}}
	got := drill.Compare(one, dst, true).Summary()
	for _, want := range []string{"1 of 1 table differs", "1 row in the source, 0 restored", "the schema differs in 1 place (1 changed)"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary %q lacks %q", got, want)
		}
	}
}
