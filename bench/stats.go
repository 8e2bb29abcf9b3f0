package bench

import (
	"math"
	"slices"
	"time"
)

// Percentiles are exact: the load generator keeps every latency in a slice
// preallocated for the bounded request count, and percentile sorts a copy
// and takes the nearest rank. With at most a few hundred thousand samples
// per run, sorting costs milliseconds, and there is no bucketing error to
// explain (an HDR histogram would bound it at ~1%, for memory we do not
// need to save).

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted: the smallest value such that at least p% of the samples are ≤ it.
// It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// sortedCopy returns the values sorted ascending, leaving d untouched.
func sortedCopy(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// ms converts a duration to float milliseconds, the report's unit.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// cdfPoints returns up to n (latency ms, fraction ≤) points of the
// empirical CDF of sorted, evenly spaced in rank, always including the
// minimum and the maximum: enough to draw a smooth curve without writing
// every sample into the chart.
func cdfPoints(sorted []time.Duration, n int) [][2]float64 {
	if len(sorted) == 0 || n < 2 {
		return nil
	}
	n = min(n, len(sorted))
	pts := make([][2]float64, 0, n)
	for i := range n {
		idx := i * (len(sorted) - 1) / (n - 1)
		pts = append(pts, [2]float64{ms(sorted[idx]), float64(idx+1) / float64(len(sorted))})
	}
	return pts
}
