package drilltest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
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
