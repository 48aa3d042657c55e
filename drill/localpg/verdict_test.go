package localpg_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
)

// Issue 10: a broad schema's drills and emergency restore pass; an altered
// restore fails naming each difference.
func TestProvider_BroadSchema(t *testing.T) {
	t.Parallel()
	drilltest.ExerciseBroadSchema(t, harness())
}

// Issue 10 item 2: a verify drill of a database that takes inserts and
// updates all along passes, exactly, every time: sequences move outside the
// snapshot and must not fail it. So does an emergency restore into a new
// database of a backup captured under that traffic.
func TestVerify_UnderSteadyWritesPassesExactly(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	drilltest.Exec(t, app, `
CREATE TABLE public.ticks (id bigserial PRIMARY KEY, n int NOT NULL, at timestamptz NOT NULL DEFAULT now());
CREATE TABLE public.events (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ticket bigint);
CREATE TABLE public.counters (k int PRIMARY KEY, v bigint NOT NULL);
CREATE SEQUENCE public.tickets;
INSERT INTO public.counters SELECT g, 0 FROM generate_series(0, 9) g;
INSERT INTO public.ticks (n) SELECT g FROM generate_series(1, 100) g;
-- enough rows that hashing takes longer than pg_dump takes to read the
-- sequences, as on a real database
CREATE TABLE public.bulk AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 300000) g;`)
	p := newProvider(t)

	ctx, stop := context.WithCancel(context.Background())
	var writes atomic.Int64
	var wg sync.WaitGroup
	var writeErr error
	wg.Go(func() {
		conn := drilltest.Connect(t, app)
		tick := time.NewTicker(3 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO public.ticks (n) VALUES ($1)`, i); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE public.counters SET v = v + 1 WHERE k = $1`, i%10); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO public.events (ticket) VALUES (nextval('public.tickets'))`)
				return err
			})
			if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				writeErr = err
				return
			}
			writes.Add(1)
		}
	})
	stopWriting := func() {
		stop()
		wg.Wait()
		if writeErr != nil {
			t.Fatalf("the writer failed: %v", writeErr)
		}
	}
	defer stopWriting()

	r := &drill.Runner{Provider: p}
	for run := 1; run <= 3; run++ {
		before := writes.Load()
		rep, err := r.Run(context.Background(), drill.Options{App: app})
		if err != nil || rep.Result != drill.Passed {
			t.Fatalf("run %d under writes: %v\n%s\nsequences behind: %v", run, err, rep.Verification, rep.SequencesBehind)
		}
		if !rep.Exact {
			t.Fatalf("run %d: the comparison is not exact", run)
		}
		for _, tr := range rep.Tables {
			if !tr.Match {
				t.Errorf("run %d: %s.%s differs: %s", run, tr.Schema, tr.Name, tr.Problem)
			}
		}
		if writes.Load() == before {
			t.Fatalf("run %d: nothing was written during the drill, so it proves nothing", run)
		}
	}

	b, err := r.Capture(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	stopWriting()
	rr := &drill.Runner{Provider: p, Confirmer: drilltest.AppConfirmer("U-ONCALL")}
	rep, err := rr.Restore(context.Background(), drill.RestoreOptions{App: app, Backup: drill.BackupRef{Kind: drill.BackupByID, Num: b.Num}, Into: drill.IntoNew})
	if err != nil || rep.Result != drill.Passed {
		t.Fatalf("restore --into new of a backup captured under writes: %v\n%s\nsequences behind: %v", err, rep.Verification, rep.SequencesBehind)
	}
}
