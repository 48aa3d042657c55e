package localpg_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/localpg"
)

// failingCopySQL makes pg_restore fail one COPY: it runs a CHECK's function
// with an empty search_path, so the function's unqualified table is not
// found (postgres.md).
const failingCopySQL = `
CREATE TABLE allowed (v int);
INSERT INTO allowed VALUES (1), (2);
CREATE FUNCTION is_allowed(x int) RETURNS bool LANGUAGE sql AS 'SELECT EXISTS (SELECT 1 FROM allowed WHERE v = x)';
CREATE TABLE orders (id int, v int CHECK (is_allowed(v)));
INSERT INTO orders VALUES (1, 1), (2, 2);`

// TestRestore_CountsErrorsAsPgRestoreDoes: a failed restore reports the
// number of errors pg_restore itself counted ("errors ignored on restore:
// N"), with the right plural, not the number of error lines it printed.
func TestRestore_CountsErrorsAsPgRestoreDoes(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	drilltest.Exec(t, app, failingCopySQL)
	dir := t.TempDir()
	const jobs = 2
	rep, err := run(t, newProvider(t, inDir(dir), func(c *localpg.Config) { c.Jobs = jobs }), drill.Options{App: app})
	if drill.ErrorCode(err) != drill.EFAILED {
		t.Fatalf("err %v, want a failed drill", err)
	}
	// What pg_restore itself counts for this very dump and -j.
	dumps, _ := filepath.Glob(filepath.Join(dir, "*", "*.dump"))
	if len(dumps) != 1 {
		t.Fatalf("dumps %v, want one", dumps)
	}
	target := drilltest.CreateDatabase(t, "count")
	out, _ := exec.Command("pg_restore", fmt.Sprintf("--jobs=%d", jobs), "--no-owner", "--no-acl", "--dbname="+target, dumps[0]).CombinedOutput()
	m := regexp.MustCompile(`errors ignored on restore: (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("pg_restore printed no count:\n%s", out)
	}
	want := "reported " + string(m[1]) + " errors"
	if string(m[1]) == "1" {
		want = "reported 1 error "
	}
	if !strings.Contains(rep.Error, want) {
		t.Errorf("report error %q does not say %q", rep.Error, want)
	}
}

// TestRestore_ProgressReportsBytesOfTheDump: a restore reports, while it
// runs, the bytes of the dump pg_restore and its workers have read against
// the dump's size, rising, so that a long restore shows it is moving
// between one table and the next.
func TestRestore_ProgressReportsBytesOfTheDump(t *testing.T) {
	t.Parallel()
	app := drilltest.CreateDatabase(t, "progress")
	drilltest.Exec(t, app, `
		CREATE TABLE big (id int PRIMARY KEY, v text);
		INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 30000) g;`)
	t.Cleanup(func() {
		for _, name := range leftovers(t, app) {
			drilltest.DropDatabase(t, name)
		}
	})
	p := newProvider(t, func(c *localpg.Config) { c.ProgressInterval = 5 * time.Millisecond })
	var mu sync.Mutex
	var seen []drill.Event
	sink := drill.SinkFunc(func(e drill.Event) {
		if e.Kind == drill.StepProgress && e.Step == drill.StepRestore && e.Total > 0 {
			mu.Lock()
			seen = append(seen, e)
			mu.Unlock()
		}
	})
	rep, err := (&drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("tester"), Sink: sink}).Run(context.Background(), drill.Options{App: app})
	if err != nil {
		t.Fatalf("drill: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var mid, last int64
	for _, e := range seen {
		if e.Total != rep.Backup.SizeBytes {
			t.Fatalf("progress total %d, want the dump's size %d", e.Total, rep.Backup.SizeBytes)
		}
		if e.Bytes < last || e.Bytes > e.Total {
			t.Fatalf("progress went from %d to %d of %d", last, e.Bytes, e.Total)
		}
		if e.Bytes > 0 && e.Bytes < e.Total {
			mid++
		}
		if !strings.Contains(e.Message, "of the "+drill.HumanBytes(e.Total)+" dump") {
			t.Errorf("progress message %q does not say the dump's size", e.Message)
		}
		last = e.Bytes
	}
	t.Logf("%d progress events, %d mid-restore, dump %d bytes, restore %.2fs", len(seen), mid, rep.Backup.SizeBytes, rep.RestoreSeconds)
	if mid == 0 {
		t.Fatalf("no progress between the start and the end of the restore: %d events", len(seen))
	}
}
