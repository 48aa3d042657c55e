// Package botriver implements bot.Queue with River
// (github.com/riverqueue/river): drills and continuations become durable
// jobs in the state database, and whichever bot process fetches a job first
// runs it, through its bot.JobHandler.
//
// Job semantics, for both kinds ("drill" and "drill_continue"):
//
//   - Unique. A drill job is unique by drill id, a continuation by (drill
//     id, ticket, expiry flag): inserting one that exists returns nil and
//     adds nothing. River keeps the key while the job is pending, scheduled,
//     available, running, retryable or completed (its default), so the same
//     id is refused even after its job completed, until River's cleaner
//     deletes the completed row (CompletedJobRetentionPeriod, 24 hours by
//     default). A job discarded (attempts used up) or cancelled no longer
//     holds its key: inserting the id again makes a new job.
//   - No timeout. River never cancels a running drill (JobTimeout -1): a
//     drill runs for up to an hour and stops by its own means.
//   - A few attempts (maxAttempts). A job is attempted again when its
//     handler returns an error (River's backoff: about 1 s, then 16 s, and
//     the retry becomes available at the leader's next scheduler pass,
//     every 5 s); after the last it is discarded, logged here at error.
//     That is safe because the handler is idempotent: the drill journal
//     decides what to do with a drill it has seen before (bot.Bot leaves a
//     drill the journal knows to the journal's resume of dead drills), and
//     a continuation finds its drill no longer parked on its ticket once
//     another has taken it up. River hands a job to one process at a
//     time, the unique key keeps a drill to one job, and no rescue (below)
//     hands out a job still running: no drill runs twice at once through
//     River; the journal's drill and app locks remain the backstop.
//   - Shutdown puts running jobs back. When Run's context ends, running jobs
//     get StopTimeout to finish; then their contexts are cancelled, and a job
//     whose handler returns the context's error is made available again by
//     River without using an attempt, to be taken by another process (or
//     this one when it starts again) at once.
//   - A process killed while running a job leaves the job "running" in
//     river_job: River's rescuer skips jobs without a timeout (see
//     rescueStuckJobsAfter). The drill itself is not lost: the bot's journal
//     finds the dead owner and undoes the drill within seconds, and then
//     closes the job (Settle), which River's rescuer finalises as cancelled.
package botriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/restore-drill/restore-drill/bot"
)

// Job kinds, as stored in river_job.kind. Never rename one that has shipped:
// jobs already queued under the old name would find no worker.
const (
	KindDrill    = "drill"
	KindContinue = "drill_continue"
)

// QueueName is the River queue the bot's jobs go to, so that they never mix
// with another River client's "default" queue in the same database.
const QueueName = "drills"

const (
	// maxAttempts: see the package comment.
	maxAttempts = 3

	// rescueStuckJobsAfter is how long a job may be "running" before River's
	// rescuer (run by the elected leader every 30 s) retries it, thinking
	// its process died. River cannot tell a dead process from a slow one:
	// the rescue is by age alone, and it does not stop the job still
	// running. It must therefore be well above the longest drill (about an
	// hour), or a live drill would be run again beside itself.
	//
	// With River v0.51.2 it has no effect on our jobs: the rescuer skips a
	// job whose timeout is -1 (JobTimeout below), so a job left "running" by
	// a killed process stays so. That is harmless (the bot's journal undoes
	// the dead drill; a continuation's key only blocks a second answer to
	// the same ticket), but the row is never cleaned. The exception is a job
	// cancelled with Client.JobCancel: the rescuer finalises it as cancelled
	// after this delay whatever its timeout. The value is set, not left to
	// River's default, so that it stays safe should the timeout change.
	rescueStuckJobsAfter = 3 * time.Hour

	defaultMaxWorkers    = 20
	defaultStopTimeout   = 20 * time.Second
	defaultCancelTimeout = 5 * time.Second
)

