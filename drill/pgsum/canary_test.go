package pgsum_test

import (
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
