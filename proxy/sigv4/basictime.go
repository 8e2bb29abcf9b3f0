package sigv4

import "time"

// parseBasic parses an ISO 8601 basic date-time, "20060102T150405Z", as
// time.Parse(iso8601Basic, s) does, and also refuses strings of any other
// length. It runs on every request, where time.Parse's general layout
// machinery was a visible share of the cost of a cache hit.
func parseBasic(s string) (time.Time, bool) {
	if len(s) != len(iso8601Basic) || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	y, m, d, ok := parseYMD(s[:8])
	hh, ok1 := digits(s[9:11])
	mm, ok2 := digits(s[11:13])
	ss, ok3 := digits(s[13:15])
	if !ok || !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(m), d, hh, mm, ss, 0, time.UTC), true
}

// validYMD reports whether s is a calendar date "20060102".
func validYMD(s string) bool {
	if len(s) != len(yyyymmdd) {
		return false
	}
	_, _, _, ok := parseYMD(s)
	return ok
}

func parseYMD(s string) (y, m, d int, ok bool) {
	y, ok1 := digits(s[0:4])
	m, ok2 := digits(s[4:6])
	d, ok3 := digits(s[6:8])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(time.Month(m), y) {
		return 0, 0, 0, false
	}
	return y, m, d, true
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(m time.Month, y int) int {
	// The day before the first of the next month.
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
