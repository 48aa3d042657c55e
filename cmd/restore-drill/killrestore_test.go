package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/heroku/herokutest"
)

// contents is what database db holds, table by table: its row count and a
// hash of its rows. Two databases with the same contents hold the same data;
// a half-restored one matches neither side.
func contents(t *testing.T, db string) string {
	t.Helper()
	ctx := context.Background()
	conn := drilltest.Connect(t, db)
	rows, err := conn.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, tb := range tables {
		var n, sum int64
		if err := conn.QueryRow(ctx, `SELECT count(*), coalesce(sum(hashtext(x::text)::bigint), 0) FROM `+tb+` x`).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%d:%d ", tb, n, sum)
	}
	return b.String()
}

// changeAfterBackup makes production's data differ from its backup in
// every table, and adds one, so that a mix of the two shows.
const changeAfterBackup = `DELETE FROM bulk WHERE g > 150000; UPDATE drill_items SET note = 'changed';
	CREATE TABLE after_backup AS SELECT g FROM generate_series(1, 10) g;`

// restoreKillPoints are where an emergency restore is killed: inside the
// long steps (the safety backup and the restore take a few hundred
// milliseconds on these databases) and where it changes what serves the
// app. (Before the safety backup nothing has changed; the kill suite keeps
// to the points where something has.)
func restoreKillPoints(into string) []killPoint {
	if into == "production" {
		return []killPoint{
			{line: "…  safety_backup", delay: 100 * time.Millisecond},
			{line: "…  maintenance_on"},
			{line: "…  restore_in_place", delay: 60 * time.Millisecond},
			{line: "…  restore_in_place", delay: 150 * time.Millisecond},
			{line: "✓  restore_in_place "},
			{line: "…  maintenance_off"},
		}
	}
	return []killPoint{
		{line: "…  provision"},
		{line: "…  restore", delay: 60 * time.Millisecond},
		{line: "confirmed promote"},
		{line: "…  promote"},
		{line: "…  check_promoted"},
		{line: "…  adopt"},
	}
}

type killPoint struct {
	line  string
	delay time.Duration
}

func (p killPoint) name() string {
	n := strings.TrimSpace(strings.NewReplacer("…", "", "✓", "done").Replace(p.line))
	if p.delay > 0 {
		n += fmt.Sprintf(" (+%s)", p.delay)
	}
	return n
}

