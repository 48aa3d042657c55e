package drill

import (
	"fmt"
	"time"
)

// Calendar units for ages: a mean Gregorian year and month, so that an age
// of years reads in years rather than tens of thousands of hours.
const (
	day   = 24 * time.Hour
	year  = 365*day + 6*time.Hour // 365.25 days
	month = year / 12
)

// HumanDuration writes an age or a long duration in its two largest
// calendar units: "4 years 3 months", "3 days 2 h", "5 h 20 min"; under an
// hour as RoundDuration does.
func HumanDuration(d time.Duration) string {
	if d < 0 {
		return "-" + HumanDuration(-d)
	}
	two := func(n1 int64, u1, u1s string, n2 int64, u2, u2s string) string {
		s := Plural(int(n1), u1, u1s)
		if n2 > 0 {
			s += " " + Plural(int(n2), u2, u2s)
		}
		return s
	}
	switch {
	case d >= year:
		return two(int64(d/year), "year", "years", int64(d%year/month), "month", "months")
	case d >= month:
		return two(int64(d/month), "month", "months", int64(d%month/day), "day", "days")
	case d >= day:
		return two(int64(d/day), "day", "days", int64(d%day/time.Hour), "h", "h")
	case d >= time.Hour:
		return two(int64(d/time.Hour), "h", "h", int64(d%time.Hour/time.Minute), "min", "min")
	}
	return RoundDuration(d)
}

// Plural writes n with the word for one or for many: "1 error", "2 errors".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Line says how recent one column's data is: its schema-qualified name, its
// newest value and how long before at (named when) that was.
func (f Freshness) Line(at time.Time, when string) string {
	return fmt.Sprintf("%s.%s.%s: %s (%s before %s)", QuoteIdent(f.Schema), QuoteIdent(f.Table), QuoteIdent(f.Column),
		f.Newest.UTC().Format("2006-01-02 15:04:05 UTC"), HumanDuration(at.Sub(f.Newest)), when)
}