// Options configures a Queue. The zero value is usable.
type Options struct {
	// Logger receives the queue's own logs (handler errors, shutdown) and
	// River's warnings and errors; River's info-level chatter (client
	// started, job counts, leadership) is dropped. Default slog.Default().
	Logger *slog.Logger
	// MaxWorkers is how many jobs this process runs at once. Default 20.
	MaxWorkers int
	// StopTimeout is how long Run, once its context ends, waits for running
	// jobs to finish before cancelling their contexts. Default 20 s.
	StopTimeout time.Duration
	// CancelTimeout is how long Run then waits for the cancelled jobs'
	// handlers to return before it gives up on them and returns an error.
	// Default 5 s. The defaults add up to less than the 30 s Heroku leaves
	// between SIGTERM and SIGKILL.
	CancelTimeout time.Duration

	// PollInterval is how often River looks for jobs besides being woken
	// by LISTEN/NOTIFY; River's 1 s when zero (tests shorten it).
	PollInterval time.Duration
}

// Queue is a bot.Queue on River. Enqueue and Continue work from New on,
// whether or not Run is ever called.
type Queue struct {
	pool        *pgxpool.Pool
	client      *river.Client[pgx.Tx]
	log         *slog.Logger
	stopTimeout time.Duration
	// cancelTimeout: see Options.
	cancelTimeout time.Duration
	handler       atomic.Pointer[handlerBox]
	running       atomic.Bool
}

type handlerBox struct{ h bot.JobHandler }

var _ bot.Queue = (*Queue)(nil)

// New returns a Queue on the state database behind pool, which must have
// been migrated with Migrate. Nothing runs until Run.
func New(pool *pgxpool.Pool, opts Options) (*Queue, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxWorkers <= 0 {
		opts.MaxWorkers = defaultMaxWorkers
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = defaultStopTimeout
	}
	if opts.CancelTimeout <= 0 {
		opts.CancelTimeout = defaultCancelTimeout
	}
	q := &Queue{pool: pool, log: opts.Logger, stopTimeout: opts.StopTimeout, cancelTimeout: opts.CancelTimeout}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &drillWorker{q: q}); err != nil {
		return nil, err
	}
	if err := river.AddWorkerSafely(workers, &continueWorker{q: q}); err != nil {
		return nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:            quiet(opts.Logger, slog.LevelWarn),
		Queues:            map[string]river.QueueConfig{QueueName: {MaxWorkers: opts.MaxWorkers}},
		Workers:           workers,
		FetchPollInterval: opts.PollInterval,
		// Drills stop by their own means; River must not cancel them.
		JobTimeout:           -1,
		RescueStuckJobsAfter: rescueStuckJobsAfter,
		MaxAttempts:          maxAttempts,
	})
	if err != nil {
		return nil, fmt.Errorf("start the job queue: %w", err)
	}
	q.client = client
	return q, nil
}

// drillArgs is a "drill" job: the bot.Job, and its drill id again as the
// unique key (River reads `river:"unique"` tags on the args' top level, and
// bot.Job carries none).
type drillArgs struct {
	DrillID string  `json:"drill_id" river:"unique"`
	Job     bot.Job `json:"job"`
}

func (drillArgs) Kind() string { return KindDrill }

