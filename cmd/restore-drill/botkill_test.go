package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// botRig is the real `restore-drill bot` against a fake Slack workspace,
// with its state (journal, confirmations, River's jobs) in a database of
// the test's: processes come and go, the workspace and state stay.
type botRig struct {
	t     *testing.T
	fake  *slacktest.Server
	app   string
	env   []string
	state string
	oid   uint32
}

func newBotRig(t *testing.T) *botRig {
	t.Helper()
	app, env := newApp(t)
	drilltest.Exec(t, app, `CREATE TABLE bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 200000) g`)
	fake := slacktest.New(t)
	fake.PingInterval = 2 * time.Second
	stateDB := drilltest.CreateDatabase(t, "state")
	env = append(env, "DATABASE_URL="+dbURL(stateDB), "SLACK_APP_TOKEN="+fake.AppToken, "SLACK_BOT_TOKEN="+fake.BotToken,
		"SLACK_API_URL="+fake.APIURL(), "LOG_LEVEL=info", "DRILL_ALLOWED_USERS=U1,U2")
	r := &botRig{t: t, fake: fake, app: app, env: env, state: stateDB}
	if err := drilltest.Connect(t, "").QueryRow(context.Background(), `SELECT oid FROM pg_database WHERE datname = $1`, app).Scan(&r.oid); err != nil {
		t.Fatal(err)
	}
	return r
}

// start starts a bot process and waits until it holds the socket.
func (r *botRig) start() *exec.Cmd {
	r.t.Helper()
	cmd := exec.Command(binary, "bot")
	cmd.Env = append(baseEnv(), r.env...)
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	r.fake.WaitConnected(r.t)
	return cmd
}

// kill SIGKILLs a bot process and waits until the workspace saw its socket go.
func (r *botRig) kill(cmd *exec.Cmd) {
	r.t.Helper()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	r.fake.WaitDisconnected(r.t)
}

var startedRE = regexp.MustCompile("Starting drill `(d[a-z0-9]{7})`")

// run asks for a drill and returns its id and thread.
func (r *botRig) run(text string) (id, thread string) {
	r.t.Helper()
	env := r.fake.SlashCommand(r.t, slacktest.Slash{User: "U1", Channel: "C1", Text: text})
	var p struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(r.fake.WaitAck(r.t, env).Payload, &p); err != nil {
		r.t.Fatal(err)
	}
	m := startedRE.FindStringSubmatch(p.Text)
	if m == nil {
		r.t.Fatalf("ack %q starts no drill", p.Text)
	}
	parent := r.fake.WaitCall(r.t, "parent of "+m[1], func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.ThreadTS == "" && strings.Contains(c.Text, m[1])
	})
	return m[1], parent.Reply
}

// said waits for a message in thread containing s.
// said waits until the thread, or its parent, says s: in a reply, or in
// an edit (a reply's steps and the parent are edited in place).
func (r *botRig) said(thread, s string) slacktest.Call {
	r.t.Helper()
	return r.fake.WaitCall(r.t, "thread message "+s, func(c slacktest.Call) bool {
		return (c.Method == "chat.postMessage" && c.ThreadTS == thread || c.Method == "chat.update") && strings.Contains(c.Text+c.BlockText(), s)
	})
}

