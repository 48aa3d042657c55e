package drill_test

import (
	"reflect"
	"testing"

	"github.com/restore-drill/restore-drill/drill"
)

// TestPairSchemaLines_PairsEachObjectWithItsOwnRestore: a changed object
// is shown beside its own restored version (the line sharing the most
// leading words), not beside another object of the same table; what has
// no partner stays one-sided.
func TestPairSchemaLines_PairsEachObjectWithItsOwnRestore(t *testing.T) {
	t.Parallel()
	missing := []string{
		"index public.t CREATE INDEX a_idx ON public.t USING btree (a)",
		"column public.t.v integer",
		"constraint public.t gone CHECK ((v > 0))",
	}
	extra := []string{
		"index public.t CREATE INDEX b_idx ON public.t USING btree (b)",
		"index public.t CREATE INDEX a_idx ON public.t USING hash (a)",
		"column public.t.v bigint",
	}
	want := []drill.SchemaDiff{
		{Source: missing[0], Restore: extra[1]},
		{Source: missing[1], Restore: extra[2]},
		{Source: missing[2]},
		{Restore: extra[0]},
	}
	if got := drill.PairSchemaLines(missing, extra); !reflect.DeepEqual(got, want) {
		t.Errorf("PairSchemaLines =\n%q\nwant\n%q", got, want)
	}
}
