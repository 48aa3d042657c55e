package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
)

// stateURL points DATABASE_URL at a state database of the test's own.
func stateURL(t *testing.T) string {
	t.Helper()
	return dbURL(drilltest.CreateDatabase(t, "state"))
}

// dbURL is the URL of database db on the test server.
func dbURL(db string) string {
	base := drilltest.ServerURL()
	if base == "" {
		return "dbname=" + db
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		return base + " dbname=" + db
	}
	u.Path = "/" + db
	return u.String()
}

// killAt runs the binary with args and SIGKILLs it when a line of its
// progress contains line, after delay (to land inside a step: the delay is
// the fault, not a wait).
func killAt(t *testing.T, env []string, line string, delay time.Duration, args ...string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		said, ok := tryKillAt(t, env, line, delay, args...)
		if ok {
			return
		}
		if attempt == 2 {
			t.Fatalf("the drill never reached %q; it said:\n%s", line, said)
		}
		// Seen once in many CI runs: the drill ended before the line, for
		// a reason its output now shows. One more try keeps the kill test
		// about kills; the output stays in the log.
		t.Logf("the drill ended before %q; trying once more. It said:\n%s", line, said)
	}
}

// tryKillAt is one try of killAt: it reports whether the kill happened, and
// what the drill said.
func tryKillAt(t *testing.T, env []string, line string, delay time.Duration, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(baseEnv(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	var seen strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), line) {
			time.Sleep(delay)
			_ = cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	_ = cmd.Wait()
	return seen.String(), killed
}

// A full drill killed with SIGKILL at every step boundary, and in the
// middle of the long steps, is finished by `restore-drill resume`:
// production ends out of maintenance, served by its original database,
// with its data, and no database of the drill is left behind.
func TestKill_AtEveryStepResumeRestoresProduction(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	drilltest.Exec(t, app, `CREATE TABLE bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g`)
	env = append(env, "DATABASE_URL="+stateURL(t))
	admin := drilltest.Connect(t, "")
	var oid uint32
	if err := admin.QueryRow(context.Background(), `SELECT oid FROM pg_database WHERE datname = $1`, app).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	type point struct {
		line  string
		delay time.Duration
	}
	var points []point
	for _, s := range []string{"preflight", "provision", "canary", "maintenance_on", "capture", "restore", "verify",
		"promote", "check_promoted", "promote_back", "maintenance_off", "destroy_scratch"} {
		points = append(points, point{line: "…  " + s})
	}
	points = append(points,
		point{line: "…  capture", delay: 150 * time.Millisecond},
		point{line: "…  restore", delay: 150 * time.Millisecond},
		point{line: "✓  promote ", delay: 0},
		point{line: "✓  restore ", delay: 0},
	)
	restored := 0
	for _, pt := range points {
		name := strings.TrimSpace(strings.NewReplacer("…", "", "✓", "done").Replace(pt.line))
		if pt.delay > 0 {
			name += " (mid-step)"
		}
		ok := t.Run(name, func(t *testing.T) {
			killAt(t, env, pt.line, pt.delay, "run", app, "--mode", "full", "--confirm", app)
			r := cli(t, env, "resume", "--json")
			if r.code != 0 {
				t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			var out struct {
				Resumed []struct {
					DrillID    string   `json:"drill_id"`
					Undone     []string `json:"undone"`
					UndoFailed []string `json:"undo_failed"`
				} `json:"resumed"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatal(err)
			}
			if len(out.Resumed) != 1 || len(out.Resumed[0].UndoFailed) > 0 {
				t.Errorf("resume: %s", r.stdout)
			}
			var limit int
			var nowOID uint32
			if err := admin.QueryRow(context.Background(), `SELECT oid, datconnlimit FROM pg_database WHERE datname = $1`, app).Scan(&nowOID, &limit); err != nil {
				t.Fatalf("%s has no database after resume: %v", app, err)
			}
			if limit != -1 {
				t.Errorf("left in maintenance (connection limit %d)", limit)
			}
			if nowOID != oid {
				t.Errorf("%s is served by database oid %d, not its original %d", app, nowOID, oid)
			}
			var rows int
			if err := drilltest.Connect(t, app).QueryRow(context.Background(), `SELECT count(*) FROM bulk`).Scan(&rows); err != nil || rows != 200000 {
				t.Errorf("production data: %d rows, %v", rows, err)
			}
			if left := leftovers(t, app); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
			var parked int
			if err := admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname LIKE $1 || '\_orig\_%'`, app).Scan(&parked); err != nil || parked != 0 {
				t.Errorf("%d parked databases left", parked)
			}
		})
		if ok {
			restored++
		}
	}
	t.Logf("kill points: %d; production restored after resume: %d", len(points), restored)
}

// The same on Heroku (the fake): a full drill killed at each step, then
// resumed by another process that never saw it, leaves the app with exactly
// its attachments, formation, add-ons and maintenance mode. What the dead
// provider kept in memory (the formation before maintenance, the spare
// attachment of a promote) comes back from the journal.
func TestKill_HerokuResumeRestoresTheApp(t *testing.T) {
	t.Parallel()
	s, app, env := newHerokuApp(t, herokutest.AppOptions{Formation: map[string]int{"web": 2, "worker": 3}, Backups: []time.Duration{time.Hour}})
	env = append(env, "DATABASE_URL="+stateURL(t))
	atts, forms, addons := s.Attachments(app), s.Formation(app), s.AddOns(app)
	var points []string
	for _, step := range []string{"provision", "maintenance_on", "capture", "restore", "verify", "promote", "check_promoted", "promote_back", "maintenance_off", "destroy_scratch"} {
		points = append(points, "…  "+step)
	}
	points = append(points, "✓  maintenance_on ", "✓  promote ")
	restored := 0
	for _, line := range points {
		ok := t.Run(strings.TrimSpace(strings.NewReplacer("…", "", "✓", "done").Replace(line)), func(t *testing.T) {
			killAt(t, env, line, 0, "run", app, "--provider", "heroku", "--mode", "full", "--confirm", app)
			r := cli(t, env, "resume", "--provider", "heroku", "--json")
			if r.code != 0 || !strings.Contains(r.stdout, `"resumed"`) {
				t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			requireNoCredential(t, s, r)
			if s.Maintenance(app) {
				t.Errorf("left in maintenance")
			}
			if got := s.Formation(app); !equalMaps(got, forms) {
				t.Errorf("formation %v, want %v", got, forms)
			}
			if got := s.Attachments(app); !sameAttachments(got, atts) {
				t.Errorf("attachments %+v, want %+v", got, atts)
			}
			if got := s.AddOns(app); len(got) != len(addons) {
				t.Errorf("add-ons %+v, want %+v", got, addons)
			}
		})
		if ok {
			restored++
		}
	}
	t.Logf("heroku kill points: %d; app restored after resume: %d", len(points), restored)
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func sameAttachments(a, b []herokutest.Attachment) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].AddonID != b[i].AddonID {
			return false
		}
	}
	return true
}