// journaled waits until the state database's journal shows step done
// for drill id: the thread's steps are edited every few seconds, the
// journal is written as each step ends.
func (r *botRig) journaled(id, step string) {
	r.t.Helper()
	deadline, conn := time.Now().Add(slacktest.DefaultWait), drilltest.Connect(r.t, r.state)
	for {
		var n int
		if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM drill_steps WHERE drill_id = $1 AND name = $2 AND status = 'succeeded'`, id, step).Scan(&n); err != nil {
			r.t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("drill %s did not finish %s within %s", id, step, slacktest.DefaultWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var ticketRE = regexp.MustCompile(`"value":"(c[a-z0-9]{7})"`)

// confirm waits for the n-th prompt in thread and confirms it as U2.
func (r *botRig) confirm(thread string, n int) {
	r.t.Helper()
	prompt := r.fake.WaitCalls(r.t, "prompt", n, func(c slacktest.Call) bool {
		return c.Method == "chat.postMessage" && c.ThreadTS == thread && strings.Contains(string(c.Blocks), `"restore_drill_confirm"`)
	})[n-1]
	m := ticketRE.FindStringSubmatch(string(prompt.Blocks))
	if m == nil {
		r.t.Fatalf("prompt without a confirmation id: %s", prompt.Blocks)
	}
	r.fake.WaitAck(r.t, r.fake.Click(r.t, slacktest.Click{User: "U2", Channel: "C1", MessageTS: prompt.Reply,
		ActionID: "restore_drill_confirm", BlockID: "confirm_actions", Value: m[1]}))
	r.fake.WaitCall(r.t, "views.open", func(c slacktest.Call) bool {
		return c.Method == "views.open" && strings.Contains(string(c.View), m[1])
	})
	ack := r.fake.WaitAck(r.t, r.fake.Submit(r.t, slacktest.Submission{User: "U2", CallbackID: "restore_drill_typed",
		PrivateMetadata: m[1], BlockID: "typed_confirmation", ActionID: "typed", Value: r.app}))
	if len(ack.Payload) > 0 && string(ack.Payload) != "null" {
		r.t.Fatalf("confirmation refused: %s", ack.Payload)
	}
}

// requireRestored checks production: out of maintenance, served by its
// original database with all its rows, no database of a drill left, and
// no job of the drill still running in River.
func (r *botRig) requireRestored(id string) {
	r.t.Helper()
	ctx := context.Background()
	var limit int
	var oid uint32
	if err := drilltest.Connect(r.t, "").QueryRow(ctx, `SELECT oid, datconnlimit FROM pg_database WHERE datname = $1`, r.app).Scan(&oid, &limit); err != nil {
		r.t.Fatalf("%s has no database: %v", r.app, err)
	}
	if limit != -1 || oid != r.oid {
		r.t.Errorf("%s: connection limit %d (maintenance if 0), database oid %d (original %d)", r.app, limit, oid, r.oid)
	}
	var rows int
	if err := drilltest.Connect(r.t, r.app).QueryRow(ctx, `SELECT count(*) FROM bulk`).Scan(&rows); err != nil || rows != 200000 {
		r.t.Errorf("production data: %d rows, %v", rows, err)
	}
	if left := leftovers(r.t, r.app); len(left) != 0 {
		r.t.Errorf("left behind: %v", left)
	}
	var status string
	var running int
	state := drilltest.Connect(r.t, r.state)
	if err := state.QueryRow(ctx, `SELECT status FROM drills WHERE drill_id = $1`, id).Scan(&status); err != nil || status == "running" {
		r.t.Errorf("drill %s is %q in the journal (%v), want finished", id, status, err)
	}
	// A job the killed process held stays "running" until the bot closes
	// it (River then finalises it); River records a finished job's end
	// shortly after its handler returned.
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := state.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE args->>'drill_id' = $1 AND state = 'running'
			AND NOT metadata ? 'cancel_attempted_at'`, id).Scan(&running); err != nil {
			r.t.Fatal(err)
		}
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			r.t.Errorf("%d jobs of drill %s still running in River", running, id)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The bot's drills are River jobs: a bot process SIGKILLed while it runs
// a drill's job, or while the drill is parked on a confirmation, is
// replaced by another process on the same state database, which undoes
// the drill it finds dead or continues the one parked. Production ends
// restored each time.
func TestKill_BotProcess(t *testing.T) {
	t.Parallel()
	t.Run("verify drill mid-restore", func(t *testing.T) {
		r := newBotRig(t)
		bot1 := r.start()
		id, thread := r.run("run " + r.app)
		r.journaled(id, "capture")
		r.kill(bot1)
		r.start()
		r.said(thread, "died at step")
		r.requireRestored(id)
	})
	t.Run("full drill in maintenance", func(t *testing.T) {
		r := newBotRig(t)
		bot1 := r.start()
		id, thread := r.run("run " + r.app + " --mode full")
		r.confirm(thread, 1)
		r.journaled(id, "maintenance_on")
		r.kill(bot1)
		r.start()
		if m := r.said(thread, "died at step"); !strings.Contains(m.Text, "maintenance_on") {
			t.Errorf("resume said %q, want maintenance undone", m.Text)
		}
		r.requireRestored(id)
	})
	t.Run("full drill parked on a confirmation", func(t *testing.T) {
		r := newBotRig(t)
		bot1 := r.start()
		id, thread := r.run("run " + r.app + " --mode full")
		// The parent says so once the drill parked and its prompt is up.
		r.said(thread, "*waiting for confirmation*")
		r.kill(bot1)
		// A parked drill belongs to no process and is not dead: resume
		// from a terminal leaves it alone, and says so.
		if out := cli(t, r.env, "resume"); out.code != 0 || !strings.Contains(out.stdout, "Drill "+id+" of "+r.app+" waits for a confirmation until") {
			t.Fatalf("resume with a parked drill: exit %d\n%s%s", out.code, out.stdout, out.stderr)
		}
		// The new process's start-up resume leaves the parked drill alone:
		// the answer continues it there, to a pass.
		r.start()
		r.confirm(thread, 1)
		r.confirm(thread, 2)
		if v := r.fake.WaitCall(t, "verdict", func(c slacktest.Call) bool {
			return c.Method == "chat.postMessage" && c.ThreadTS == thread && c.Broadcast && strings.Contains(c.Text, "Drill "+id)
		}); !strings.Contains(v.Text, "PASSED") {
			var said []string
			for _, c := range r.fake.Calls() {
				if c.ThreadTS == thread {
					said = append(said, c.Text)
				}
			}
			t.Errorf("verdict %q; the thread:\n%s", v.Text, strings.Join(said, "\n"))
		}
		r.requireRestored(id)
	})
}

// confirmTyped is confirm with the text typed given.
func (r *botRig) confirmTyped(thread string, n int, typed string) {
	r.t.Helper()
	app := r.app
	r.app = typed
	defer func() { r.app = app }()
	r.confirm(thread, n)
}

// A deploy sends the bot SIGTERM in the middle of an emergency restore in
// place. The process stops taking work but lets the restore, which can
// finish within the grace period, finish: the verdict is posted and the
// process exits by itself. Where the platform's SIGKILL follows before the
// drill ended, the next process resumes it: either way production ends
// out of maintenance with its connection limit back, holding all of its
// data from before or all of the backup's, never a mix.
func TestKill_BotSIGTERMMidRestoreEndsInOneWholeState(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		kill time.Duration // after SIGTERM; 0: none
	}{
		{name: "restore finishes in the grace period"},
		{name: "SIGKILL follows", kill: 20 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newBotRig(t)
			if out := cli(t, r.env, "capture", r.app); out.code != 0 {
				t.Fatalf("capture: exit %d\n%s", out.code, out.stderr)
			}
			backup := contents(t, r.app)
			drilltest.Exec(t, r.app, changeAfterBackup)
			drilltest.Exec(t, "", `ALTER DATABASE `+pgx.Identifier{r.app}.Sanitize()+` CONNECTION LIMIT 50`)
			before := contents(t, r.app)

			bot1 := r.start()
			id, thread := r.run("restore " + r.app + " b001 --into production")
			r.confirmTyped(thread, 1, r.app+" b001")
			if tc.kill > 0 {
				r.said(thread, "`maintenance_on` done") // the restore in place is under way
			} else {
				r.said(thread, "`safety_backup` done")
			}
			_ = bot1.Process.Signal(syscall.SIGTERM)
			exited := make(chan error, 1)
			go func() { exited <- bot1.Wait() }()
			if tc.kill > 0 {
				time.Sleep(tc.kill)
				_ = bot1.Process.Signal(syscall.SIGKILL)
			}
			select {
			case err := <-exited:
				if tc.kill == 0 && err != nil {
					t.Errorf("the bot did not exit cleanly on SIGTERM: %v", err)
				}
			case <-time.After(40 * time.Second):
				t.Fatal("the bot did not exit within 40 s of SIGTERM")
			}
			if tc.kill == 0 {
				if v := r.said(thread, "Emergency restore "+id+" of "+r.app+" "); !strings.Contains(v.Text, "PASSED") {
					t.Errorf("verdict after SIGTERM: %q", v.Text)
				}
			}
			r.fake.WaitDisconnected(t)
			r.start()
			ctx := context.Background()
			state := drilltest.Connect(t, r.state)
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				var status string
				if err := state.QueryRow(ctx, `SELECT status FROM drills WHERE drill_id = $1`, id).Scan(&status); err == nil && status != "running" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("drill %s still unfinished in the journal after the new process started", id)
				}
			}
			var limit int
			if err := drilltest.Connect(t, "").QueryRow(ctx, `SELECT datconnlimit FROM pg_database WHERE datname = $1`, r.app).Scan(&limit); err != nil || limit != 50 {
				t.Errorf("connection limit %d (%v), want 50 as before", limit, err)
			}
			now := contents(t, r.app)
			switch {
			case tc.kill == 0 && now != backup:
				t.Errorf("the restore finished, yet %s does not hold the backup's data:\n%s", r.app, now)
			case now != before && now != backup:
				t.Errorf("%s holds a mix:\n%s\nbefore:\n%s\nbackup:\n%s", r.app, now, before, backup)
			}
		})
	}
}
