package botriver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/restore-drill/restore-drill/bot"
	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// wait bounds every wait on a channel: reaching it fails the test.
const wait = 30 * time.Second

// testDB makes a fresh database and returns its name.
func testDB(t *testing.T) string {
	t.Helper()
	return drilltest.CreateDatabase(t, "botriver")
}

// openPool opens a pool on dbname, closed at cleanup: one per "process".
func openPool(t *testing.T, dbname string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(drilltest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Database = dbname
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// newQueue migrates the database behind pool and returns a Queue on it.
func newQueue(t *testing.T, pool *pgxpool.Pool, opts Options) *Queue {
	t.Helper()
	if err := Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	q, err := New(pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// run runs q with h until the test ends (or stop is called) and waits for
// Run to return at cleanup, before the pool closes.
func run(t *testing.T, q *Queue, h bot.JobHandler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx, h) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(wait + q.stopTimeout + q.cancelTimeout):
				err = fmt.Errorf("Run did not return %s after its context ended", wait+q.stopTimeout+q.cancelTimeout)
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}

// waitFor polls cond (a database read) until it holds, failing after wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %s for %s", wait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counts(t *testing.T, q *Queue) JobCounts {
	t.Helper()
	c, err := q.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	db := testDB(t)
	a, b := openPool(t, db), openPool(t, db)
	ctx := context.Background()
	errs := make(chan error, 2)
	for _, p := range []*pgxpool.Pool{a, b} {
		go func() { errs <- Migrate(ctx, p) }()
	}
	for range 2 {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("concurrent Migrate: %v", err)
			}
		case <-time.After(wait):
			t.Fatal("concurrent Migrate did not return")
		}
	}
	if err := Migrate(ctx, a); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	var versions, distinct int
	if err := a.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM river_migration`).Scan(&versions, &distinct); err != nil {
		t.Fatal(err)
	}
	if versions == 0 || versions != distinct {
		t.Fatalf("river_migration holds %d rows, %d distinct versions", versions, distinct)
	}
	// The migrated schema works: a queue inserts into it.
	q := newQueue(t, a, Options{})
	if err := q.Enqueue(ctx, bot.Job{ID: "d1", Verb: "drill", App: "app"}); err != nil {
		t.Fatal(err)
	}
}

// recorder is a handler that records which queue ran which drill and
// continuation, and catches a drill run twice at once.
type recorder struct {
	name string
	all  *runs
	// gate, when set, holds RunJob until it is closed.
	gate chan struct{}
}

type runs struct {
	mu        sync.Mutex
	by        map[string][]string // drill id → queues that ran it
	inFlight  map[string]bool
	overlap   []string
	conts     []bot.Continuation
	started   chan string // each drill id as its run starts
	continued chan bot.Continuation
}

func newRuns() *runs {
	return &runs{by: map[string][]string{}, inFlight: map[string]bool{},
		started: make(chan string, 100), continued: make(chan bot.Continuation, 100)}
}

func (r *recorder) RunJob(ctx context.Context, j bot.Job) error {
	r.all.mu.Lock()
	if r.all.inFlight[j.ID] {
		r.all.overlap = append(r.all.overlap, j.ID)
	}
	r.all.inFlight[j.ID] = true
	r.all.by[j.ID] = append(r.all.by[j.ID], r.name)
	r.all.mu.Unlock()
	r.all.started <- j.ID
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.all.mu.Lock()
	delete(r.all.inFlight, j.ID)
	r.all.mu.Unlock()
	return nil
}

func (r *recorder) ContinueJob(ctx context.Context, c bot.Continuation) error {
	r.all.mu.Lock()
	r.all.conts = append(r.all.conts, c)
	r.all.mu.Unlock()
	r.all.continued <- c
	return nil
}

// TestTwoProcessesRunEachDrillOnce: two queues on one database, as two bot
// processes, share 20 drills; each runs in exactly one of them, once, and
// the drills queued twice do not run twice.
func TestTwoProcessesRunEachDrillOnce(t *testing.T) {
	db := testDB(t)
	// Two workers each: with every run held at the gate, the third and
	// fourth drills to start must be in the other process.
	qa := newQueue(t, openPool(t, db), Options{MaxWorkers: 2})
	qb := newQueue(t, openPool(t, db), Options{MaxWorkers: 2})
	ctx := context.Background()
	job := func(i int) bot.Job {
		return bot.Job{ID: fmt.Sprintf("drill-%02d", i), Verb: "drill", App: "app", Requester: "U1", Channel: "C1"}
	}
	// Half queued before either runs (insert-only use), duplicates
	// included, from both processes.
	for i := range 10 {
		if err := qa.Enqueue(ctx, job(i)); err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			if err := qb.Enqueue(ctx, job(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := newRuns()
	gate := make(chan struct{})
	run(t, qa, &recorder{name: "a", all: all, gate: gate})
	run(t, qb, &recorder{name: "b", all: all, gate: gate})
	// The rest while both run; some queued twice, by both, at once.
	var wg sync.WaitGroup
	for i := 10; i < 20; i++ {
		for _, q := range []*Queue{qa, qb} {
			if q == qb && i%3 != 0 {
				continue
			}
			wg.Go(func() {
				if err := q.Enqueue(ctx, job(i)); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()

	waitStarts := func(n int) {
		t.Helper()
		for range n {
			select {
			case <-all.started:
			case <-time.After(wait):
				all.mu.Lock()
				defer all.mu.Unlock()
				t.Fatalf("drills started so far: %v", all.by)
			}
		}
	}
	waitStarts(4) // 2 per process: both full
	close(gate)
	waitStarts(16)
	waitFor(t, "every drill job completed", func() bool { return counts(t, qa).Completed == 20 })
	if c := counts(t, qa); c != (JobCounts{Completed: 20}) {
		t.Fatalf("jobs by state: %+v, want 20 completed and nothing else", c)
	}

	all.mu.Lock()
	defer all.mu.Unlock()
	if len(all.overlap) > 0 {
		t.Errorf("drills run twice at once: %v", all.overlap)
	}
	per := map[string]int{}
	for i := range 20 {
		id := job(i).ID
		if got := all.by[id]; len(got) != 1 {
			t.Errorf("drill %s ran %d times (%v), want once", id, len(got), got)
		} else {
			per[got[0]]++
		}
	}
	if len(all.by) != 20 {
		t.Errorf("%d drills ran, want 20: %v", len(all.by), all.by)
	}
	if per["a"] < 2 || per["b"] < 2 {
		t.Errorf("drills per process: %v, want each to have run some", per)
	}
	t.Logf("drills per process: %v", per)
}

// TestContinuationScheduled: a continuation queued for an hour from now
// waits; one for the same drill and ticket, not the expiry, queued for now
// (twice) runs once. A continuation queued for a time already past runs at
// once, not at the scheduler's next pass.
func TestContinuationScheduled(t *testing.T) {
	db := testDB(t)
	pool := openPool(t, db)
	worker := newQueue(t, pool, Options{})
	// Continuations come from a process that never runs jobs.
	inserter := newQueue(t, openPool(t, db), Options{})
	ctx := context.Background()
	expiry := bot.Continuation{DrillID: "d1", Ticket: "t1", Expiry: true}
	answer := bot.Continuation{DrillID: "d1", Ticket: "t1"}
	if err := inserter.Continue(ctx, expiry, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	all := newRuns()
	run(t, worker, &recorder{name: "w", all: all})
	for range 2 {
		if err := inserter.Continue(ctx, answer, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case c := <-all.continued:
		if c != answer {
			t.Fatalf("continued %+v, want %+v", c, answer)
		}
	case <-time.After(wait):
		t.Fatal("the continuation for now did not run")
	}
	waitFor(t, "the continuation's job completed", func() bool { return counts(t, worker).Completed == 1 })
	if c := counts(t, worker); c != (JobCounts{Scheduled: 1, Completed: 1}) {
		t.Fatalf("jobs by state: %+v, want 1 scheduled (the expiry), 1 completed", c)
	}

	past := bot.Continuation{DrillID: "d2", Ticket: "t2", Expiry: true}
	if err := inserter.Continue(ctx, past, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-all.continued:
		if c != past {
			t.Fatalf("continued %+v, want %+v", c, past)
		}
	case <-time.After(wait):
		t.Fatal("the continuation for a past time did not run")
	}
	all.mu.Lock()
	defer all.mu.Unlock()
	if len(all.conts) != 2 {
		t.Fatalf("continuations run: %+v, want the answer and the past expiry once each", all.conts)
	}
}

// TestRunStopsBlockedHandler: when Run's context ends, a drill still
// running after StopTimeout has its context cancelled and Run returns; the
// job goes back to the queue without using an attempt, and Run, called
// again, hands it out again.
func TestRunStopsBlockedHandler(t *testing.T) {
	db := testDB(t)
	q := newQueue(t, openPool(t, db), Options{StopTimeout: 500 * time.Millisecond})
	ctx := context.Background()
	started := make(chan struct{})
	cancelled := make(chan error, 1)
	h := handlerFunc(func(ctx context.Context, j bot.Job) error {
		close(started)
		<-ctx.Done()
		cancelled <- ctx.Err()
		return ctx.Err()
	})
	stop := run(t, q, h)
	if err := q.Enqueue(ctx, bot.Job{ID: "long", Verb: "drill", App: "app"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(wait):
		t.Fatal("the drill did not start")
	}
	begin := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	took := time.Since(begin)
	select {
	case err := <-cancelled:
		if err == nil {
			t.Fatal("the drill's context ended without an error")
		}
	default:
		t.Fatal("Run returned before the drill's context was cancelled")
	}
	if took < q.stopTimeout {
		t.Errorf("Run cancelled the drill after %s, before StopTimeout %s", took, q.stopTimeout)
	}
	t.Logf("Run returned %s after its context ended", took)
	var state string
	var attempt int
	if err := q.pool.QueryRow(ctx, `SELECT state, attempt FROM river_job WHERE kind = $1`, KindDrill).Scan(&state, &attempt); err != nil {
		t.Fatal(err)
	}
	if state != "available" || attempt != 0 {
		t.Errorf("the stopped drill's job is %s after %d attempts, want available after 0", state, attempt)
	}

	// Run again (the process restarted): the drill is handed out again.
	again := make(chan string, 1)
	run(t, q, handlerFunc(func(ctx context.Context, j bot.Job) error {
		again <- j.ID
		return nil
	}))
	select {
	case id := <-again:
		if id != "long" {
			t.Fatalf("ran %s, want the stopped drill", id)
		}
	case <-time.After(wait):
		t.Fatal("the stopped drill was not handed out again")
	}
}

// TestRunGivesUpOnHandlerIgnoringCancel: a handler that ignores its
// context's end does not keep Run from returning, with an error, after
// StopTimeout and CancelTimeout.
func TestRunGivesUpOnHandlerIgnoringCancel(t *testing.T) {
	db := testDB(t)
	q := newQueue(t, openPool(t, db), Options{StopTimeout: 300 * time.Millisecond, CancelTimeout: 300 * time.Millisecond})
	ctx := context.Background()
	started, release := make(chan struct{}), make(chan struct{})
	h := handlerFunc(func(ctx context.Context, j bot.Job) error {
		close(started)
		<-release
		return nil
	})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- q.Run(runCtx, h) }()
	t.Cleanup(func() {
		// Let the handler return, and River stop, before the pool closes.
		close(release)
		select {
		case <-q.client.Stopped():
		case <-time.After(wait):
			t.Error("River did not stop once the handler returned")
		}
	})
	if err := q.Enqueue(ctx, bot.Job{ID: "stubborn", Verb: "drill", App: "app"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(wait):
		t.Fatal("the drill did not start")
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil with a handler still running")
		}
		t.Logf("Run: %v", err)
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
}

// TestUniqueAfterTheJobEnds pins how River's unique keys outlive a job: a
// drill id whose job completed is refused again (until River's cleaner
// deletes the row), one whose job was discarded can be queued again.
func TestUniqueAfterTheJobEnds(t *testing.T) {
	db := testDB(t)
	q := newQueue(t, openPool(t, db), Options{})
	ctx := context.Background()
	all := newRuns()
	run(t, q, &recorder{name: "q", all: all})
	j := bot.Job{ID: "once", Verb: "drill", App: "app"}
	if err := q.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
	select {
	case <-all.started:
	case <-time.After(wait):
		t.Fatal("the drill did not run")
	}
	waitFor(t, "the drill's job completed", func() bool { return counts(t, q).Completed == 1 })
	if err := q.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
	if c := counts(t, q); c != (JobCounts{Completed: 1}) {
		t.Fatalf("after queuing a completed drill again: %+v, want the one completed job only", c)
	}

	// As if its attempts had all failed.
	if _, err := q.pool.Exec(ctx, `UPDATE river_job SET state = 'discarded' WHERE kind = $1`, KindDrill); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, j); err != nil {
		t.Fatal(err)
	}
	select {
	case <-all.started:
	case <-time.After(wait):
		t.Fatal("the drill queued again after a discarded job did not run")
	}
	waitFor(t, "the new job completed", func() bool { return counts(t, q).Completed == 1 })
	if c := counts(t, q); c != (JobCounts{Completed: 1, Discarded: 1}) {
		t.Fatalf("jobs by state: %+v, want 1 discarded, 1 completed", c)
	}
}

// TestKilledJobIsNotRescued pins River's rescuer's behaviour with our
// settings: a drill job left "running" by a killed process is never
// rescued, however old, because its timeout is -1 (River's rescuer skips
// such jobs); one cancelled with JobCancel is finalised. A job of a kind
// this client does not know is discarded by the same rescuer pass, which
// shows the pass ran.
func TestKilledJobIsSettledNotRescued(t *testing.T) {
	db := testDB(t)
	pool := openPool(t, db)
	q := newQueue(t, pool, Options{})
	ctx := context.Background()
	for _, id := range []string{"killed", "killed-cancelled"} {
		if err := q.Enqueue(ctx, bot.Job{ID: id, Verb: "drill", App: "app"}); err != nil {
			t.Fatal(err)
		}
	}
	// The state a SIGKILL leaves: running, attempted long ago, by a client
	// that is gone.
	if _, err := pool.Exec(ctx, `UPDATE river_job SET state = 'running', attempt = 1,
		attempted_at = now() - interval '1 day', attempted_by = '{dead-client}'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, queue, state, attempt, attempted_at)
		VALUES ('{}', 'unknown_kind', 3, $1, 'running', 1, now() - interval '1 day')`, QueueName); err != nil {
		t.Fatal(err)
	}
	var cancelID int64
	if err := pool.QueryRow(ctx, `SELECT id FROM river_job WHERE args->>'drill_id' = 'killed-cancelled'`).Scan(&cancelID); err != nil {
		t.Fatal(err)
	}
	if err := q.Settle(ctx, "killed-cancelled", ""); err != nil {
		t.Fatal(err)
	}
	var settled string
	if err := pool.QueryRow(ctx, `SELECT state FROM river_job WHERE id = $1`, cancelID).Scan(&settled); err != nil || settled != "running" {
		t.Fatalf("settled job is %q (%v) before the rescuer's pass, want still running", settled, err)
	}
	run(t, q, handlerFunc(func(context.Context, bot.Job) error {
		t.Error("a killed drill ran again")
		return nil
	}))
	waitFor(t, "the rescuer to discard the unknown kind", func() bool {
		var state string
		if err := pool.QueryRow(ctx, `SELECT state FROM river_job WHERE kind = 'unknown_kind'`).Scan(&state); err != nil {
			t.Fatal(err)
		}
		return state == "discarded"
	})
	c := counts(t, q)
	if c != (JobCounts{Running: 1, Cancelled: 1}) {
		t.Fatalf("drill jobs by state after the rescuer's pass: %+v, want the killed one still running, the settled one cancelled", c)
	}
}

type handlerFunc func(context.Context, bot.Job) error

func (f handlerFunc) RunJob(ctx context.Context, j bot.Job) error { return f(ctx, j) }

func (f handlerFunc) ContinueJob(context.Context, bot.Continuation) error { return nil }
