package pgsum_test

import (
	"context"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/pgsum"
)

func TestCanary(t *testing.T) {
	t.Parallel()

	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

	t.Run("WriteThenFind", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		conn := drilltest.Connect(t, drilltest.CreateDatabase(t, "pgsum_canary"))
		first := pgsum.Canary{DrillID: "drill-1", Token: "secret-1", At: at}
		second := pgsum.Canary{DrillID: "drill-2", Token: "secret-2", At: at.Add(time.Hour)}

		requireNoError(t, pgsum.WriteCanary(ctx, conn, first))
		requireNoError(t, pgsum.WriteCanary(ctx, conn, second))

		for _, tt := range []struct {
			name string
			c    pgsum.Canary
			want bool
		}{
			{"First", first, true},
			{"Second", second, true},
			{"WrongToken", pgsum.Canary{DrillID: "drill-1", Token: "secret-2"}, false},
			{"UnknownDrill", pgsum.Canary{DrillID: "drill-3", Token: "secret-1"}, false},
		} {
			found, err := pgsum.FindCanary(ctx, conn, tt.c)
			requireNoError(t, err)
			requireEqual(t, tt.want, found, tt.name)
		}

		var n int
		var got time.Time
		requireNoError(t, conn.QueryRow(ctx, `SELECT count(*), max(created_at) FROM public.restore_drill_canary`).Scan(&n, &got))
		requireEqual(t, 2, n, "canary rows")
		requireEqual(t, true, got.Equal(at.Add(time.Hour)), "latest created_at "+got.String())
	})

	t.Run("NoTable", func(t *testing.T) {
		t.Parallel()
		conn := drilltest.Connect(t, drilltest.CreateDatabase(t, "pgsum_nocanary"))
		found, err := pgsum.FindCanary(testContext(t), conn, pgsum.Canary{DrillID: "drill-1", Token: "secret-1"})
		requireNoError(t, err)
		requireEqual(t, false, found, "found")
	})

	t.Run("SameDrillTwice", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		conn := drilltest.Connect(t, drilltest.CreateDatabase(t, "pgsum_canary2"))
		c := pgsum.Canary{DrillID: "drill-1", Token: "secret-1", At: at}
		requireNoError(t, pgsum.WriteCanary(ctx, conn, c))
		if err := pgsum.WriteCanary(ctx, conn, c); err == nil {
			t.Fatal("writing the same drill id twice succeeded")
		}
		found, err := pgsum.FindCanary(ctx, conn, c)
		requireNoError(t, err)
		requireEqual(t, true, found, "found after the failed second write")
	})

	t.Run("EmptyFields", func(t *testing.T) {
		t.Parallel()
		conn := drilltest.Connect(t, drilltest.CreateDatabase(t, "pgsum_canary3"))
		if err := pgsum.WriteCanary(testContext(t), conn, pgsum.Canary{DrillID: "drill-1", At: at}); err == nil {
			t.Fatal("a canary without a token was written")
		}
	})
}

func TestFreshness_NewestIndexedTimestamps(t *testing.T) {
	t.Parallel()
	db := drilltest.CreateDatabase(t, "fresh")
	drilltest.Exec(t, db, `
		CREATE TABLE orders (id int PRIMARY KEY, placed_at timestamptz, note text);
		CREATE INDEX ON orders (placed_at);
		INSERT INTO orders VALUES (1, '2026-11-01 10:00+00', 'a'), (2, '2026-11-25 23:30+00', 'b'), (3, NULL, 'c');
		CREATE TABLE events (at timestamp, kind text);
		CREATE INDEX ON events (at);
		INSERT INTO events VALUES ('2026-10-01 00:00', 'x');
		CREATE TABLE unindexed (seen timestamptz);
		INSERT INTO unindexed VALUES ('2030-01-01 00:00+00');
		CREATE TABLE empty_one (at timestamptz PRIMARY KEY);`)
	conn := drilltest.Connect(t, db)
	got, err := pgsum.Freshness(context.Background(), conn, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Table != "orders" || got[0].Column != "placed_at" ||
		!got[0].Newest.Equal(time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC)) || got[1].Table != "events" {
		t.Fatalf("freshness %+v: want orders.placed_at 2026-11-25 23:30 UTC, then events", got)
	}
	if one, _ := pgsum.Freshness(context.Background(), conn, 1); len(one) != 1 {
		t.Errorf("limit 1 gave %d", len(one))
	}
}
