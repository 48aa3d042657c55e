// Package schedule parses drill schedules ("daily", "weekly" or a cron
// expression) and decides which are due. Firing is claimed in the state
// database, so with several bot processes each scheduled drill runs once.
package schedule

import (
	"context"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/restore-drill/restore-drill/drill"
)

// Spec is a parsed schedule.
type Spec struct {
	// Text is the schedule as stored: "daily", "weekly" or a cron
	// expression.
	Text  string
	sched cron.Schedule
}

// The named schedules run at 04:00 UTC, after most nightly backups: daily
// every day, weekly on Mondays.
const (
	dailyCron  = "0 4 * * *"
	weeklyCron = "0 4 * * 1"
)

// Parse reads "daily", "weekly", or a five-field cron expression in UTC
// (descriptors such as @hourly too).
func Parse(s string) (Spec, error) {
	text := strings.TrimSpace(s)
	expr := text
	switch strings.ToLower(text) {
	case "daily":
		text, expr = "daily", dailyCron
	case "weekly":
		text, expr = "weekly", weeklyCron
	}
	if text == "" || len(text) > 100 {
		return Spec{}, drill.Errorf(drill.EINVALID, "a schedule is daily, weekly, or a cron expression such as \"0 4 * * 1\"")
	}
	if strings.HasPrefix(strings.ToUpper(expr), "TZ=") || strings.HasPrefix(strings.ToUpper(expr), "CRON_TZ=") {
		return Spec{}, drill.Errorf(drill.EINVALID, "schedules are in UTC: drop the time zone from %q", clip(text))
	}
	sched, err := cron.ParseStandard(expr)
	if err != nil {
		return Spec{}, drill.Errorf(drill.EINVALID, "%q is not a schedule (%s): use daily, weekly, or a cron expression such as \"0 4 * * 1\"", clip(text), err)
	}
	// A schedule that fires more often than hourly, anywhere in its cycle,
	// would stack drills.
	gap, ok := shortestGap(sched)
	if !ok {
		return Spec{}, drill.Errorf(drill.EINVALID, "%q never runs (no such date): use daily, weekly, or a cron expression such as \"0 4 * * 1\"", clip(text))
	}
	if gap < time.Hour {
		return Spec{}, drill.Errorf(drill.EINVALID, "%q would run a drill more than once an hour (two runs only %s apart): drills take minutes, so schedule at most hourly", clip(text), gap)
	}
	return Spec{Text: text, sched: sched}, nil
}

// Next is the first run strictly after t, in UTC.
func (s Spec) Next(t time.Time) time.Time { return s.sched.Next(t.UTC()) }

// Entry is one app's schedule as stored.
type Entry struct {
	App       string     `json:"app"`
	Spec      string     `json:"spec"`
	Mode      drill.Mode `json:"mode"`
	Channel   string     `json:"channel"`
	CreatedBy string     `json:"created_by"`
	CreatedAt time.Time  `json:"created_at"`
	// LastRun is when it last fired; zero if never.
	LastRun time.Time `json:"last_run"`
}

// NextRun is when the entry fires next.
func (e Entry) NextRun() (time.Time, error) {
	spec, err := Parse(e.Spec)
	if err != nil {
		return time.Time{}, err
	}
	from := e.LastRun
	if from.IsZero() {
		from = e.CreatedAt
	}
	return spec.Next(from), nil
}

// Store keeps schedules; pgstate.Store implements it.
type Store interface {
	Schedules(ctx context.Context) ([]Entry, error)
	// ClaimRun sets e's last run to at if it is still e.LastRun, so that one
	// process only fires it. It reports whether this caller won.
	ClaimRun(ctx context.Context, e Entry, at time.Time) (bool, error)
}

// Due returns the entries due at now that this process claimed. A run
// missed while no bot was up fires once, not once per missed slot.
func Due(ctx context.Context, s Store, now time.Time) ([]Entry, error) {
	entries, err := s.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range entries {
		next, err := e.NextRun()
		if err != nil || next.After(now) {
			continue
		}
		won, err := s.ClaimRun(ctx, e, now)
		if err != nil {
			return out, err
		}
		if won {
			e.LastRun = now
			out = append(out, e)
		}
	}
	return out, nil
}

func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}
