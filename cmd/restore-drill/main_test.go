package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// binary is the restore-drill built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run()) // fuzz targets call parsers, not the binary: build nothing
	}
	dir, err := os.MkdirTemp("", "restore-drill-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "restore-drill")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build restore-drill: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// cliIn runs the binary with stdin.
func cliIn(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// cli runs the binary with env added to a clean environment.
func cli(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return cliIn(t, env, "", args...)
}

func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DRILL_") || strings.HasPrefix(kv, "BACKUP_DIR=") || strings.HasPrefix(kv, "LOCAL_POSTGRES_URL=") {
			continue
		}
		env = append(env, kv)
	}
	if u := drilltest.ServerURL(); u != "" {
		env = append(env, "LOCAL_POSTGRES_URL="+u)
	}
	return env
}

func newApp(t *testing.T) (app string, env []string) {
	t.Helper()
	app = drilltest.CreateDatabase(t, "cli")
	drilltest.Exec(t, app, `
		CREATE TABLE drill_items (id int PRIMARY KEY, note text);
		INSERT INTO drill_items SELECT g, 'n' || g FROM generate_series(1, 100) g;
		CREATE TABLE "Events 2026" (at timestamptz, payload jsonb);
		INSERT INTO "Events 2026" SELECT now(), jsonb_build_object('g', g) FROM generate_series(1, 10) g;`)
	t.Cleanup(func() { dropLeftovers(t, app) })
	return app, []string{"BACKUP_DIR=" + t.TempDir()}
}

func dropLeftovers(t *testing.T, app string) {
	for _, n := range leftovers(t, app) {
		drilltest.DropDatabase(t, n)
	}
}

func leftovers(t *testing.T, app string) []string { return drilltest.DrillDatabases(t, app) }

// jsonReport is the part of the JSON report scripts rely on.
type jsonReport struct {
	App            string   `json:"app"`
	Provider       string   `json:"provider"`
	Mode           string   `json:"mode"`
	Result         string   `json:"result"`
	Error          string   `json:"error"`
	RPOSeconds     *float64 `json:"rpo_seconds"`
	RestoreSeconds float64  `json:"restore_seconds"`
	TotalSeconds   float64  `json:"total_seconds"`
	Backup         *struct {
		ID        string    `json:"id"`
		SizeBytes int64     `json:"size_bytes"`
		CreatedAt time.Time `json:"created_at"`
	} `json:"backup"`
	Canary struct {
		Found bool `json:"found"`
	} `json:"canary"`
	Tables []struct {
		Schema       string `json:"schema"`
		Name         string `json:"name"`
		SourceRows   int64  `json:"source_rows"`
		RestoredRows int64  `json:"restored_rows"`
		Match        bool   `json:"match"`
	} `json:"tables"`
	Steps []struct {
		Name    string  `json:"name"`
		Status  string  `json:"status"`
		Seconds float64 `json:"seconds"`
	} `json:"steps"`
	Undone        []string `json:"undone"`
	Confirmations []struct {
		User  string    `json:"user"`
		Typed string    `json:"typed"`
		At    time.Time `json:"at"`
	} `json:"confirmations"`
}

func decodeReport(t *testing.T, r result) jsonReport {
	t.Helper()
	var rep jsonReport
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return rep
}