func (drillArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueName, MaxAttempts: maxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// continueArgs is a "drill_continue" job: the bot.Continuation, with its
// key fields repeated as the unique key, so that a field added to
// Continuation later does not change what counts as the same continuation.
type continueArgs struct {
	DrillID      string           `json:"drill_id" river:"unique"`
	Ticket       string           `json:"ticket" river:"unique"`
	Expiry       bool             `json:"expiry" river:"unique"`
	Continuation bot.Continuation `json:"continuation"`
}

func (continueArgs) Kind() string { return KindContinue }

func (continueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueName, MaxAttempts: maxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Enqueue adds drill j, to run at once in whichever process takes it. A job
// for j.ID already known to River (see the package comment) is left alone
// and Enqueue returns nil.
func (q *Queue) Enqueue(ctx context.Context, j bot.Job) error {
	if j.ID == "" {
		return errors.New("queue a drill: no drill id")
	}
	res, err := q.client.Insert(ctx, drillArgs{DrillID: j.ID, Job: j}, nil)
	if err != nil {
		return fmt.Errorf("queue drill %s: %w", j.ID, err)
	}
	if res.UniqueSkippedAsDuplicate {
		q.log.InfoContext(ctx, "drill already queued", "drill", j.ID, "job_id", res.Job.ID, "state", string(res.Job.State))
	}
	return nil
}

// Continue adds c, to run at at, or at once when at is zero or past. A
// continuation with the same drill, ticket and expiry flag already known to
// River is left alone and Continue returns nil.
func (q *Queue) Continue(ctx context.Context, c bot.Continuation, at time.Time) error {
	if c.DrillID == "" || c.Ticket == "" {
		return errors.New("queue a continuation: no drill id or ticket")
	}
	var opts *river.InsertOpts
	// A job given a ScheduledAt is inserted "scheduled" even when that time
	// is past, and only becomes available when the leader's scheduler next
	// runs (every 5 s): a past time is inserted as "at once" instead.
	if !at.IsZero() && at.After(time.Now()) {
		opts = &river.InsertOpts{ScheduledAt: at}
	}
	args := continueArgs{DrillID: c.DrillID, Ticket: c.Ticket, Expiry: c.Expiry, Continuation: c}
	res, err := q.client.Insert(ctx, args, opts)
	if err != nil {
		return fmt.Errorf("queue the continuation of drill %s: %w", c.DrillID, err)
	}
	if res.UniqueSkippedAsDuplicate {
		q.log.InfoContext(ctx, "continuation already queued", "drill", c.DrillID, "ticket", c.Ticket,
			"expiry", c.Expiry, "job_id", res.Job.ID, "state", string(res.Job.State))
	}
	return nil
}

// Settle closes the jobs of drillID that River still shows running though
// nothing runs them: the drill's own, or continuations whose process died
// after the drill parked. With keep empty (the journal resumed the drill:
// its process died) every running job of the drill qualifies. With keep,
// the ticket whose continuation took the drill up, those attempted before
// the first continuation of keep do, by the database's clock: one
// attempted since (the answer to the confirmation the drill parked on
// again) may be running the drill. River's rescuer finalises the closed
// ones as cancelled, which frees their unique keys.
func (q *Queue) Settle(ctx context.Context, drillID, keep string) error {
	rows, err := q.pool.Query(ctx, `SELECT id FROM river_job WHERE state = 'running' AND kind IN ($1, $2) AND args->>'drill_id' = $3
		AND NOT (kind = $2 AND args->>'ticket' = $4 AND $4 <> '')
		AND attempted_at < CASE WHEN $4 = '' THEN now() ELSE coalesce((SELECT min(attempted_at) FROM river_job
			WHERE kind = $2 AND args->>'drill_id' = $3 AND args->>'ticket' = $4), '-infinity') END`,
		KindDrill, KindContinue, drillID, keep)
	if err != nil {
		return fmt.Errorf("find the jobs of drill %s: %w", drillID, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("find the jobs of drill %s: %w", drillID, err)
	}
	for _, id := range ids {
		if _, err := q.client.JobCancel(ctx, id); err != nil {
			return fmt.Errorf("close job %d of drill %s: %w", id, drillID, err)
		}
	}
	return nil
}

// Run works jobs with h until ctx ends, then stops: running jobs get
// StopTimeout to finish, then their contexts are cancelled and they get
// CancelTimeout to return. It returns nil once stopped, and an error
// if River could not start or a handler still had not returned. Run may
// be called again once it has returned, not while it runs.
func (q *Queue) Run(ctx context.Context, h bot.JobHandler) error {
	if h == nil {
		return errors.New("run the job queue: no handler")
	}
	if !q.running.CompareAndSwap(false, true) {
		return errors.New("run the job queue: already running")
	}
	defer q.running.Store(false)
	q.handler.Store(&handlerBox{h})

	// Jobs' contexts derive from Start's: give it one that ctx's end does
	// not cancel, or River would hard-stop (cancel every job) at once.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	if err := q.client.Start(workCtx); err != nil {
		return fmt.Errorf("start the job queue: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-q.client.Stopped():
		return errors.New("the job queue stopped by itself")
	}

	soft, cancel := context.WithTimeout(context.Background(), q.stopTimeout)
	err := q.client.Stop(soft)
	cancel()
	if err == nil {
		return nil
	}
	q.log.Warn("jobs still running at shutdown; cancelling them", "waited", q.stopTimeout.String())
	hard, cancel := context.WithTimeout(context.Background(), q.cancelTimeout)
	defer cancel()
	if err := q.client.StopAndCancel(hard); err != nil {
		return fmt.Errorf("stop the job queue: jobs did not return %s after their cancellation: %w", q.cancelTimeout, err)
	}
	return nil
}

func (q *Queue) currentHandler() (bot.JobHandler, error) {
	b := q.handler.Load()
	if b == nil {
		return nil, errors.New("no job handler: Run was not called")
	}
	return b.h, nil
}

type drillWorker struct {
	river.WorkerDefaults[drillArgs]
	q *Queue
}

func (w *drillWorker) Work(ctx context.Context, job *river.Job[drillArgs]) error {
	h, err := w.q.currentHandler()
	if err != nil {
		return err
	}
	err = h.RunJob(ctx, job.Args.Job)
	w.q.logResult(ctx, err, job.JobRow.ID, job.Attempt, job.MaxAttempts, "drill", job.Args.DrillID)
	return err
}

type continueWorker struct {
	river.WorkerDefaults[continueArgs]
	q *Queue
}

func (w *continueWorker) Work(ctx context.Context, job *river.Job[continueArgs]) error {
	h, err := w.q.currentHandler()
	if err != nil {
		return err
	}
	c := job.Args.Continuation
	err = h.ContinueJob(ctx, c)
	w.q.logResult(ctx, err, job.JobRow.ID, job.Attempt, job.MaxAttempts, "continuation", c.DrillID,
		"ticket", c.Ticket, "expiry", c.Expiry)
	return err
}

// logResult logs a handler's error (already redacted by the handler).
// River records it on the job (river_job.errors) and retries or discards.
func (q *Queue) logResult(ctx context.Context, err error, id int64, attempt, maxAttempts int, what, drillID string, attrs ...any) {
	if err == nil {
		return
	}
	attrs = append([]any{"drill", drillID, "job_id", id, "attempt", attempt, "max_attempts", maxAttempts, "err", err.Error()}, attrs...)
	switch {
	case ctx.Err() != nil:
		q.log.Warn(what+" stopped by shutdown; it goes back to the queue", attrs...)
	case attempt >= maxAttempts:
		q.log.Error(what+" failed; no attempts left", attrs...)
	default:
		q.log.Error(what+" failed; it will be retried", attrs...)
	}
}

// JobCounts counts the bot's jobs in river_job by state. Completed, cancelled and discarded jobs count until River's
// cleaner deletes them.
type JobCounts struct {
	Available, Scheduled, Running, Retryable int
	Completed, Cancelled, Discarded          int
}

// Counts reads the bot's jobs (both kinds) in river_job by state, across
// every process: for health checks and tests.
func (q *Queue) Counts(ctx context.Context) (JobCounts, error) {
	var c JobCounts
	err := q.pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE state = 'available'),
			count(*) FILTER (WHERE state = 'scheduled'),
			count(*) FILTER (WHERE state = 'running'),
			count(*) FILTER (WHERE state = 'retryable'),
			count(*) FILTER (WHERE state = 'completed'),
			count(*) FILTER (WHERE state = 'cancelled'),
			count(*) FILTER (WHERE state = 'discarded')
		FROM river_job WHERE kind IN ($1, $2)`, KindDrill, KindContinue).
		Scan(&c.Available, &c.Scheduled, &c.Running, &c.Retryable, &c.Completed, &c.Cancelled, &c.Discarded)
	if err != nil {
		return JobCounts{}, fmt.Errorf("count the queued jobs: %w", err)
	}
	return c, nil
}

// quiet drops records below min before they reach l's handler.
func quiet(l *slog.Logger, min slog.Level) *slog.Logger {
	return slog.New(minLevel{l.Handler(), min})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
