package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/cmd/s3edge/internal/config"
)

var admissions = map[string]cache.Admission{
	"tinylfu": cache.AdmitTinyLFU, "second-hit": cache.AdmitSecondHit, "all": cache.AdmitAll,
}

// openCache opens the disk cache the configuration describes; nil when
// cache.max_size is 0 (everything passes through).
func openCache(cfg *config.Config, log *slog.Logger) (*cache.Cache, error) {
	if cfg.Cache.MaxSize <= 0 {
		return nil, nil
	}
	limits := make(map[string]cache.BucketLimits)
	for name, b := range cfg.Buckets {
		if b.Cache.Weight > 0 || b.Cache.MaxSize > 0 {
			limits[name] = cache.BucketLimits{Weight: b.Cache.Weight, MaxBytes: int64(b.Cache.MaxSize)}
		}
	}
	dir := cmp.Or(cfg.Cache.Dir, filepath.Join(cfg.DataDir, "cache"))
	c, err := cache.Open(dir, cache.Options{
		MaxBytes:      int64(cfg.Cache.MaxSize),
		MinFreeDisk:   int64(cfg.Cache.MinFreeDisk),
		MaxObjectSize: int64(cfg.Cache.MaxObjectSize),
		SliceSize:     int64(cfg.Cache.SliceSize),
		Admission:     admissions[cfg.Cache.Admission],
		Buckets:       limits,
		FillTimeout:   cfg.Cache.FillTimeout.D(),
		MissTimeout:   cfg.Cache.MissTimeout.D(),
		Logger:        log.With("component", "cache"),
	})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	log.Info("cache open", "dir", dir, "max_size", cfg.Cache.MaxSize.String(), "entries", c.Stats().Entries)
	return c, nil
}

// cacheCollector publishes the cache's counters as Prometheus metrics,
// read at scrape time.
type cacheCollector struct {
	c     *cache.Cache
	descs map[string]*prometheus.Desc
}

func newCacheCollector(c *cache.Cache) *cacheCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("s3edge_cache_"+name, help, labels, nil)
	}
	return &cacheCollector{c: c, descs: map[string]*prometheus.Desc{
		"requests":     d("requests_total", "Cache lookups by result (hit, miss, coalesced, bypass, stale).", "result"),
		"bytes":        d("served_bytes_total", "Object bytes by source: read from the cache's files or received from the upstream.", "source"),
		"evictions":    d("evictions_total", "Entries evicted for space."),
		"fill_errors":  d("fill_errors_total", "Upstream fetches into the cache that failed."),
		"disk_errors":  d("disk_errors_total", "Cache store failures (disk full, read-only, I/O)."),
		"corrupt":      d("corrupt_total", "Stored files that failed their size or hash check (refetched, never served)."),
		"used":         d("used_bytes", "Bytes of content files on disk."),
		"entries":      d("entries", "Entries (whole objects and slices)."),
		"bucket_bytes": d("bucket_bytes", "Bytes held per virtual bucket.", "bucket"),
		"bucket_items": d("bucket_entries", "Entries held per virtual bucket.", "bucket"),
	}}
}

func (cc *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range cc.descs {
		ch <- d
	}
}

func (cc *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := cc.c.Stats()
	counter := func(name string, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(cc.descs[name], prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(name string, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(cc.descs[name], prometheus.GaugeValue, float64(v), labels...)
	}
	counter("requests", st.Hits, "hit")
	counter("requests", st.Misses, "miss")
	counter("requests", st.Coalesced, "coalesced")
	counter("requests", st.Bypass, "bypass")
	counter("requests", st.Stale, "stale")
	counter("bytes", st.BytesFromCache, "cache")
	counter("bytes", st.BytesFilled, "upstream")
	counter("evictions", st.Evictions)
	counter("fill_errors", st.FillErrors)
	counter("disk_errors", st.DiskErrors)
	counter("corrupt", st.Corrupt)
	gauge("used", st.UsedBytes)
	gauge("entries", st.Entries)
	for name, b := range st.Buckets {
		gauge("bucket_bytes", b.Bytes, name)
		gauge("bucket_items", b.Entries, name)
	}
}

// cacheAdmin serves the cache's stats and purge on the metrics listener
// (loopback by default): `s3edge cache stats|purge` call it.
func cacheAdmin(mux *http.ServeMux, c *cache.Cache) {
	mux.HandleFunc("GET /cache/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.Stats())
	})
	mux.HandleFunc("POST /cache/purge", func(w http.ResponseWriter, r *http.Request) {
		bucket, prefix := r.URL.Query().Get("bucket"), r.URL.Query().Get("prefix")
		n, bytes := c.Purge(bucket, prefix)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{"entries": int64(n), "bytes": bytes})
	})
}