func TestRun_VerifyThroughTheBinary(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	r := cli(t, env, "run", app, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep := decodeReport(t, r)
	if rep.App != app || rep.Provider != "local" || rep.Mode != "verify" || rep.Result != "passed" || rep.Error != "" {
		t.Errorf("report head: %+v", rep)
	}
	if rep.Backup == nil || rep.Backup.ID != "b001" || rep.Backup.SizeBytes <= 0 || rep.Backup.CreatedAt.IsZero() {
		t.Errorf("backup: %+v", rep.Backup)
	}
	if rep.RPOSeconds != nil {
		t.Errorf("rpo %v, want null: there was no backup before this drill", *rep.RPOSeconds)
	}
	if !rep.Canary.Found || rep.RestoreSeconds <= 0 || rep.TotalSeconds < rep.RestoreSeconds {
		t.Errorf("canary %+v restore %v total %v", rep.Canary, rep.RestoreSeconds, rep.TotalSeconds)
	}
	names := map[string]int64{}
	for _, tb := range rep.Tables {
		if !tb.Match || tb.SourceRows != tb.RestoredRows {
			t.Errorf("table %+v", tb)
		}
		names[tb.Name] = tb.SourceRows
	}
	if _, leaked := names["canary"]; leaked || names["drill_items"] != 100 || names["Events 2026"] != 10 {
		t.Errorf("tables %v (the canary, in the drill's own schema, is no table of the app)", names)
	}
	if len(rep.Steps) == 0 || len(rep.Undone) != 0 || len(rep.Confirmations) != 0 {
		t.Errorf("steps %+v undone %v confirmations %v", rep.Steps, rep.Undone, rep.Confirmations)
	}
	if !strings.Contains(r.stderr, "✓  restore") {
		t.Errorf("no progress on stderr:\n%s", r.stderr)
	}

	// A second drill sees the first backup: RPO is known, and backups lists it.
	r = cli(t, env, "backups", app, "--json")
	if r.code != 0 {
		t.Fatalf("backups exit %d: %s", r.code, r.stderr)
	}
	var b struct {
		App        string   `json:"app"`
		RPOSeconds *float64 `json:"rpo_seconds"`
		Schedules  []any    `json:"schedules"`
		Backups    []struct {
			ID         string     `json:"id"`
			Status     string     `json:"status"`
			CreatedAt  time.Time  `json:"created_at"`
			FinishedAt *time.Time `json:"finished_at"`
			SizeBytes  int64      `json:"size_bytes"`
			Scheduled  bool       `json:"scheduled"`
		} `json:"backups"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil {
		t.Fatal(err)
	}
	if b.App != app || b.RPOSeconds == nil || b.Schedules == nil || len(b.Backups) != 1 || b.Backups[0].ID != "b001" ||
		b.Backups[0].Status != "succeeded" || b.Backups[0].FinishedAt == nil || b.Backups[0].SizeBytes != rep.Backup.SizeBytes {
		t.Errorf("backups: %s", r.stdout)
	}
	r = cli(t, env, "run", app, "--backup", "b001")
	if r.code != 0 || !strings.Contains(r.stdout, "PASSED") {
		t.Fatalf("restore of b001: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if len(leftovers(t, app)) != 0 {
		t.Errorf("leftovers: %v", leftovers(t, app))
	}
}

func TestRun_FullThroughTheBinary(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	r := cli(t, env, "run", app, "--mode", "full", "--confirm", app, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	rep := decodeReport(t, r)
	if rep.Result != "passed" || len(rep.Confirmations) != 2 || rep.Confirmations[0].Typed != app || rep.Confirmations[0].User == "" {
		t.Errorf("report: %+v", rep)
	}
	for _, want := range []string{"promote", "check_promoted", "promote_back", "maintenance_off"} {
		found := false
		for _, s := range rep.Steps {
			found = found || (s.Name == want && s.Status == "succeeded")
		}
		if !found {
			t.Errorf("step %s missing: %+v", want, rep.Steps)
		}
	}
	if !strings.Contains(r.stderr, "Destructive action") {
		t.Errorf("the plan was not shown before the confirmation:\n%s", r.stderr)
	}
}

// Bad input: one clear sentence, exit 2, nothing changed.
func TestRun_BadInput(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"NoArgs", nil, nil, "Commands:"},
		{"UnknownCommand", []string{"restroe", app}, nil, `unknown command "restroe"`},
		{"UnknownApp", []string{"run", app + "_nope"}, nil, "there is no database named"},
		{"MalformedApp", []string{"run", "my app;drop"}, nil, "is not a local app name"},
		{"MalformedBackup", []string{"run", app, "--backup", "yesterday"}, nil, `"yesterday" is not a backup`},
		{"UnknownBackup", []string{"run", app, "--backup", "b042"}, nil, "backup b042 not found"},
		{"UnknownFlag", []string{"run", app, "--yes"}, nil, `unknown flag "--yes"`},
		{"FullWithoutTerminal", []string{"run", app, "--mode", "full"}, nil, "pass --confirm " + app},
		{"WrongConfirm", []string{"run", app, "--mode", "full", "--confirm", "other"}, nil, "does not match the app"},
		{"BadProviderEnv", []string{"run", app}, []string{"DRILL_PROVIDER=gcp"}, `DRILL_PROVIDER="gcp" is not a provider`},
		{"BadDuration", []string{"run", app}, []string{"DRILL_MAX_BACKUP_AGE=soon"}, `DRILL_MAX_BACKUP_AGE="soon" is not valid: use a duration`},
		{"BadURL", []string{"run", app}, []string{"LOCAL_POSTGRES_URL=postgres://u:hunter2pw@[::1"}, "LOCAL_POSTGRES_URL is not a valid"},
		{"Unreachable", []string{"run", app}, []string{"LOCAL_POSTGRES_URL=postgres://root:hunter2pw@127.0.0.1:1/postgres?connect_timeout=2"}, "cannot reach the Postgres server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, append(append([]string{}, env...), tc.env...), tc.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr+r.stdout, tc.want) {
				t.Errorf("output does not say %q:\n%s%s", tc.want, r.stdout, r.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, "hunter2pw") {
				t.Errorf("the password leaked:\n%s%s", r.stdout, r.stderr)
			}
			if strings.Contains(r.stderr, "panic") {
				t.Errorf("panicked:\n%s", r.stderr)
			}
		})
	}
	if left := leftovers(t, app); len(left) != 0 {
		t.Errorf("bad input left databases: %v", left)
	}
}

// No credential reaches the output, even when everything is reported.
func TestRun_NoCredentialInOutput(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	// Trust auth ignores the password, so the drill runs with it in the URL.
	env = append(env, "LOCAL_POSTGRES_URL=postgres://root:Sup3rSecretPw@127.0.0.1:5432/postgres", "LOG_LEVEL=debug")
	r := cli(t, env, "run", app, "--mode", "full", "--confirm", app, "--json")
	if r.code != 0 {
		t.Skipf("TCP with a password is not available here (exit %d): %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, "Sup3rSecretPw") {
		t.Fatalf("the password leaked:\n%s\n%s", r.stdout, r.stderr)
	}
}

// Ctrl-C in the middle of a full drill runs the undo stack: production is
// out of maintenance, served by its own database, with no scratch left.
func TestRun_InterruptUndoes(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	drilltest.Exec(t, app, `CREATE TABLE bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 300000) g`)
	for _, at := range []string{"…  capture", "…  restore", "…  promote"} {
		t.Run(strings.TrimPrefix(at, "…  "), func(t *testing.T) {
			cmd := exec.Command(binary, "run", app, "--mode", "full", "--confirm", app)
			cmd.Env = append(baseEnv(), env...)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var seen strings.Builder
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				seen.WriteString(sc.Text() + "\n")
				if strings.Contains(sc.Text(), at) {
					_ = cmd.Process.Signal(syscall.SIGINT)
					break
				}
			}
			_, _ = io.Copy(&seen, stderr)
			err = cmd.Wait()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1\n%s\n%s", err, out.String(), seen.String())
			}
			if !strings.Contains(out.String(), "cancelled") {
				t.Errorf("report does not say it was cancelled:\n%s", out.String())
			}
			conn := drilltest.Connect(t, "")
			var limit int
			if err := conn.QueryRow(context.Background(), `SELECT datconnlimit FROM pg_database WHERE datname = $1`, app).Scan(&limit); err != nil {
				t.Fatalf("the app's database is gone: %v", err)
			}
			if limit != -1 {
				t.Errorf("connection limit %d after interrupt, want -1 (as before)", limit)
			}
			var canary int
			c2 := drilltest.Connect(t, app)
			if err := c2.QueryRow(context.Background(), `SELECT count(*) FROM bulk`).Scan(&canary); err != nil || canary != 300000 {
				t.Errorf("the app is not served by its own database: %d rows, %v", canary, err)
			}
			if left := leftovers(t, app); len(left) != 0 {
				t.Errorf("leftovers after interrupt: %v", left)
			}
		})
	}
}

// The emergency restore through the binary: capture, damage, restore into
// a new database and in place, with the JSON the runbook relies on.
func TestRestore_ThroughTheBinary(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	r := cli(t, env, "capture", app, "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"id": "b001"`) {
		t.Fatalf("capture: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	drilltest.Exec(t, app, `DELETE FROM drill_items WHERE id > 10`)

	r = cli(t, env, "restore", app, "b001", "--confirm", app, "--json")
	if r.code != 0 {
		t.Fatalf("restore --into new: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		Result       string `json:"result"`
		Into         string `json:"into"`
		NowServing   string `json:"now_serving"`
		KeptDatabase string `json:"kept_database"`
		Backup       struct {
			ID string `json:"id"`
		} `json:"backup"`
		SafetyBackup struct {
			ID string `json:"id"`
		} `json:"safety_backup"`
		Tables        []struct{ Name string }  `json:"tables"`
		Steps         []struct{ Name string }  `json:"steps"`
		Confirmations []struct{ Typed string } `json:"confirmations"`
		Exact         bool                     `json:"exact"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Result != "passed" || rep.Into != "new" || rep.NowServing != app || rep.KeptDatabase == "" ||
		rep.Backup.ID != "b001" || rep.SafetyBackup.ID != "b002" || len(rep.Tables) == 0 || len(rep.Confirmations) != 2 || !rep.Exact {
		t.Errorf("report: %s", r.stdout)
	}
	var n int
	if err := drilltest.Connect(t, app).QueryRow(context.Background(), `SELECT count(*) FROM drill_items`).Scan(&n); err != nil || n != 100 {
		t.Errorf("after restore %s serves %d drill_items (%v), want 100", app, n, err)
	}
	drilltest.Exec(t, app, `DELETE FROM drill_items WHERE id > 20`)
	t.Cleanup(func() { drilltest.DropDatabase(t, rep.KeptDatabase) })

	// In place, the typed text is APP BACKUP.
	r = cli(t, env, "restore", app, "b001", "--into", "production", "--confirm", app)
	if r.code != 2 || !strings.Contains(r.stderr, "confirmed with the app and the backup id") {
		t.Fatalf("in place with only the app typed: exit %d\n%s", r.code, r.stderr)
	}
	r = cli(t, env, "restore", app, "b001", "--into", "production", "--confirm", app+" b001")
	if r.code != 0 || !strings.Contains(r.stdout, "PASSED") || !strings.Contains(r.stdout, "to roll back: restore-drill restore "+app+" b003 --into production") {
		t.Fatalf("in place: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if err := drilltest.Connect(t, app).QueryRow(context.Background(), `SELECT count(*) FROM drill_items`).Scan(&n); err != nil || n != 100 {
		t.Errorf("after the in-place restore %d drill_items (%v), want 100", n, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"restore", app, "fresh", "--confirm", app}, "needs an existing backup"},
		{[]string{"restore", app}, "takes an app and a backup"},
		{[]string{"restore", app, "b001"}, "no terminal to ask"},
		{[]string{"restore", app, "b001", "--into", "staging"}, `"staging" is not a restore target`},
		{[]string{"restore", app, "b999", "--confirm", app}, "backup b999 not found"},
		{[]string{"capture", app + "_nope"}, "there is no database named"},
	} {
		r := cli(t, env, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, want 2 saying %q\n%s%s", tc.args, r.code, tc.want, r.stdout, r.stderr)
		}
	}
}
