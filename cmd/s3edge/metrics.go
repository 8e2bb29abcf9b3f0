package main

import (
	"fmt"
	"github.com/s3edge/s3edge/cache"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry returns a Prometheus registry of s3edge's own (not the global
// DefaultRegisterer) with Go runtime, process and build metrics, plus
// s3edge_build_info; the proxy and cache add theirs.
func newRegistry() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "s3edge_build_info",
		Help:        "Always 1; the version label describes the running build.",
		ConstLabels: prometheus.Labels{"version": versionString()},
	})
	info.Set(1)
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
		info,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return reg, nil
}

// metricsHandler serves /metrics from reg, and the cache's admin endpoints
// when there is a cache.
func metricsHandler(reg *prometheus.Registry, log *slog.Logger, c *cache.Cache) http.Handler {
	mux := http.NewServeMux()
	if c != nil {
		cacheAdmin(mux, c)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Registry:          reg,
		EnableOpenMetrics: true,
	}))
	return mux
}
