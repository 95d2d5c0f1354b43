package settlement

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Date is a civil date in Beijing time (no clock, no zone), the unit of the holiday calendar.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf is the Beijing date of instant t.
func DateOf(t time.Time) Date {
	b := t.In(Beijing)
	return Date{Year: b.Year(), Month: b.Month(), Day: b.Day()}
}

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.ParseInLocation("2006-01-02", s, Beijing)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// Time is 00:00 Beijing time on d, plus hour hours.
func (d Date) Time(hour int) time.Time {
	return time.Date(d.Year, d.Month, d.Day, hour, 0, 0, 0, Beijing).UTC()
}

// AddDays moves d by n days (normalising across months).
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, Beijing))
}

// Weekday of d.
func (d Date) Weekday() time.Weekday {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, Beijing).Weekday()
}

// Before reports whether d is earlier than e.
func (d Date) Before(e Date) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// Calendar says which Beijing dates are working days: Monday to Friday, minus listed holidays, plus listed
// make-up working days (调休, weekends the State Council declares working days around long holidays). Bills are
// only produced on working days (docs/koogallery.md, "Settlement rules": "非工作日自动顺延至下一个工作日").
type Calendar struct {
	holidays map[Date]string
	workdays map[Date]string
}

// maxHolidayRun bounds the search for the next working day; the longest Chinese public-holiday run with its
// weekends is 9 days, so a calendar that closes more than this many days in a row is a mistake in the file.
const maxHolidayRun = 31

// WeekendsOnly is the calendar without any holiday file: every weekday is a working day.
func WeekendsOnly() *Calendar {
	return &Calendar{holidays: map[Date]string{}, workdays: map[Date]string{}}
}

// ParseCalendar reads a holiday calendar file: one Beijing date per line,
//
//	# comment
//	2026-10-01 holiday National Day
//	2026-10-02            (the keyword defaults to holiday)
//	2026-09-27 workday    make-up working day (a Sunday)
//
// Anything after the keyword is a note shown to operators. A line the parser does not understand is an error
// naming the line, so a typo never silently moves a bill date.
func ParseCalendar(r io.Reader) (*Calendar, error) {
	c := WeekendsOnly()
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		d, err := ParseDate(fields[0])
		if err != nil {
			return nil, fmt.Errorf("holiday calendar line %d: %w", n, err)
		}
		kind, note := "holiday", ""
		if len(fields) > 1 {
			kind = strings.ToLower(fields[1])
			note = strings.Join(fields[2:], " ")
		}
		switch kind {
		case "holiday":
			c.holidays[d] = note
			delete(c.workdays, d)
		case "workday":
			c.workdays[d] = note
			delete(c.holidays, d)
		default:
			return nil, fmt.Errorf("holiday calendar line %d: %q must be followed by holiday or workday, not %q", n, fields[0], fields[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read holiday calendar: %w", err)
	}
	return c, nil
}

// LoadCalendar reads the calendar file at path; an empty path is WeekendsOnly.
func LoadCalendar(path string) (*Calendar, error) {
	if path == "" {
		return WeekendsOnly(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open holiday calendar: %w", err)
	}
	defer f.Close()
	c, err := ParseCalendar(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// IsWorkingDay reports whether bills may be produced on d.
func (c *Calendar) IsWorkingDay(d Date) bool {
	if _, ok := c.workdays[d]; ok {
		return true
	}
	if _, ok := c.holidays[d]; ok {
		return false
	}
	wd := d.Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// NextWorkingDay is the first working day on or after d.
func (c *Calendar) NextWorkingDay(d Date) (Date, error) {
	for i := 0; i <= maxHolidayRun; i++ {
		if c.IsWorkingDay(d.AddDays(i)) {
			return d.AddDays(i), nil
		}
	}
	return Date{}, fmt.Errorf("the holiday calendar has no working day within %d days of %s", maxHolidayRun, d)
}

// BillDate is the day the bill for period p is produced: the first working day on or after day `day` of the
// month after p (for joint-operation products the marketplace bills on the 3rd, for general products on the 7th).
func (c *Calendar) BillDate(p Period, day int) (Date, error) {
	if day < 1 || day > 28 {
		return Date{}, fmt.Errorf("bill day %d must be from 1 to 28", day)
	}
	n := p.Next()
	return c.NextWorkingDay(Date{Year: n.Year, Month: n.Month, Day: day})
}

// Len is the number of dates the calendar lists (holidays and make-up working days).
func (c *Calendar) Len() int { return len(c.holidays) + len(c.workdays) }
