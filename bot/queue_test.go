package bot_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/bot/botriver"
	"github.com/restore-drill/restore-drill/bot/slacktest"
	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgstate"
)

// queuedPair starts two bot processes on one state database and one Slack
// workspace, each running drills from the shared River queue: a takes the
// socket (commands, clicks, submissions), w only works jobs.
func queuedPair(t *testing.T, o options) (a, w *bundle, store *pgstate.Store) {
	t.Helper()
	store = drilltest.NewStateStore(t)
	o.store, o.queue, o.backupDir = store, true, t.TempDir()
	a = setup(t, o)
	o.app, o.fake, o.worker = a.app, a.fake, true
	w = setup(t, o)
	return a, w, store
}

// waitJobs waits until no drill job runs and want(c) holds.
func waitJobs(t *testing.T, q *botriver.Queue, what string, want func(botriver.JobCounts) bool) botriver.JobCounts {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := q.Counts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c.Running == 0 && want(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: jobs %+v after 30 s", what, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitParked waits until drill id is parked in the journal.
func waitParked(t *testing.T, store *pgstate.Store, id string) pgstate.RunningDrill {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := store.Running(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(list, func(r pgstate.RunningDrill) bool { return r.DrillID == id && r.Parked() }); i >= 0 {
			return list[i]
		}
		if time.Now().After(deadline) {
			t.Fatalf("drill %s did not park: %+v", id, list)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestQueue_FullDrillParksAndContinues: a full drill from Slack runs as a
// River job; at each confirmation it parks and no job runs while people
// think; the answer, submitted to the socket process, continues it in
// whichever process takes the continuation, in the same thread, to a pass.
func TestQueue_FullDrillParksAndContinues(t *testing.T) {
	t.Parallel()
	a, _, store := queuedPair(t, options{})
	id, parent := a.run(t, "run "+a.app+" --mode full")

	prompt1, cid1 := a.prompt(t, parent.Reply, 1)
	if r := waitParked(t, store, id); r.Ticket != cid1 {
		t.Fatalf("parked on %q, want the prompt's confirmation %q", r.Ticket, cid1)
	}
	// The drill's job is over, its expiry's continuation scheduled: no
	// worker is held while the confirmation waits.
	waitJobs(t, a.queue, "parked on maintenance", func(c botriver.JobCounts) bool { return c.Completed == 1 && c.Scheduled == 1 })
	a.fake.WaitCall(t, "the parent says what the drill waits for", func(c slacktest.Call) bool {
		return c.Method == "chat.update" && c.TS == parent.Reply && strings.Contains(c.BlockText(), "*waiting for confirmation* of *turn on maintenance mode") &&
			strings.Contains(c.BlockText(), "/archives/"+channel+"/p"+strings.ReplaceAll(prompt1.Reply, ".", ""))
	})
	// The parked drill still holds its app, and says what it waits for.
	for _, cmd := range []string{"run " + a.app, "status", "unlock " + a.app} {
		_, ack := a.command(t, bob, cmd)
		if txt := ackText(t, ack); !strings.Contains(txt, id) || !strings.Contains(txt, "waiting for") || !strings.Contains(txt, "confirmation") || !strings.Contains(txt, "until <!date^") {
			t.Errorf("%s while parked: %q", cmd, txt)
		}
	}
	// status links to the prompt, which waits in no process.
	if _, ack := a.command(t, bob, "status"); !strings.Contains(ackText(t, ack), "/archives/"+channel+"/p"+strings.ReplaceAll(prompt1.Reply, ".", "")+"?thread_ts="+parent.Reply) {
		t.Errorf("status of a parked drill has no link to its prompt: %q", ackText(t, ack))
	}

	a.confirm(t, bob, prompt1, cid1)
	prompt2, cid2 := a.prompt(t, parent.Reply, 2)
	if r := waitParked(t, store, id); r.Ticket != cid2 {
		t.Fatalf("parked on %q, want the second prompt's %q", r.Ticket, cid2)
	}
	waitJobs(t, a.queue, "parked on promote", func(c botriver.JobCounts) bool { return c.Completed == 2 && c.Scheduled >= 1 })

	a.confirm(t, alice, prompt2, cid2)
	if v := a.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q", v.Text)
	}
	texts := threadTexts(a.fake.Calls(), parent.Reply)
	for _, want := range []string{"<@" + bob + "> confirmed *turn on maintenance mode", "<@" + alice + "> confirmed *promote", "promote_back", "destroy_scratch"} {
		if !containsAny(texts, want) {
			t.Errorf("the thread lacks %q:\n%s", want, strings.Join(texts, "\n"))
		}
	}
	hist, err := store.History(context.Background(), a.app, 5)
	if err != nil || len(hist) != 1 || hist[0].Result != drill.Passed || len(hist[0].Confirmations) != 2 {
		t.Fatalf("history %+v, %v", hist, err)
	}
	if c := hist[0].Confirmations; c[0].User != bob || c[1].User != alice || c[1].Step != drill.StepPromote {
		t.Errorf("confirmations %+v, want bob's maintenance then alice's promote", c)
	}
	if left := scratchLeft(t, a.app); len(left) > 0 {
		t.Errorf("scratch databases left: %v", left)
	}
	// The command's response_url (a capability to post in the channel) is
	// stored nowhere: not with the jobs, not with the confirmations.
	var stored int
	if err := store.Pool().QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM river_job WHERE args::text LIKE '%/response/%' OR args::text LIKE '%response_url%') +
			(SELECT count(*) FROM pending_confirmations WHERE job::text LIKE '%/response/%' OR job::text LIKE '%response_url%')`).Scan(&stored); err != nil || stored != 0 {
		t.Errorf("%d rows store a response_url (%v)", stored, err)
	}
	var jobs int
	if err := store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE args->'job'->>'thread_ts' = $1`, parent.Reply).Scan(&jobs); err != nil || jobs != 1 {
		t.Errorf("%d drill jobs carry the thread %s (%v), want 1", jobs, parent.Reply, err)
	}
}

// TestQueue_ParkedDrillExpiresAndUndoes: nobody confirms; the expiry's
// scheduled continuation takes the parked drill up and undoes it.
func TestQueue_ParkedDrillExpiresAndUndoes(t *testing.T) {
	t.Parallel()
	a, _, store := queuedPair(t, options{confirmTimeout: 2 * time.Second})
	id, parent := a.run(t, "run "+a.app+" --mode full")
	a.prompt(t, parent.Reply, 1)
	waitParked(t, store, id)
	v := a.verdict(t, parent, id)
	if !strings.Contains(v.Text, "FAILED") {
		t.Fatalf("verdict %q, want a failure", v.Text)
	}
	if !containsAny(threadTexts(a.fake.Calls(), parent.Reply), "expired") {
		t.Errorf("the thread does not say the confirmation expired")
	}
	waitJobs(t, a.queue, "expired", func(c botriver.JobCounts) bool { return c.Scheduled == 0 })
	if left := scratchLeft(t, a.app); len(left) > 0 {
		t.Errorf("scratch databases left: %v", left)
	}
	if list, err := store.Running(context.Background()); err != nil || len(list) != 0 {
		t.Errorf("running %+v %v, want the drill finished", list, err)
	}
}

// TestQueue_CancelParkedDrill: cancel reaches a drill no process runs.
func TestQueue_CancelParkedDrill(t *testing.T) {
	t.Parallel()
	a, _, store := queuedPair(t, options{})
	id, parent := a.run(t, "run "+a.app+" --mode full")
	prompt, cid := a.prompt(t, parent.Reply, 1)
	waitParked(t, store, id)
	_, ack := a.command(t, bob, "cancel "+id)
	if txt := ackText(t, ack); !strings.Contains(txt, "was waiting for a confirmation") {
		t.Fatalf("cancel ack %q", txt)
	}
	if v := a.verdict(t, parent, id); !strings.Contains(v.Text, "CANCELLED") || !strings.Contains(v.BlockText(), "*CANCELLED* by <@"+bob+">") {
		t.Fatalf("verdict %q %s", v.Text, v.BlockText())
	}
	// The prompt can no longer be confirmed.
	a.click(t, alice, prompt, cid)
	if v := a.modal(t, cid, 1); !strings.Contains(v.BlockText(), "cancelled") {
		t.Fatalf("the modal of a cancelled confirmation: %s", v.BlockText())
	}
	if left := scratchLeft(t, a.app); len(left) > 0 {
		t.Errorf("scratch databases left: %v", left)
	}
}

// slowParker is an engine whose first continuation is slow to let go of
// its job once the drill parked again, and whose later ones take a moment
// before they take the drill: the answer to the second confirmation then
// runs while the first continuation is still finishing.
type slowParker struct {
	bot.Engine
	calls atomic.Int32
}

func (e *slowParker) Continue(ctx context.Context, id, ticket string, ans drill.Answer, th bot.Thread) (*drill.Report, error) {
	if e.calls.Add(1) > 1 {
		time.Sleep(300 * time.Millisecond)
		return e.Engine.Continue(ctx, id, ticket, ans, th)
	}
	rep, err := e.Engine.Continue(ctx, id, ticket, ans, th)
	if drill.IsParked(err) {
		time.Sleep(time.Second)
	}
	return rep, err
}

// TestQueue_AnswerWhileTheLastProcessFinishes: the continuation that
// parked the drill again closes stale jobs of the drill when it ends; the
// answer's continuation, already running the drill by then, is not one of
// them, and the drill passes. The answer's continuation is held right
// after its promote until the other has ended, so the two always overlap.
func TestQueue_AnswerWhileTheLastProcessFinishes(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	app, dir := newApp(t, appSQL), t.TempDir()
	f := drilltest.NewFaulty(localProvider(t, dir))
	var first atomic.Value // the first confirmation's id
	var hold sync.Once
	f.After = func(method string, _ ...any) {
		if method != "Promote" {
			return
		}
		hold.Do(func() {
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				var running int
				if err := store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM river_job
					WHERE kind = $1 AND state = 'running' AND args->>'ticket' = $2`, botriver.KindContinue, first.Load()).Scan(&running); err != nil || running == 0 {
					return
				}
			}
		})
	}
	o := options{store: store, queue: true, provider: f, app: app, backupDir: dir,
		engine: func(e bot.Engine) bot.Engine { return &slowParker{Engine: e} }}
	a := setup(t, o)
	o.fake, o.worker = a.fake, true
	setup(t, o)
	id, parent := a.run(t, "run "+app+" --mode full")
	prompt1, cid1 := a.prompt(t, parent.Reply, 1)
	first.Store(cid1)
	a.confirm(t, bob, prompt1, cid1)
	prompt2, cid2 := a.prompt(t, parent.Reply, 2)
	a.confirm(t, alice, prompt2, cid2)
	if v := a.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q; the thread:\n%s", v.Text, strings.Join(threadTexts(a.fake.Calls(), parent.Reply), "\n"))
	}
}

// failingOnce is an engine whose first continuation fails before taking
// the drill up (the state database was away).
type failingOnce struct {
	bot.Engine
	calls atomic.Int32
}

func (e *failingOnce) Continue(ctx context.Context, id, ticket string, ans drill.Answer, th bot.Thread) (*drill.Report, error) {
	if e.calls.Add(1) == 1 {
		return nil, drill.Errorf(drill.ECONFIG, "cannot reach the state database")
	}
	return e.Engine.Continue(ctx, id, ticket, ans, th)
}

// TestQueue_ContinuationRetriedWhenItCannotTakeTheDrill: a continuation
// that fails before taking the drill up ends (it does not hang on its
// thread) and the queue runs it again, which continues the drill.
func TestQueue_ContinuationRetriedWhenItCannotTakeTheDrill(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	flaky := &failingOnce{}
	a := setup(t, options{store: store, queue: true, engine: func(e bot.Engine) bot.Engine { flaky.Engine = e; return flaky }})
	id, parent := a.run(t, "run "+a.app+" --mode full")
	prompt1, cid1 := a.prompt(t, parent.Reply, 1)
	a.confirm(t, bob, prompt1, cid1)
	prompt2, cid2 := a.prompt(t, parent.Reply, 2)
	if flaky.calls.Load() < 2 {
		t.Fatalf("%d continuations, want the failed one tried again", flaky.calls.Load())
	}
	a.confirm(t, alice, prompt2, cid2)
	if v := a.verdict(t, parent, id); !strings.Contains(v.Text, "PASSED") {
		t.Fatalf("verdict %q", v.Text)
	}
	waitJobs(t, a.queue, "after the retry", func(c botriver.JobCounts) bool { return c.Retryable == 0 && c.Available == 0 })
}

// lockedBuffer is an io.Writer several goroutines may log to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSpace(b.buf.String()), "\n")
}

// TestQueue_DrillLogLinesCarryTheDrill: every log line about a drill's
// steps, its undo, its park and its continuation carries the drill's id,
// in whichever process wrote it.
func TestQueue_DrillLogLinesCarryTheDrill(t *testing.T) {
	t.Parallel()
	store := drilltest.NewStateStore(t)
	app, dir := newApp(t, appSQL), t.TempDir()
	f := drilltest.NewFaulty(localProvider(t, dir))
	f.FailOn("Restore", 1, drill.Errorf(drill.EFAILED, "injected restore failure"))
	logs := &lockedBuffer{}
	a := setup(t, options{store: store, queue: true, provider: f, app: app, backupDir: dir, logs: logs})
	id, parent := a.run(t, "run "+app+" --mode full")
	prompt, cid := a.prompt(t, parent.Reply, 1)
	a.confirm(t, bob, prompt, cid)
	if v := a.verdict(t, parent, id); !strings.Contains(v.Text, "FAILED") {
		t.Fatalf("verdict %q", v.Text)
	}
	about := 0
	for _, line := range logs.lines() {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		_, stepped := rec["step"]
		if !stepped && !strings.Contains(line, id) && rec["msg"] != "drill parked" {
			continue
		}
		about++
		if rec["drill"] != id {
			t.Errorf("log line about drill %s without its id: %s", id, line)
		}
	}
	if about < 3 {
		t.Errorf("%d log lines about the drill (its park, failed step, undo), want at least 3:\n%s", about, strings.Join(logs.lines(), "\n"))
	}
}
