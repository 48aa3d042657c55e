package schedule

import (
	"time"

	"github.com/robfig/cron/v3"
)

// shortestGap is the shortest time between two consecutive runs of sched
// over its whole cycle, not just between its first two runs: "0,30 0 * * *"
// runs 30 minutes apart although its first runs are a day apart. ok is false
// when sched never runs.
func shortestGap(sched cron.Schedule) (gap time.Duration, ok bool) {
	switch s := sched.(type) {
	case cron.ConstantDelaySchedule:
		return s.Delay, true
	case *cron.SpecSchedule:
		return specGap(s)
	}
	// Unknown kinds (none today): sample a year of runs.
	t := sched.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if t.IsZero() {
		return 0, false
	}
	gap = 366 * 24 * time.Hour
	for end := t.AddDate(1, 0, 0); t.Before(end); {
		n := sched.Next(t)
		if n.IsZero() {
			break
		}
		gap, t = min(gap, n.Sub(t)), n
	}
	return gap, true
}

// specGap works on the fields of a cron expression: the runs within a day
// come from its minutes and hours. Across midnight it assumes two
// consecutive days run (the last run of one, the first of the next), which
// never misjudges "at most hourly": with one minute value the runs are
// whole hours apart, and with two the gap within an hour is already less.
func specGap(s *cron.SpecSchedule) (time.Duration, bool) {
	var times []int // minutes since midnight, ascending
	for h := range 24 {
		for m := range 60 {
			if s.Hour&(1<<h) != 0 && s.Minute&(1<<m) != 0 {
				times = append(times, h*60+m)
			}
		}
	}
	if len(times) == 0 || s.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return 0, false
	}
	gap := 24*60 - times[len(times)-1] + times[0]
	for i := 1; i < len(times); i++ {
		gap = min(gap, times[i]-times[i-1])
	}
	return time.Duration(gap) * time.Minute, true
}
