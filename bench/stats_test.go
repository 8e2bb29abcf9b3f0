package bench

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := make([]time.Duration, 10)
	for i := range ten {
		ten[i] = time.Duration(i+1) * time.Millisecond // 1..10 ms
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Microsecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", []time.Duration{7}, 50, 7},
		{"single p99", []time.Duration{7}, 99, 7},
		{"ten p50", ten, 50, 5 * time.Millisecond},  // nearest rank ceil(5) = 5th
		{"ten p90", ten, 90, 9 * time.Millisecond},  // 9th
		{"ten p99", ten, 99, 10 * time.Millisecond}, // ceil(9.9) = 10th
		{"ten p100", ten, 100, 10 * time.Millisecond},
		{"ten p1", ten, 1, 1 * time.Millisecond}, // ceil(0.1) = 1st
		{"hundred p50", hundred, 50, 50 * time.Microsecond},
		{"hundred p99", hundred, 99, 99 * time.Microsecond},
		{"hundred p99.9", hundred, 99.9, 100 * time.Microsecond},
		{"tiny p clamps to the minimum", hundred, 0.0001, 1 * time.Microsecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestSortedCopyLeavesInput(t *testing.T) {
	in := []time.Duration{3, 1, 2}
	got := sortedCopy(in)
	if got[0] != 1 || got[2] != 3 {
		t.Errorf("sortedCopy = %v, want ascending", got)
	}
	if in[0] != 3 {
		t.Errorf("input modified: %v", in)
	}
}

func TestCDFPoints(t *testing.T) {
	s := make([]time.Duration, 1000)
	for i := range s {
		s[i] = time.Duration(i+1) * time.Millisecond
	}
	pts := cdfPoints(s, 11)
	if len(pts) != 11 {
		t.Fatalf("got %d points, want 11", len(pts))
	}
	if pts[0] != [2]float64{1, 0.001} || pts[10] != [2]float64{1000, 1} {
		t.Errorf("ends = %v, %v; want the minimum and the maximum", pts[0], pts[10])
	}
	for i := 1; i < len(pts); i++ {
		if pts[i][0] < pts[i-1][0] || pts[i][1] <= pts[i-1][1] {
			t.Fatalf("points not increasing at %d: %v", i, pts)
		}
	}
	if got := cdfPoints(s[:3], 400); len(got) != 3 {
		t.Errorf("3 samples gave %d points, want 3", len(got))
	}
	if cdfPoints(nil, 10) != nil {
		t.Error("no samples should give no points")
	}
}

func TestParseXCache(t *testing.T) {
	for in, want := range map[string]cacheStatus{
		"": cacheNone, "HIT": cacheHit, "hit": cacheHit, " MISS ": cacheMiss, "COALESCED": cacheCoalesced,
		"BYPASS": cacheBypass, "EXPIRED": cacheMiss, "UPDATING": cacheCoalesced, "weird": cacheOther,
	} {
		if got := parseXCache(in); got != want {
			t.Errorf("parseXCache(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestSizeName(t *testing.T) {
	for n, want := range map[int64]string{4 << 10: "4KiB", 1 << 20: "1MiB", 200 << 20: "200MiB", 1536 << 10: "1.5MiB", 1 << 30: "1GiB", 100: "100B"} {
		if got := sizeName(n); got != want {
			t.Errorf("sizeName(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestNginxZone(t *testing.T) {
	// Measured: a zone of 16k holds 63 entries, 64k 447, 256k 1983.
	for z, want := range map[int64]int64{16 << 10: 63, 64 << 10: 447, 256 << 10: 1983, 21 << 10: 95} {
		if got := nginxZoneEntries(z); got != want {
			t.Errorf("nginxZoneEntries(%d) = %d, want %d", z, got, want)
		}
	}
	for _, entries := range []int64{100, 500, 2000} {
		got := nginxZoneEntries(nginxZoneBytes(entries))
		if got < entries-32 || got > entries {
			t.Errorf("zone for %d entries holds %d", entries, got)
		}
	}
}

func TestLogErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "error.log")
	os.WriteFile(f, []byte("2026/01/02 03:04:05 [warn] 1#1: a warning\n"+
		"2026/01/02 03:04:06 [alert] 12#12: could not allocate node in cache keys zone \"s3\"\n"+
		"2026/01/02 03:04:07 [error] 12#12: *3 upstream timed out\n"), 0o644)
	n, last := logErrors(f)
	if n != 2 || last != "[error] 12#12: *3 upstream timed out" {
		t.Errorf("logErrors = %d, %q", n, last)
	}
	if n, _ := logErrors(filepath.Join(t.TempDir(), "none")); n != 0 {
		t.Errorf("missing file: %d errors", n)
	}
}
