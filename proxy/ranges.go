package proxy

import (
	"fmt"
	"strconv"
	"strings"
)

// byteRange is one Range of a request. S3 serves a single range; a header it
// cannot use (bad syntax, several ranges) is ignored and the whole object is
// served, as HTTP allows.
type byteRange struct {
	// first and last are inclusive offsets; last < 0 means "to the end".
	// suffix > 0 means "the last suffix bytes" and the others are unused.
	first, last, suffix int64
}

// parseRange parses a Range header value. ok is false when there is no
// usable range.
func parseRange(v string) (br byteRange, ok bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return br, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return br, false
	}
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 0 || !digits(b) {
			return br, false
		}
		// bytes=-0 is valid syntax and unsatisfiable; keep it as suffix 0
		// with first = -1 to tell it apart from no suffix.
		return byteRange{first: -1, last: -1, suffix: n}, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 || !digits(a) {
		return br, false
	}
	if b == "" {
		return byteRange{first: first, last: -1}, true
	}
	last, err := strconv.ParseInt(b, 10, 64)
	if err != nil || last < first || !digits(b) {
		return br, false
	}
	return byteRange{first: first, last: last}, true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// resolve returns the offset and length the range selects in an object of
// size bytes, or errInvalidRange when it selects nothing.
func (br byteRange) resolve(size int64) (off, n int64, err error) {
	if br.first < 0 { // suffix
		if br.suffix == 0 || size == 0 {
			return 0, 0, errInvalidRange
		}
		n = min(br.suffix, size)
		return size - n, n, nil
	}
	if br.first >= size {
		return 0, 0, errInvalidRange
	}
	last := br.last
	if last < 0 || last >= size {
		last = size - 1
	}
	return br.first, last - br.first + 1, nil
}

// String formats the range for a Range header.
func (br byteRange) String() string {
	switch {
	case br.first < 0:
		return fmt.Sprintf("bytes=-%d", br.suffix)
	case br.last < 0:
		return fmt.Sprintf("bytes=%d-", br.first)
	}
	return fmt.Sprintf("bytes=%d-%d", br.first, br.last)
}

// contentRange formats a Content-Range; a size below 0 is unknown ("*").
func contentRange(off, n, size int64) string {
	if size < 0 {
		return fmt.Sprintf("bytes %d-%d/*", off, off+n-1)
	}
	return fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size)
}
