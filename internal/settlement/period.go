package settlement

import (
	"fmt"
	"time"
)

// Beijing is the marketplace's business time zone (Asia/Shanghai). China has kept UTC+8 without daylight saving
// since 1991, so a fixed zone gives the same answers as the tz database without depending on tzdata being
// installed; the Temporal Schedule names the zone "Asia/Shanghai" for the server's own calendar.
var Beijing = time.FixedZone("Asia/Shanghai", 8*60*60)

// TimeZoneName is the IANA name of Beijing, for the Temporal Schedule.
const TimeZoneName = "Asia/Shanghai"

// Period is one natural month of Beijing time, the unit the marketplace settles (账期, e.g. 202601).
type Period struct {
	Year  int
	Month time.Month
}

// ParsePeriod reads "2026-10" (also accepts the marketplace's "202610").
func ParsePeriod(s string) (Period, error) {
	var p Period
	var y, m int
	switch {
	case len(s) == 7 && s[4] == '-':
		if _, err := fmt.Sscanf(s, "%4d-%2d", &y, &m); err != nil {
			return p, fmt.Errorf("period %q: want YYYY-MM, like 2026-10", s)
		}
	case len(s) == 6:
		if _, err := fmt.Sscanf(s, "%4d%2d", &y, &m); err != nil {
			return p, fmt.Errorf("period %q: want YYYY-MM, like 2026-10", s)
		}
	default:
		return p, fmt.Errorf("period %q: want YYYY-MM, like 2026-10", s)
	}
	if y < 2000 || y > 9999 || m < 1 || m > 12 {
		return p, fmt.Errorf("period %q: month must be 01 to 12 and the year from 2000", s)
	}
	return Period{Year: y, Month: time.Month(m)}, nil
}

// MustPeriod is ParsePeriod for constants in tests and examples.
func MustPeriod(s string) Period {
	p, err := ParsePeriod(s)
	if err != nil {
		panic(err)
	}
	return p
}

// PeriodOf is the period holding instant t.
func PeriodOf(t time.Time) Period {
	b := t.In(Beijing)
	return Period{Year: b.Year(), Month: b.Month()}
}

func (p Period) String() string { return fmt.Sprintf("%04d-%02d", p.Year, int(p.Month)) }

// IsZero reports whether p was never set.
func (p Period) IsZero() bool { return p.Year == 0 }

// Start is the first instant of the period: 00:00 Beijing time on the 1st.
func (p Period) Start() time.Time {
	return time.Date(p.Year, p.Month, 1, 0, 0, 0, 0, Beijing).UTC()
}

// End is the first instant after the period (exclusive bound): 00:00 Beijing time on the 1st of the next month.
func (p Period) End() time.Time { return p.Next().Start() }

// Next is the following month.
func (p Period) Next() Period {
	if p.Month == time.December {
		return Period{Year: p.Year + 1, Month: time.January}
	}
	return Period{Year: p.Year, Month: p.Month + 1}
}

// Prev is the preceding month.
func (p Period) Prev() Period {
	if p.Month == time.January {
		return Period{Year: p.Year - 1, Month: time.December}
	}
	return Period{Year: p.Year, Month: p.Month - 1}
}

// Before reports whether p is an earlier month than q.
func (p Period) Before(q Period) bool {
	return p.Year < q.Year || (p.Year == q.Year && p.Month < q.Month)
}
