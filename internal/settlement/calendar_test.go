package settlement

import (
	"strings"
	"testing"
	"time"
)

func TestPeriod(t *testing.T) {
	p, err := ParsePeriod("2026-10")
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != "2026-10" || p.Next().String() != "2026-11" || p.Prev().String() != "2026-09" {
		t.Fatalf("period arithmetic: %s %s %s", p, p.Next(), p.Prev())
	}
	if MustPeriod("2026-12").Next().String() != "2027-01" || MustPeriod("2027-01").Prev().String() != "2026-12" {
		t.Fatal("year boundary")
	}
	// Beijing midnight on the 1st, stored in UTC.
	if got := p.Start().Format(time.RFC3339); got != "2026-09-30T16:00:00Z" {
		t.Fatalf("start %s", got)
	}
	if got := p.End().Format(time.RFC3339); got != "2026-10-31T16:00:00Z" {
		t.Fatalf("end %s", got)
	}
	if PeriodOf(time.Date(2026, 10, 31, 16, 0, 0, 0, time.UTC)).String() != "2026-11" {
		t.Fatal("PeriodOf must use Beijing time")
	}
	if q, err := ParsePeriod("202610"); err != nil || q != p {
		t.Fatalf("marketplace form: %v %v", q, err)
	}
	for _, bad := range []string{"", "2026-13", "2026-1", "26-10", "2026/10", "1999-12", "abcd-ef"} {
		if _, err := ParsePeriod(bad); err == nil {
			t.Errorf("ParsePeriod(%q) accepted", bad)
		}
	}
}

const calendar2026 = `
# National Day 2026 (illustrative) and its make-up working day
2026-10-01 holiday 国庆节
2026-10-02
2026-10-05 holiday
2026-10-06 holiday
2026-10-07 holiday
2026-10-08 holiday
2026-10-10 workday make-up working Saturday
`

func TestBillDate(t *testing.T) {
	cal, err := ParseCalendar(strings.NewReader(calendar2026))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		period string
		day    int
		want   string
	}{
		{"2026-09", 3, "2026-10-09"}, // the 3rd is a Saturday inside the National Day holiday: first working day is Fri 9th
		{"2026-09", 7, "2026-10-09"},
		{"2026-10", 3, "2026-11-03"}, // a Tuesday
		{"2026-01", 7, "2026-02-09"}, // Sat 7th → Mon 9th
		{"2026-01", 3, "2026-02-03"},
		{"2026-07", 7, "2026-08-07"},
	}
	for _, c := range cases {
		got, err := cal.BillDate(MustPeriod(c.period), c.day)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != c.want {
			t.Errorf("bill date of %s (day %d) = %s (%s), want %s", c.period, c.day, got, got.Weekday(), c.want)
		}
	}
	// A make-up working Saturday is a working day.
	if !cal.IsWorkingDay(Date{2026, 10, 10}) {
		t.Error("2026-10-10 is listed as a workday")
	}
	// Without a calendar only weekends move the date.
	if got, _ := WeekendsOnly().BillDate(MustPeriod("2026-09"), 3); got.String() != "2026-10-05" {
		t.Errorf("weekends only: %s", got)
	}
}

func TestCalendarErrorsNameTheLine(t *testing.T) {
	for _, bad := range []string{"2026-10-01 holliday", "2026-13-01", "tomorrow"} {
		_, err := ParseCalendar(strings.NewReader("# ok\n" + bad + "\n"))
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%q: error %v does not name line 2", bad, err)
		}
	}
	var all strings.Builder
	for i := 0; i < 60; i++ {
		all.WriteString(Date{2027, 1, 1}.AddDays(i).String() + "\n")
	}
	cal, err := ParseCalendar(strings.NewReader(all.String()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cal.BillDate(MustPeriod("2026-12"), 3); err == nil {
		t.Error("a calendar without working days must be an error, not a silent date")
	}
}