// resumeClean runs `restore-drill resume` and requires it to succeed, with
// nothing it could not undo.
func resumeClean(t *testing.T, env []string, args ...string) {
	t.Helper()
	r := cli(t, env, append([]string{"resume", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var out struct {
		Resumed []struct {
			UndoFailed []string `json:"undo_failed"`
		} `json:"resumed"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("resume: %v\n%s", err, r.stdout)
	}
	for _, x := range out.Resumed {
		if len(x.UndoFailed) > 0 {
			t.Errorf("resume could not undo %v:\n%s\n%s", x.UndoFailed, r.stdout, r.stderr)
		}
	}
}

// An emergency restore killed with SIGKILL at any point, in place or into
// a new database, is finished by `restore-drill resume` (exit 0): the app
// ends out of maintenance with its previous connection limit, holding all
// of its data from before or all of the backup's, never a mix; the
// database it no longer uses, if any, is kept whole for forensics.
func TestKill_EmergencyRestoreResumesToOneWholeState(t *testing.T) {
	t.Parallel()
	for _, into := range []string{"production", "new"} {
		for _, pt := range restoreKillPoints(into) {
			t.Run(into+"/"+pt.name(), func(t *testing.T) {
				t.Parallel()
				app, env := newApp(t)
				drilltest.Exec(t, app, `CREATE TABLE bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g`)
				env = append(env, "DATABASE_URL="+stateURL(t))
				if r := cli(t, env, "capture", app); r.code != 0 {
					t.Fatalf("capture: exit %d\n%s", r.code, r.stderr)
				}
				backup := contents(t, app)
				drilltest.Exec(t, app, changeAfterBackup)
				drilltest.Exec(t, "", `ALTER DATABASE `+pgx.Identifier{app}.Sanitize()+` CONNECTION LIMIT 50`)
				before := contents(t, app)

				proof := app
				if into == "production" {
					proof = app + " b001"
				}
				killAt(t, env, pt.line, pt.delay, "restore", app, "b001", "--into", into, "--confirm", proof)
				resumeClean(t, env)

				var limit int
				if err := drilltest.Connect(t, "").QueryRow(context.Background(), `SELECT datconnlimit FROM pg_database WHERE datname = $1`, app).Scan(&limit); err != nil {
					t.Fatal(err)
				}
				if limit != 50 {
					t.Errorf("connection limit %d after resume, want 50 as before", limit)
				}
				now := contents(t, app)
				if now != before && now != backup {
					t.Fatalf("%s holds a mix:\n%s\nbefore:\n%s\nbackup:\n%s", app, now, before, backup)
				}
				left := leftovers(t, app)
				switch {
				case now == before && len(left) > 0:
					t.Errorf("rolled back, but left behind %v", left)
				case now == backup && into == "new" && (len(left) != 1 || contents(t, left[0]) != before):
					t.Errorf("restored into new: want the previous database kept whole, have %v", left)
				case now == backup && into == "production" && len(left) > 0:
					t.Errorf("restored in place, but left behind %v", left)
				}
			})
		}
	}
}

// The same on Heroku (the fake): whatever the kill point, resume leaves the
// app out of maintenance with its formation, its DATABASE holding all of
// its data from before or all of the backup's.
func TestKill_HerokuEmergencyRestoreResumesToOneWholeState(t *testing.T) {
	t.Parallel()
	for _, into := range []string{"production", "new"} {
		for _, pt := range restoreKillPoints(into) {
			t.Run(into+"/"+pt.name(), func(t *testing.T) {
				t.Parallel()
				s, app, env := newHerokuApp(t, herokutest.AppOptions{Formation: map[string]int{"web": 2, "worker": 1},
					SQL: `CREATE TABLE drill_items (id int PRIMARY KEY, note text);
						INSERT INTO drill_items SELECT g, 'n' || g FROM generate_series(1, 100) g;
						CREATE TABLE bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g`,
					Backups: []time.Duration{time.Hour}})
				env = append(env, "DATABASE_URL="+stateURL(t))
				serving := func() string {
					for _, a := range s.Attachments(app) {
						if a.Name == "DATABASE" {
							return a.AddonID
						}
					}
					t.Fatalf("%s has no DATABASE", app)
					return ""
				}
				original := serving()
				backup := contents(t, s.DatabaseOf(original))
				if err := s.Exec(original, changeAfterBackup); err != nil {
					t.Fatal(err)
				}
				before := contents(t, s.DatabaseOf(original))
				forms := s.Formation(app)

				proof := app
				if into == "production" {
					proof = app + " a001"
				}
				killAt(t, env, pt.line, pt.delay, "restore", app, "a001", "--provider", "heroku", "--into", into, "--confirm", proof)
				resumeClean(t, env, "--provider", "heroku")

				if s.Maintenance(app) {
					t.Errorf("left in maintenance")
				}
				if got := s.Formation(app); !equalMaps(got, forms) {
					t.Errorf("formation %v, want %v", got, forms)
				}
				now := contents(t, s.DatabaseOf(serving()))
				if now != before && now != backup {
					t.Fatalf("%s holds a mix:\n%s\nbefore:\n%s\nbackup:\n%s", app, now, before, backup)
				}
				var others []string
				for _, a := range s.AddOns(app) {
					if a.ID != serving() {
						others = append(others, a.Name)
					}
				}
				switch {
				case serving() == original && len(others) > 0:
					t.Errorf("served by its original, but add-ons %v are left", others)
				case serving() != original && (len(others) != 1 || contents(t, s.DatabaseOf(original)) != before):
					t.Errorf("restored into new: want the previous database kept whole, have %v", others)
				}
				if serving() != original && !slices.ContainsFunc(s.AddOns(app), func(a herokutest.AddOn) bool {
					return a.ID == serving() && !strings.Contains(a.Name, "drill")
				}) {
					t.Errorf("served by a database still named as a drill's: %+v", s.AddOns(app))
				}
			})
		}
	}
}

// backupDir returns the BACKUP_DIR env sets.
func backupDir(t *testing.T, env []string) string {
	t.Helper()
	for _, kv := range env {
		if dir, ok := strings.CutPrefix(kv, "BACKUP_DIR="); ok {
			return dir
		}
	}
	t.Fatal("no BACKUP_DIR")
	return ""
}

// What undoing maintenance needs is in the journal, not in BACKUP_DIR: a
// drill killed in maintenance, resumed by a process with another
// BACKUP_DIR (the bot, a cron job, a colleague's shell), gets the app's
// connection limit back as it was.
func TestKill_ResumeWithAnotherBackupDirEndsMaintenance(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	env = append(env, "DATABASE_URL="+stateURL(t))
	drilltest.Exec(t, "", `ALTER DATABASE `+pgx.Identifier{app}.Sanitize()+` CONNECTION LIMIT 50`)
	killAt(t, env, "✓  maintenance_on ", 0, "run", app, "--mode", "full", "--confirm", app)
	resumeClean(t, append(env, "BACKUP_DIR="+t.TempDir()))
	var limit int
	if err := drilltest.Connect(t, "").QueryRow(context.Background(), `SELECT datconnlimit FROM pg_database WHERE datname = $1`, app).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if limit != 50 {
		t.Errorf("connection limit %d after resume, want 50 as before the drill", limit)
	}
	if left := leftovers(t, app); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}

// A drill killed while it captures leaves a backup marked running and a
// partial dump; resume finishes the record (failed, saying why) and
// removes the partial file, so the backup is never listed as running
// forever.
func TestKill_MidCaptureResumeFailsTheBackupAndRemovesItsPartialFile(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	drilltest.Exec(t, app, `CREATE TABLE bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g`)
	env = append(env, "DATABASE_URL="+stateURL(t))
	dir := filepath.Join(backupDir(t, env), app)
	killOnPartialDump(t, env, dir, "run", app)
	resumeClean(t, env)
	if partial, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(partial) != 0 {
		t.Errorf("partial dumps left: %v", partial)
	}
	r := cli(t, env, "backups", app, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"status": "failed"`) || strings.Contains(r.stdout, `"running"`) {
		t.Errorf("backups after resume: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if meta, err := os.ReadFile(filepath.Join(dir, "b001.json")); err != nil || !strings.Contains(string(meta), "died before it finished") {
		t.Errorf("b001's record does not say why it failed: %s %v", meta, err)
	}
}

// TestKill_StandaloneCaptureResumeFailsTheBackupAndRemovesItsPartialFile:
// a killed `restore-drill capture` is no drill, so nothing is journaled for
// it; its lock, which the kernel dropped with the process, tells resume
// (and every listing of backups) that it died.
func TestKill_StandaloneCaptureResumeFailsTheBackupAndRemovesItsPartialFile(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	drilltest.Exec(t, app, `CREATE TABLE bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g`)
	env = append(env, "DATABASE_URL="+stateURL(t))
	dir := filepath.Join(backupDir(t, env), app)
	killOnPartialDump(t, env, dir, "capture", app)
	if meta, err := os.ReadFile(filepath.Join(dir, "b001.json")); err != nil || !strings.Contains(string(meta), `"running"`) {
		t.Fatalf("the killed capture's record is not left running, so this test proves nothing: %s %v", meta, err)
	}
	resumeClean(t, env)
	if left, _ := filepath.Glob(filepath.Join(dir, "b001.*")); len(left) != 1 {
		t.Errorf("files left by the killed capture: %v, want only its record", left)
	}
	if meta, err := os.ReadFile(filepath.Join(dir, "b001.json")); err != nil || !strings.Contains(string(meta), `"failed"`) || !strings.Contains(string(meta), "died before it finished") {
		t.Errorf("b001's record does not say it failed and why: %s %v", meta, err)
	}
}

// killOnPartialDump runs restore-drill with args and SIGKILLs it as soon as
// pg_dump has started writing a partial dump in dir.
func killOnPartialDump(t *testing.T, env []string, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(baseEnv(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if partial, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(partial) > 0 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no partial dump appeared in %s", dir)
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}
