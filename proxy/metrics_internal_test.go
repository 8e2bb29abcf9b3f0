package proxy

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The children a hit updates are the vector's own: what they count is what
// the vector exports, under the same labels.
func TestChildrenAreTheVectorsOwn(t *testing.T) {
	counters := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "c"}, []string{"bucket", "source"})
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h_seconds", Help: "h", Buckets: []float64{1}}, []string{"op"})
	cc := children[prometheus.Counter]{with: counters.WithLabelValues}
	hc := children[prometheus.Observer]{with: hist.WithLabelValues}

	cc.get("media", "cache").Add(2)
	cc.get("media", "cache").Add(3)
	cc.get("media", "upstream").Inc()
	hc.get("GetObject", "").Observe(0.5)
	hc.get("GetObject", "").Observe(1.5)

	if got := testutil.ToFloat64(counters.WithLabelValues("media", "cache")); got != 5 {
		t.Errorf("media/cache = %v, want 5", got)
	}
	if got := testutil.ToFloat64(counters.WithLabelValues("media", "upstream")); got != 1 {
		t.Errorf("media/upstream = %v, want 1", got)
	}
	want := `
# HELP h_seconds h
# TYPE h_seconds histogram
h_seconds_bucket{op="GetObject",le="1"} 1
h_seconds_bucket{op="GetObject",le="+Inf"} 2
h_seconds_sum{op="GetObject"} 2
h_seconds_count{op="GetObject"} 2
`
	if err := testutil.CollectAndCompare(hist, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
