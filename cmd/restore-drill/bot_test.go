package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

func TestManifest(t *testing.T) {
	t.Parallel()
	r := cli(t, nil, "manifest")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"socket_mode_enabled: true", "command: /restore-drill", "chat:write", "usergroups:read", "is_enabled: true"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("manifest lacks %q", want)
		}
	}
}

func TestBot_TokenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"NoAppToken", nil, "SLACK_APP_TOKEN is not set"},
		{"BotTokenAsAppToken", []string{"SLACK_APP_TOKEN=xoxb-123-secretvalue", "SLACK_BOT_TOKEN=xoxb-123-secretvalue"}, "SLACK_APP_TOKEN does not start with xapp-"},
		{"NoBotToken", []string{"SLACK_APP_TOKEN=xapp-1-secretvalue"}, "SLACK_BOT_TOKEN is not set"},
		{"AppTokenAsBotToken", []string{"SLACK_APP_TOKEN=xapp-1-secretvalue", "SLACK_BOT_TOKEN=xapp-1-secretvalue"}, "SLACK_BOT_TOKEN does not start with xoxb-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, tt.env, "bot")
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tt.want)
			}
			if strings.Contains(r.stderr+r.stdout, "secretvalue") {
				t.Fatalf("a token was echoed: %q", r.stderr)
			}
		})
	}
}

// TestConsole_FullDrill runs a full drill through the console adapter: the
// same parser, dispatch, rendering and confirmations as Slack.
func TestConsole_FullDrill(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	in := strings.Join([]string{"/restore-drill run " + app + " --mode full", "status", "nope", app, app, "/restore-drill history " + app, "run " + app + " --fast"}, "\n") + "\n"
	r := cliIn(t, env, in, "console")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// "status" typed while the prompt waits is run, not taken as a wrong
	// confirmation.
	if strings.Contains(r.stdout, "you typed `status`") || !strings.Contains(r.stdout, "waiting for confirmation* of *turn on maintenance mode") {
		t.Errorf("status typed at the prompt was not run as a command:\n%s", r.stdout)
	}
	for _, want := range []string{"Starting drill", "Confirmation needed", "Type " + app + " exactly", "confirmed *turn on maintenance mode for " + app + "*",
		"    │ ✓ `restore` done in", "Checksums", "PASSED", "Drills of `" + app + "`", "`--fast` is not a flag of run", "Usage: `/restore-drill run APP"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("console output lacks %q\n%s", want, r.stdout)
		}
	}
	if left := leftovers(t, app); len(left) > 0 {
		t.Fatalf("left %v", left)
	}
}

// vmRSS reads a process's resident memory in MB from /proc.
func vmRSS(tb testing.TB, pid int) float64 {
	tb.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	tb.Fatal("no VmRSS")
	return 0
}

// BenchmarkBotRSS runs the real `restore-drill bot` against the fake Slack
// and reports its resident memory idle and at its peak during a drill.
func BenchmarkBotRSS(b *testing.B) {
	fake := slacktest.New(b)
	app := drilltest.CreateDatabase(b, "rss")
	drilltest.Exec(b, app, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 100000) g;`)
	cmd := exec.Command(binary, "bot")
	cmd.Env = append(baseEnv(), "SLACK_APP_TOKEN="+fake.AppToken, "SLACK_BOT_TOKEN="+fake.BotToken, "SLACK_API_URL="+fake.APIURL(),
		"BACKUP_DIR="+b.TempDir(), "LOG_LEVEL=error", "DRILL_ALLOWED_USERS=U1")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	fake.WaitConnected(b)
	idle := vmRSS(b, cmd.Process.Pid)
	var peak float64
	for b.Loop() {
		env := fake.SlashCommand(b, slacktest.Slash{User: "U1", Channel: "C1", Text: "run " + app})
		fake.WaitAck(b, env)
		done := make(chan struct{})
		go func() {
			defer close(done)
			fake.WaitCall(b, "verdict", func(c slacktest.Call) bool { return c.Broadcast && strings.Contains(c.Text, app) })
		}()
		tick := time.NewTicker(5 * time.Millisecond)
	sample:
		for {
			select {
			case <-done:
				break sample
			case <-tick.C:
				peak = max(peak, vmRSS(b, cmd.Process.Pid))
			}
		}
		tick.Stop()
	}
	b.ReportMetric(idle, "idle-RSS-MB")
	b.ReportMetric(peak, "drill-peak-RSS-MB")
	if idle >= 40 {
		b.Errorf("idle RSS %.1f MB over the 40 MB target", idle)
	}
}

// TestConsole_HonoursFreeze: the console uses the state database, so a
// freeze set there stops a console drill as it stops the bot's.
func TestConsole_HonoursFreeze(t *testing.T) {
	t.Parallel()
	app, env := newApp(t)
	state := stateURL(t)
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(state)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pgstate.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if err := pgstate.New(pool).SetFreeze(ctx, true, "U0OPS", "incident 42"); err != nil {
		t.Fatal(err)
	}
	r := cliIn(t, append(env, "DATABASE_URL="+state), "/restore-drill run "+app+"\n", "console")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "Drills are frozen") || strings.Contains(r.stdout, "Starting drill") {
		t.Fatalf("a console drill ignored the freeze:\n%s", r.stdout)
	}
}
