package koogallery

import (
	"fmt"
	"time"
)

// TimeLayout is the marketplace's yyyyMMddHHmmss time format; its times are UTC.
const TimeLayout = "20060102150405"

// ParseTime reads a marketplace time such as refreshInstance's expireTime: 14 digits (yyyyMMddHHmmss) as the
// field table says, or 17 digits with milliseconds as its example shows (docs/koogallery.md, "Time formats").
// Both are UTC.
func ParseTime(s string) (time.Time, error) {
	if !allDigits(s) || (len(s) != 14 && len(s) != 17) {
		return time.Time{}, fmt.Errorf("%q is not a UTC time as yyyyMMddHHmmss (14 digits) or yyyyMMddHHmmssSSS (17 digits)", truncate(s, 40))
	}
	layout, text := TimeLayout, s
	if len(s) == 17 {
		layout, text = TimeLayout+".000", s[:14]+"."+s[14:]
	}
	t, err := time.ParseInLocation(layout, text, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a valid calendar time: %v", s, err)
	}
	return t, nil
}

// FormatTime writes t as the marketplace's 14-digit UTC time.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }
