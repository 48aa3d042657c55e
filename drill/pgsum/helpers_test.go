package pgsum_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

// testContext returns a context that ends with the test or after a minute.
func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// fingerprint fingerprints dbname, failing the test on error.
func fingerprint(tb testing.TB, dbname string, opts pgsum.Options) drill.Fingerprint {
	tb.Helper()
	fp, err := pgsum.Fingerprint(testContext(tb), drilltest.ConnConfig(tb, dbname), opts)
	requireNoError(tb, err)
	return fp
}

// newSample makes a database holding sampleSchema and one canary.
func newSample(tb testing.TB) string {
	tb.Helper()
	db := drilltest.CreateDatabase(tb, "pgsum_src")
	drilltest.Exec(tb, db, sampleSchema)
	conn := drilltest.Connect(tb, db)
	c := pgsum.Canary{DrillID: "d-1", Token: "t-1", At: time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC)}
	requireNoError(tb, pgsum.WriteCanary(testContext(tb), conn, c))
	return db
}

// restoreCopy dumps src with pg_dump -Fc and restores it with pg_restore
// --no-owner --no-acl --exit-on-error into a new database, whose name it
// returns.
func restoreCopy(tb testing.TB, src string) string {
	tb.Helper()
	dump := filepath.Join(tb.TempDir(), "src.dump")
	runPG(tb, src, "pg_dump", "-Fc", "-f", dump)
	dst := drilltest.CreateDatabase(tb, "pgsum_dst")
	runPG(tb, dst, "pg_restore", "--no-owner", "--no-acl", "--exit-on-error", "-d", dst, dump)
	return dst
}

// runPG runs a libpq client program against dbname with the test server's
// connection parameters, failing the test unless it exits 0.
func runPG(tb testing.TB, dbname, program string, args ...string) {
	tb.Helper()
	cfg := drilltest.ConnConfig(tb, dbname)
	cmd := exec.CommandContext(testContext(tb), program, args...)
	cmd.Env = append(os.Environ(),
		"PGHOST="+cfg.Host,
		fmt.Sprintf("PGPORT=%d", cfg.Port),
		"PGUSER="+cfg.User,
		"PGDATABASE="+dbname,
	)
	if cfg.Password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+cfg.Password)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", program, strings.Join(args, " "), err, out)
	}
}

// tableKeys returns the keys of fp's tables in order.
func tableKeys(fp drill.Fingerprint) []string {
	keys := make([]string, len(fp.Tables))
	for i, t := range fp.Tables {
		keys[i] = t.Key()
	}
	return keys
}

// tableByKey returns the table of fp with the given key, failing the test
// when there is none.
func tableByKey(tb testing.TB, fp drill.Fingerprint, key string) drill.TableSum {
	tb.Helper()
	for _, t := range fp.Tables {
		if t.Key() == key {
			return t
		}
	}
	tb.Fatalf("no table %s in fingerprint; tables: %v", key, tableKeys(fp))
	return drill.TableSum{}
}

func requireNoError(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("unexpected error: %v", err)
	}
}

func requireEqual[T comparable](tb testing.TB, want, got T, what string) {
	tb.Helper()
	if want != got {
		tb.Fatalf("%s: want %v, got %v", what, want, got)
	}
}

func requireEqualSlices[T comparable](tb testing.TB, want, got []T, what string) {
	tb.Helper()
	if len(want) != len(got) {
		tb.Fatalf("%s: want %d items %v, got %d items %v", what, len(want), want, len(got), got)
	}
	for i := range want {
		if want[i] != got[i] {
			tb.Fatalf("%s: item %d: want %v, got %v\nwant %v\ngot  %v", what, i, want[i], got[i], want, got)
		}
	}
}

func requireContains(tb testing.TB, lines []string, line string) {
	tb.Helper()
	for _, l := range lines {
		if l == line {
			return
		}
	}
	tb.Fatalf("no line %q among %d lines:\n%s", line, len(lines), strings.Join(lines, "\n"))
}

// schemaLines returns fp's schema objects as lines.
func schemaLines(fp drill.Fingerprint) []string {
	out := make([]string, len(fp.Schema))
	for i, o := range fp.Schema {
		out[i] = o.String()
	}
	return out
}

// seqLines returns fp's sequences as lines: key, position, increment, the
// columns using it and the furthest value they hold.
func seqLines(fp drill.Fingerprint) []string {
	out := make([]string, len(fp.Sequences))
	for i, s := range fp.Sequences {
		used := "nil"
		if s.Used != nil {
			used = fmt.Sprint(*s.Used)
		}
		out[i] = fmt.Sprintf("%s %d %v %d [%s] %s", s.Key(), s.LastValue, s.IsCalled, s.Increment, strings.Join(s.Columns, " "), used)
	}
	return out
}
