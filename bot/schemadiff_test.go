package bot

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
)

// TestSlackReport_SchemaFailureShowsBothSidesOnce: in Slack, a schema
// failure shows each difference from both sides in the checksum message,
// and the verdict says why once, noting that every table matches.
func TestSlackReport_SchemaFailureShowsBothSidesOnce(t *testing.T) {
	t.Parallel()
	why := "the restore does not match the source: the schema differs in 2 places (1 changed, 1 missing from the restore): column public.t.v, index public.t CREATE INDEX t_v ON public.t USING btree (v)"
	r := &drill.Report{DrillID: "d1", App: "shop", Result: drill.Failed, Mode: drill.ModeVerify, Error: why, Verification: strings.TrimPrefix(why, "the restore does not match the source: "),
		Tables: []drill.TableResult{{Schema: "public", Name: "t", SourceRows: 3, RestoredRows: 3, Match: true}},
		SchemaDiffs: []drill.SchemaDiff{
			{Source: "column public.t.v integer", Restored: "column public.t.v bigint"},
			{Source: "index public.t CREATE INDEX t_v ON public.t USING btree (v)"},
		}}
	var table strings.Builder
	m, _ := checksumReply(r)
	b, _ := json.Marshal(m.Blocks)
	table.Write(b)
	for _, want := range []string{"*Checksums* — 1 table, 1 match", "✗ schema: 2 differences (- source, + restore)",
		`- column public.t.v integer\n+ column public.t.v bigint`, `- index public.t CREATE INDEX t_v ON public.t USING btree (v)\n+ (absent)`} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("checksum message lacks %q: %s", want, table.String())
		}
	}
	for _, mode := range []drill.Mode{drill.ModeVerify, drill.ModeRestore} {
		r.Mode = mode
		v, _ := json.Marshal(verdictMessage(r).Blocks)
		if n := strings.Count(string(v), "the schema differs"); n != 1 || !strings.Contains(string(v), "every table's rows and content match") {
			t.Errorf("the %s verdict says why %d times, or not that the tables match: %s", mode, n, v)
		}
	}
}
