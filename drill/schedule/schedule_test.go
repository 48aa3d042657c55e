package schedule_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
	"github.com/restore-drill/restore-drill/drill/drilltest"
	"github.com/restore-drill/restore-drill/drill/schedule"
)

func TestParse(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) // a Thursday
	for _, tc := range []struct {
		in, text string
		next     time.Time
	}{
		{"daily", "daily", time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)},
		{"WEEKLY", "weekly", time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)},
		{"30 2 * * 0", "30 2 * * 0", time.Date(2026, 11, 29, 2, 30, 0, 0, time.UTC)},
		{"@hourly", "@hourly", time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)},
	} {
		s, err := schedule.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if s.Text != tc.text || !s.Next(from).Equal(tc.next) {
			t.Errorf("Parse(%q) = %q next %v, want %q next %v", tc.in, s.Text, s.Next(from), tc.text, tc.next)
		}
	}
	for _, bad := range []string{"", "sometimes", "* * * * *", "*/5 * * * *", "61 * * * *", "TZ=Europe/Paris 0 4 * * *", "0 4 * *", strings.Repeat("1", 200)} {
		_, err := schedule.Parse(bad)
		if drill.ErrorCode(err) != drill.EINVALID {
			t.Errorf("Parse(%q) = %v, want invalid", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"daily", "weekly", "0 4 * * 1", "@every 1h", "*/5 * * * *", "0 0 31 2 *", "TZ=UTC 0 * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := schedule.Parse(in)
		if err != nil {
			if drill.ErrorCode(err) != drill.EINVALID {
				t.Fatalf("code %s: %v", drill.ErrorCode(err), err)
			}
			return
		}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if n := s.Next(now); !n.IsZero() && !n.After(now) {
			t.Fatalf("%q: next %v is not after %v", in, n, now)
		}
	})
}

// Two bot processes ticking at the same moment fire a due schedule once;
// a run missed while no bot was up fires once, not once per slot.
func TestDue_ClaimedOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := drilltest.NewStateStore(t)
	created := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	if err := a.SaveSchedule(ctx, schedule.Entry{App: "shop", Spec: "daily", Mode: drill.ModeVerify, Channel: "C1", CreatedBy: "U1", CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveSchedule(ctx, schedule.Entry{App: "blog", Spec: "weekly", Mode: drill.ModeVerify, CreatedAt: created}); err != nil {
		t.Fatal(err)
	}
	before := time.Date(2026, 11, 21, 3, 59, 0, 0, time.UTC)
	if due, err := schedule.Due(ctx, a, before); err != nil || len(due) != 0 {
		t.Fatalf("due before 04:00: %+v %v", due, err)
	}
	// Five days later: shop missed five daily runs, blog one weekly run.
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	fired := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			due, err := schedule.Due(ctx, a, now)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, e := range due {
				fired[e.App]++
			}
		})
	}
	wg.Wait()
	if fired["shop"] != 1 || fired["blog"] != 1 {
		t.Fatalf("fired %v, want each app once", fired)
	}
	if due, _ := schedule.Due(ctx, a, now.Add(time.Hour)); len(due) != 0 {
		t.Errorf("fired again an hour later: %+v", due)
	}
	due, _ := schedule.Due(ctx, a, time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC))
	if len(due) != 1 || due[0].App != "shop" || due[0].Channel != "C1" {
		t.Errorf("next day: %+v, want shop", due)
	}
	if ok, err := a.DeleteSchedule(ctx, "shop", "U1"); err != nil || !ok {
		t.Fatalf("unschedule: %v %v", ok, err)
	}
	if list, _ := a.Schedules(ctx); len(list) != 1 || list[0].App != "blog" {
		t.Errorf("schedules after unschedule: %+v", list)
	}
}

// TestParse_RefusesRunsCloserThanAnHourAnywhereInTheCycle: the gap between
// runs is checked over the schedule's whole cycle, not only between its
// first two runs, including across midnight and month ends.
func TestParse_RefusesRunsCloserThanAnHourAnywhereInTheCycle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		spec string
		ok   bool
	}{
		{"0,30 0 * * *", false},    // twice in 30 minutes, once a day
		{"0,40 4 * * 1", false},    // weekly, 40 minutes apart
		{"10,50 12 1 1 *", false},  // yearly, 40 minutes apart
		{"50 23,0 * * *", true},    // 23:50 and 00:50: an hour apart
		{"30 0,23 * * *", true},    // 23:30 then 00:30 the next day: an hour
		{"0,45 0,23 * * *", false}, // 00:00 and 00:45
		{"0,59 23 31 12 *", false}, // once a year, 59 minutes apart
		{"0 0,23 * * *", true},     // 23:00 then 00:00 the next day: an hour
		{"@every 30m", false},
		{"@every 1h", true},
		{"0 * * * *", true},
		{"0 4 * * *", true},
		{"0 0 30 2 *", false}, // never runs
	}
	for _, tt := range tests {
		_, err := schedule.Parse(tt.spec)
		if (err == nil) != tt.ok {
			t.Errorf("Parse(%q) = %v, want ok=%v", tt.spec, err, tt.ok)
		}
	}
}
