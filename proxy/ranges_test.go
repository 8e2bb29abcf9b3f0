package proxy

import (
	"testing"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	tests := []struct {
		in      string
		ok      bool
		off, n  int64
		invalid bool
	}{
		{"bytes=0-99", true, 0, 100, false},
		{"bytes=100-", true, 100, 900, false},
		{"bytes=-100", true, 900, 100, false},
		{"bytes=-2000", true, 0, 1000, false},
		{"bytes=990-2000", true, 990, 10, false},
		{"bytes=999-999", true, 999, 1, false},
		{"bytes=1000-", true, 0, 0, true},
		{"bytes=1000-1001", true, 0, 0, true},
		{"bytes=-0", true, 0, 0, true},
		{" bytes= 5 - 9 ", true, 5, 5, false},
		{"bytes=9-5", false, 0, 0, false},
		{"bytes=0-1,5-6", false, 0, 0, false},
		{"bytes=a-b", false, 0, 0, false},
		{"bytes=+1-2", false, 0, 0, false},
		{"items=0-1", false, 0, 0, false},
		{"bytes=-", false, 0, 0, false},
		{"", false, 0, 0, false},
		{"bytes=99999999999999999999-", false, 0, 0, false},
	}
	for _, tt := range tests {
		br, ok := parseRange(tt.in)
		if ok != tt.ok {
			t.Errorf("parseRange(%q) ok = %v, want %v", tt.in, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		off, n, err := br.resolve(size)
		if tt.invalid {
			if err != errInvalidRange {
				t.Errorf("resolve(%q) error = %v, want InvalidRange", tt.in, err)
			}
			continue
		}
		if err != nil || off != tt.off || n != tt.n {
			t.Errorf("resolve(%q) = %d, %d, %v; want %d, %d", tt.in, off, n, err, tt.off, tt.n)
		}
		if again, ok := parseRange(br.String()); !ok || again != br {
			t.Errorf("parseRange(%q.String()=%q) = %+v, %v; want round trip", tt.in, br.String(), again, ok)
		}
	}
	if _, _, err := (byteRange{first: -1, suffix: 5}).resolve(0); err != errInvalidRange {
		t.Errorf("suffix range of an empty object: %v, want InvalidRange", err)
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-99", "bytes=-5", "bytes=5-", "bytes=1-0", "bytes=0-1,2-3", "bytes=--1"} {
		f.Add(s, int64(1000))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				return
			}
		}
		br, ok := parseRange(v)
		if !ok {
			return
		}
		off, n, err := br.resolve(size)
		if err != nil {
			return
		}
		if off < 0 || n <= 0 || off+n > size {
			t.Fatalf("parseRange(%q).resolve(%d) = %d, %d: outside the object", v, size, off, n)
		}
		if again, ok := parseRange(br.String()); !ok || again != br {
			t.Fatalf("round trip of %q failed: %+v vs %+v", v, again, br)
		}
	})
}
