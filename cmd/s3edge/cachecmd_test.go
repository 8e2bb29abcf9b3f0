package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCacheStatsPurgeMetrics: `s3edge cache stats` and `s3edge cache purge
// [--bucket] [--prefix]` against a running server, and the cache's
// Prometheus metrics, observed through X-Cache on real GETs.
func TestCacheStatsPurgeMetrics(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "s3edge.yaml")
	if err := os.WriteFile(cfgPath, []byte(`listen: 127.0.0.1:0
data_dir: `+filepath.Join(dir, "data")+`
metrics_listen: 127.0.0.1:0
upstreams:
  local: {type: embedded}
buckets:
  hs1: {upstream: local, bucket: store, prefix: a/}
  hs2: {upstream: local, bucket: store, prefix: b/, cache: {max_size: 20000}}
credentials:
  - access_key_id: admin-test
    secret_access_key: admin-test-secret-0123
    grants:
      - {bucket: hs1, actions: [read, write]}
      - {bucket: hs2, actions: [read, write]}
cache: {max_size: 64MiB, max_object_size: 16MiB, min_free_disk: 0, admission: all}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startServe(t, "--config", cfgPath)
	m := metricsRE.FindStringSubmatch(in.stderr.String())
	if m == nil {
		t.Fatalf("no metrics URL in the log:\n%s", in.stderr)
	}
	admin := strings.TrimSuffix(m[1], "/metrics")
	var res *http.Response
	c := newClient(in.url, "admin-test", "admin-test-secret-0123", captureClient{&res})
	objects := map[[2]string]string{
		{"hs1", "local_content/x/1"}: strings.Repeat("1", 5000),
		{"hs1", "local_content/x/2"}: strings.Repeat("2", 6000),
		{"hs1", "remote_content/y"}:  strings.Repeat("3", 7000),
		{"hs2", "local_content/x/1"}: strings.Repeat("4", 8000),
	}
	for k, body := range objects {
		putObject(t, c, k[0], k[1], body)
	}
	xcache := func(bucket, key string) string {
		t.Helper()
		if got := getObject(t, c, bucket, key); got != objects[[2]string{bucket, key}] {
			t.Fatalf("GET %s/%s: wrong bytes", bucket, key)
		}
		return res.Header.Get("X-Cache")
	}
	for k := range objects { // the uploads were stored as they were acknowledged
		if x := xcache(k[0], k[1]); x != "HIT" {
			t.Fatalf("GET %v after its PUT: X-Cache %s, want HIT", k, x)
		}
	}

	var st struct {
		Hits, Misses, Entries, UsedBytes int64
		Buckets                          map[string]struct{ Bytes, Entries int64 }
	}
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"cache", "stats", "--admin", admin}, &out, &errb); code != 0 {
		t.Fatalf("cache stats exited %d: %s", code, errb.String())
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("cache stats printed %q: %v", out.String(), err)
	}
	if st.Hits != 4 || st.Entries != 4 || st.UsedBytes != 26000 || st.Buckets["hs1"].Entries != 3 || st.Buckets["hs2"].Bytes != 8000 {
		t.Errorf("cache stats = %+v", st)
	}
	// A request's bytes are counted once its handler returns, which the
	// client may see after it has read the whole body: poll.
	wants := []string{
		`s3edge_cache_requests_total{result="hit"} 4`, `s3edge_cache_entries 4`, `s3edge_cache_used_bytes 26000`,
		`s3edge_cache_bucket_bytes{bucket="hs1"} 18000`, `s3edge_cache_bucket_entries{bucket="hs2"} 1`,
		`s3edge_response_body_bytes_total{bucket="hs1",source="cache"} 18000`,
		`s3edge_cache_evictions_total 0`, `s3edge_cache_fill_errors_total 0`,
	}
	var lacking []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		metrics := scrape(t, m[1])
		lacking = lacking[:0]
		for _, want := range wants {
			if !strings.Contains(metrics, want+"\n") {
				lacking = append(lacking, want)
			}
		}
		if len(lacking) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range lacking {
		t.Errorf("/metrics lacks %q", want)
	}

	out.Reset()
	if code := run(t.Context(), []string{"cache", "purge", "--admin", admin, "--bucket", "hs1", "--prefix", "local_content/"}, &out, &errb); code != 0 {
		t.Fatalf("cache purge exited %d: %s", code, errb.String())
	}
	if got := strings.TrimSpace(out.String()); got != `{"bytes":11000,"entries":2}` {
		t.Errorf("purge --bucket hs1 --prefix local_content/ printed %s", got)
	}
	for k, want := range map[[2]string]string{
		{"hs1", "local_content/x/1"}: "MISS", {"hs1", "local_content/x/2"}: "MISS",
		{"hs1", "remote_content/y"}: "HIT", {"hs2", "local_content/x/1"}: "HIT",
	} {
		if x := xcache(k[0], k[1]); x != want {
			t.Errorf("GET %v after the prefix purge: X-Cache %s, want %s", k, x, want)
		}
	}
	deadline := time.Now().Add(10 * time.Second) // the refetched two are stored again
	for !strings.Contains(scrape(t, m[1]), "s3edge_cache_entries 4\n") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	out.Reset()
	if code := run(t.Context(), []string{"cache", "purge", "--admin", admin}, &out, &errb); code != 0 {
		t.Fatalf("cache purge (all) exited %d: %s", code, errb.String())
	}
	if got := strings.TrimSpace(out.String()); got != `{"bytes":26000,"entries":4}` {
		t.Errorf("purge of everything printed %s", got)
	}
	if x := xcache("hs2", "local_content/x/1"); x != "MISS" {
		t.Errorf("GET after purging everything: X-Cache %s, want MISS", x)
	}
	if !strings.Contains(scrape(t, m[1]), `s3edge_cache_requests_total{result="miss"} 3`+"\n") {
		t.Errorf("/metrics does not count the 3 misses")
	}
	// hs2's cap (20000 bytes) holds whatever hs2 stores; hs1 keeps its own.
	xcache("hs1", "remote_content/y")
	for i := range 4 {
		key := "local_content/cap/" + strings.Repeat("x", i+1)
		objects[[2]string{"hs2", key}] = strings.Repeat("c", 9000)
		putObject(t, c, "hs2", key, objects[[2]string{"hs2", key}])
		xcache("hs2", key)
	}
	// hs1's refetch above is stored once its fill ends, which its client
	// may see after reading the body: poll.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		out.Reset()
		if code := run(t.Context(), []string{"cache", "stats", "--admin", admin}, &out, &errb); code != 0 {
			t.Fatalf("cache stats exited %d: %s", code, errb.String())
		}
		st.Buckets = nil
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if st.Buckets["hs1"].Bytes == 7000 || time.Now().After(deadline) {
			break
		}
	}
	if b := st.Buckets["hs2"]; b.Bytes > 20000 || b.Bytes == 0 {
		t.Errorf("hs2 holds %d bytes, cap 20000", b.Bytes)
	}
	if b := st.Buckets["hs1"]; b.Bytes != 7000 {
		t.Errorf("hs1 holds %d bytes, want its 7000 untouched by hs2's cap", b.Bytes)
	}
	// Purging through the wrong method changes nothing.
	if resp, err := http.Get(admin + "/cache/purge"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /cache/purge = %v, %v; want 405", resp.Status, err)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
