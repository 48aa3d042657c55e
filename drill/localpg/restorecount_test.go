package localpg_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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
