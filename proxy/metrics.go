package proxy

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus collectors. Labels carry operation
// names, status codes and bucket names: never keys, principals or secrets,
// so their cardinality stays bounded by the configuration.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytesOut *prometheus.CounterVec
	bytesIn  *prometheus.CounterVec
	// memorySpools counts uploads held in memory because the spool
	// directory could not take them.
	memorySpools prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3edge_requests_total",
			Help: "S3 requests answered, by operation and HTTP status.",
		}, []string{"op", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "s3edge_request_duration_seconds",
			Help:    "Time from request to the end of the response, by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"op"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3edge_response_body_bytes_total",
			Help: "Object bytes sent to clients, by bucket and source (cache or upstream).",
		}, []string{"bucket", "source"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3edge_upload_bytes_total",
			Help: "Verified upload bytes sent upstream, by bucket.",
		}, []string{"bucket"}),
		memorySpools: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "s3edge_upload_memory_spools_total",
			Help: "Uploads held in memory because the spool directory could not take them (disk full or read-only).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.bytesOut, m.bytesIn, m.memorySpools} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(rq *request) {
	op := rq.op
	if _, ok := handlers[op]; !ok {
		// Names of unsupported operations come from the request: keep
		// them out of label values so that cardinality stays bounded.
		op = "unsupported"
	}
	status := rq.status
	if status == 0 {
		status = 200
	}
	m.requests.WithLabelValues(op, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(op).Observe(time.Since(rq.start).Seconds())
}
