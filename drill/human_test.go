package drill_test

import (
	"testing"
	"time"

	"github.com/restore-drill/restore-drill/drill"
)

// TestHumanDuration_ReadsInCalendarUnits: ages read in their two largest
// calendar units with their plurals, never as thousands of hours.
func TestHumanDuration_ReadsInCalendarUnits(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	for d, want := range map[time.Duration]string{
		37532*time.Hour + 20*time.Minute: "4 years 3 months",
		365*day + 6*time.Hour:            "1 year",
		3*day + 2*time.Hour:              "3 days 2 h",
		day + 30*time.Minute:             "1 day",
		40 * day:                         "1 month 9 days",
		5*time.Hour + 20*time.Minute:     "5 h 20 min",
		time.Hour + time.Minute:          "1 h 1 min",
		90 * time.Second:                 "1m30s",
	} {
		if got := drill.HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
