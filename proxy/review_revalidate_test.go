package proxy_test

// Adversarial review of cache.mode revalidate, stale_if_error and the
// upstream-down behaviour, through real parts: the gofakes3 upstream with
// injected faults, s3edge on a real listener (hit path in front of
// net/http), and the disk cache.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/proxy"
	"github.com/s3edge/s3edge/upstream"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// reviewCacheOptions are cachedEnv's options, plus a miss timeout.
func reviewCacheOptions(missTimeout time.Duration) *cache.Options {
	return &cache.Options{MaxBytes: 256 << 20, SliceSize: 1 << 20, MissTimeout: missTimeout}
}

func reviewEnv(t *testing.T, rule policy.CacheRule, missTimeout time.Duration) *env {
	return newEnv(t, envOptions{rule: rule, cache: reviewCacheOptions(missTimeout)})
}

// reviewDo sends a signed request for key with a bounded wait and returns
// the answer, its body and how long it took.
func (e *env) reviewDo(method, key string, hdr map[string]string) (*http.Response, []byte, time.Duration) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 60*time.Second)
	defer cancel()
	r := e.signed(method, "/media/"+key, nil, fullKey, fullSecret, time.Now(), "", func(r *http.Request) {
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
	}).WithContext(ctx)
	start := time.Now()
	res, err := e.httpClient().Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, key, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: body: %v", method, key, err)
	}
	return res, b, time.Since(start)
}

func (e *env) stat(key string) (cache.Meta, bool) {
	return e.cache.Stat(cache.Key{Bucket: "media", Object: key})
}

// expired waits, bounded, until the stored entry of key is older than ttl
// (with a margin), measured from its StoredAt.
func (e *env) expired(key string, ttl time.Duration) cache.Meta {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, ok := e.stat(key)
		if !ok {
			e.t.Fatalf("%s is not stored", key)
		}
		if time.Since(m.StoredAt) > ttl+50*time.Millisecond {
			return m
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not expire", key)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// headINM records the If-None-Match of every upstream HEAD.
type headINM struct {
	mu  sync.Mutex
	inm []string
}

func (h *headINM) observe(e *env) {
	e.up.Observe(func(op string, r *http.Request) {
		if op == "HeadObject" {
			h.mu.Lock()
			h.inm = append(h.inm, r.Header.Get("If-None-Match"))
			h.mu.Unlock()
		}
	})
}

func (h *headINM) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.inm...)
}

// TestReviewRevalGetNotModified: after the TTL a GET revalidates once with
// a conditional HEAD carrying the stored ETag; the unchanged entry is kept,
// answered as a HIT, its age renewed (the next GET asks nothing), and the
// expired GET was handed from the hit path to net/http while the fresh one
// was answered on the hit path.
func TestReviewRevalGetNotModified(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl}, 0)
	var inm headINM
	inm.observe(e)
	data := randomBytes(48<<10, 101) // above smallBody: sendfile
	e.stored("nm", data)
	m0 := e.expired("nm", ttl)
	gets := e.up.Requests("GetObject")
	hand0 := e.counter("s3edge_hit_path_handoffs_total", nil)

	e.mustGet("nm", data, "HIT")
	if got := inm.get(); len(got) != 1 || got[0] != m0.ETag {
		t.Errorf("upstream HEADs' If-None-Match = %q, want one carrying the stored ETag %q", got, m0.ETag)
	}
	if n := e.up.Requests("GetObject"); n != gets {
		t.Errorf("upstream GETs %d → %d: an unchanged entry was fetched again", gets, n)
	}
	m1, ok := e.stat("nm")
	if !ok || !m1.StoredAt.After(m0.StoredAt) || m1.ETag != m0.ETag {
		t.Fatalf("after a 304: stored %v, StoredAt %v → %v; want the entry kept and its age renewed", ok, m0.StoredAt, m1.StoredAt)
	}
	if h := e.counter("s3edge_hit_path_handoffs_total", nil); h <= hand0 {
		t.Errorf("the expired GET was not handed from the hit path to net/http (handoffs %v → %v)", hand0, h)
	}

	hits0 := e.counter("s3edge_hit_path_requests_total", nil)
	e.mustGet("nm", data, "HIT")
	if got := inm.get(); len(got) != 1 {
		t.Errorf("a GET within the TTL after a revalidation asked the upstream again (%d HEADs)", len(got))
	}
	if !settle(func() bool { return e.counter("s3edge_hit_path_requests_total", nil) > hits0 }) {
		t.Error("the fresh GET after a revalidation was not answered on the hit path")
	}
}

// TestReviewRevalTTLZero: ttl 0 checks on every GET, and keeps serving the
// stored bytes.
func TestReviewRevalTTLZero(t *testing.T) {
	e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate}, 0)
	data := randomBytes(10<<10, 102)
	e.stored("z", data)
	h0 := e.up.Requests("HeadObject")
	for range 3 {
		e.mustGet("z", data, "HIT")
	}
	if n := e.up.Requests("HeadObject") - h0; n != 3 {
		t.Errorf("ttl 0: %d upstream HEADs for 3 GETs, want 3", n)
	}
	if n := e.up.Requests("GetObject"); n != 1 {
		t.Errorf("ttl 0: %d upstream GETs, want 1", n)
	}
}

// TestReviewRevalGetChanged: an upstream 200 with a new ETag replaces the
// entry; no client is served the old bytes once the upstream answered with
// new ones, concurrent clients included.
func TestReviewRevalGetChanged(t *testing.T) {
	const ttl = 1 * time.Second
	e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl, StaleIfError: true}, 0)
	v1, v2 := randomBytes(200<<10, 103), randomBytes(210<<10, 104)
	e.stored("ch", v1)
	e.up.PutObject(upstreamBucket, "hs1/ch", v2)
	e.expired("ch", ttl)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for range 16 {
		wg.Go(func() {
			res, b, _ := e.reviewDo("GET", "ch", nil)
			if res.StatusCode != 200 || !bytes.Equal(b, v2) {
				old := bytes.Equal(b, v1)
				errs <- fmt.Sprintf("GET after the upstream changed = %d, %d bytes (old version: %v, X-Cache %s); want the new version",
					res.StatusCode, len(b), old, res.Header.Get("X-Cache"))
			}
		})
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	e.settled("ch", len(v2))
	e.mustGet("ch", v2, "HIT")
	if m, _ := e.stat("ch"); m.Size != int64(len(v2)) {
		t.Errorf("stored size %d, want the new version's %d", m.Size, len(v2))
	}
}

// TestReviewRevalGetNotFound: a 404 on revalidation removes the entry and
// the client gets NoSuchKey, with or without stale_if_error.
func TestReviewRevalGetNotFound(t *testing.T) {
	for _, sie := range []bool{false, true} {
		t.Run(fmt.Sprintf("stale_if_error=%v", sie), func(t *testing.T) {
			const ttl = 1 * time.Second
			e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl, StaleIfError: sie}, 0)
			data := randomBytes(10<<10, 105)
			e.stored("gone", data)
			if err := e.up.Client().Delete(t.Context(), upstreamBucket, "hs1/gone"); err != nil {
				t.Fatal(err)
			}
			e.expired("gone", ttl)
			res, b, _ := e.reviewDo("GET", "gone", nil)
			if res.StatusCode != 404 || bytes.Equal(b, data) {
				t.Errorf("GET after the upstream deleted the object = %d (X-Cache %q); want 404", res.StatusCode, res.Header.Get("X-Cache"))
			}
			if _, ok := e.stat("gone"); ok {
				t.Error("the entry is still stored after a 404 on revalidation")
			}
		})
	}
}

// TestReviewRevalCoalesced: 32 clients on one expired entry cause one
// revalidation.
func TestReviewRevalCoalesced(t *testing.T) {
	const ttl = 3 * time.Second
	e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl}, 0)
	data := randomBytes(10<<10, 106)
	e.stored("co", data)
	e.up.SetShape(upstreamtest.Shape{FirstByte: 400 * time.Millisecond})
	e.expired("co", ttl)
	h0 := e.up.Requests("HeadObject")
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 32)
	for range 32 {
		wg.Go(func() {
			<-start
			res, b, _ := e.reviewDo("GET", "co", nil)
			if res.StatusCode != 200 || !bytes.Equal(b, data) || res.Header.Get("X-Cache") != "HIT" {
				errs <- fmt.Sprintf("GET = %d, %d bytes, X-Cache %q", res.StatusCode, len(b), res.Header.Get("X-Cache"))
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	if n := e.up.Requests("HeadObject") - h0; n != 1 {
		t.Errorf("32 GETs on an expired entry caused %d upstream HEADs, want 1", n)
	}
	if n := e.up.Requests("GetObject"); n != 1 {
		t.Errorf("upstream GETs = %d, want 1", n)
	}
}

// reviewFaults are ways the upstream fails a revalidation.
var reviewFaults = []struct {
	name  string
	apply func(e *env)
}{
	{"500", func(e *env) {
		e.up.SetShape(upstreamtest.Shape{Fail: func(*http.Request) upstreamtest.Fault { return upstreamtest.Status(500) }})
	}},
	{"503", func(e *env) {
		e.up.SetShape(upstreamtest.Shape{Fail: func(*http.Request) upstreamtest.Fault { return upstreamtest.Status(503) }})
	}},
	{"reset", func(e *env) {
		e.up.SetShape(upstreamtest.Shape{Fail: func(*http.Request) upstreamtest.Fault { return upstreamtest.ResetBeforeHeaders() }})
	}},
	{"refused", func(e *env) { e.up.Close() }},
}

// TestReviewRevalStaleIfError: a failed revalidation (5xx, reset, refused)
// serves the stored copy as STALE with stale_if_error, keeps the entry, and
// otherwise answers 503 with Retry-After, fast.
func TestReviewRevalStaleIfError(t *testing.T) {
	for _, f := range reviewFaults {
		for _, sie := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/stale_if_error=%v", f.name, sie), func(t *testing.T) {
				const ttl = 1 * time.Second
				e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl, StaleIfError: sie}, 0)
				data := randomBytes(40<<10, 107)
				e.stored("st", data)
				f.apply(e)
				e.expired("st", ttl)
				for range 2 {
					res, b, d := e.reviewDo("GET", "st", nil)
					switch {
					case sie && (res.StatusCode != 200 || !bytes.Equal(b, data) || res.Header.Get("X-Cache") != "STALE"):
						t.Errorf("stale_if_error, upstream %s: GET = %d, %d bytes, X-Cache %q; want 200, the stored bytes, STALE",
							f.name, res.StatusCode, len(b), res.Header.Get("X-Cache"))
					case !sie && (res.StatusCode != 503 || res.Header.Get("Retry-After") == ""):
						t.Errorf("upstream %s: GET = %d, Retry-After %q; want 503 with Retry-After",
							f.name, res.StatusCode, res.Header.Get("Retry-After"))
					}
					if d > 10*time.Second {
						t.Errorf("upstream %s: GET took %v", f.name, d)
					}
				}
				if _, ok := e.stat("st"); !ok {
					t.Error("a failed revalidation dropped the entry")
				}
			})
		}
	}
}

// TestReviewRevalForbiddenIsNotStale: a 403 is the upstream's answer, not
// a failure to ask it (RFC 5861 §4: stale-if-error covers 500, 502, 503,
// 504 and an unreachable origin; the README: "when the upstream cannot be
// asked"). AWS answers 403 for a deleted key when s3:ListBucket is not
// granted, so serving stale on 403 keeps serving deleted objects. The
// client gets the 403.
func TestReviewRevalForbiddenIsNotStale(t *testing.T) {
	const ttl = 1 * time.Second
	e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl, StaleIfError: true}, 0)
	data := randomBytes(10<<10, 108)
	e.stored("fb", data)
	e.up.SetShape(upstreamtest.Shape{Fail: func(*http.Request) upstreamtest.Fault { return upstreamtest.Status(403) }})
	e.expired("fb", ttl)
	res, b, _ := e.reviewDo("GET", "fb", nil)
	if res.StatusCode != 403 || bytes.Equal(b, data) {
		t.Errorf("revalidation answered 403: GET = %d, X-Cache %q, stored bytes served: %v; want the 403, not the stale copy",
			res.StatusCode, res.Header.Get("X-Cache"), bytes.Equal(b, data))
	}
}

// TestReviewRevalSilentUpstream: a provider that accepts and never answers
// must not hold a request on an expired entry for longer than the miss
// timeout: STALE with stale_if_error, else 503 with Retry-After.
func TestReviewRevalSilentUpstream(t *testing.T) {
	for _, sie := range []bool{true, false} {
		t.Run(fmt.Sprintf("stale_if_error=%v", sie), func(t *testing.T) {
			const ttl = 1 * time.Second
			e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl, StaleIfError: sie}, 300*time.Millisecond)
			data := randomBytes(10<<10, 109)
			e.stored("si", data)
			e.up.SetShape(upstreamtest.Shape{FirstByte: 10 * time.Second}) // silent for the test's purposes
			e.expired("si", ttl)
			res, b, d := e.reviewDo("GET", "si", nil)
			if d > 4*time.Second {
				t.Errorf("GET of an expired entry with a silent upstream took %v (miss_timeout 300ms); answered %d X-Cache %q",
					d, res.StatusCode, res.Header.Get("X-Cache"))
			}
			switch {
			case sie && (res.StatusCode != 200 || !bytes.Equal(b, data)):
				t.Errorf("stale_if_error: GET = %d, want 200 with the stored bytes", res.StatusCode)
			case sie && d <= 4*time.Second && res.Header.Get("X-Cache") != "STALE":
				t.Errorf("stale_if_error: X-Cache %q, want STALE", res.Header.Get("X-Cache"))
			case !sie && d <= 4*time.Second && (res.StatusCode != 503 || res.Header.Get("Retry-After") == ""):
				t.Errorf("GET = %d, Retry-After %q; want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
			}
		})
	}
}

// TestReviewRevalPassMissSilent: requests the cache hands to the upstream
// because nothing is stored (a HEAD of an object not stored, a suffix range
// of one) are misses too; with a silent provider they fail within the miss
// timeout (README: "a miss fails with 503 ServiceUnavailable and
// Retry-After ... within cache.miss_timeout if it accepts them and stays
// silent").
func TestReviewRevalPassMissSilent(t *testing.T) {
	for _, c := range []struct {
		name, method string
		hdr          map[string]string
	}{{"HEAD", "HEAD", nil}, {"suffix range", "GET", map[string]string{"Range": "bytes=-100"}}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, envOptions{cache: reviewCacheOptions(300 * time.Millisecond)})
			e.up.PutObject(upstreamBucket, "hs1/hm", randomBytes(1000, 110))
			e.up.SetShape(upstreamtest.Shape{FirstByte: 10 * time.Second}) // silent for the test's purposes
			res, _, d := e.reviewDo(c.method, "hm", c.hdr)
			if d > 4*time.Second || res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
				t.Errorf("%s of an object not stored, silent upstream = %d, Retry-After %q, after %v; want 503 with Retry-After within the miss timeout (300ms)",
					c.name, res.StatusCode, res.Header.Get("Retry-After"), d)
			}
		})
	}
}

// TestReviewRevalImmutableUpstreamDown: in immutable mode, hits (GET, HEAD,
// range) keep being served by a refusing or silent provider; misses fail
// with 503 and Retry-After within the miss timeout.
func TestReviewRevalImmutableUpstreamDown(t *testing.T) {
	for _, mode := range []string{"refused", "silent"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, envOptions{cache: reviewCacheOptions(300 * time.Millisecond)})
			data := randomBytes(100<<10, 111)
			e.stored("ih", data)
			e.up.PutObject(upstreamBucket, "hs1/im", data)
			if mode == "refused" {
				e.up.Close()
			} else {
				e.up.SetShape(upstreamtest.Shape{FirstByte: 10 * time.Second})
			}
			e.mustGet("ih", data, "HIT")
			if res, _, _ := e.reviewDo("HEAD", "ih", nil); res.StatusCode != 200 || res.Header.Get("X-Cache") != "HIT" {
				t.Errorf("HEAD of a stored object with the upstream %s = %d %q", mode, res.StatusCode, res.Header.Get("X-Cache"))
			}
			if res, b, _ := e.reviewDo("GET", "ih", map[string]string{"Range": "bytes=-100"}); res.StatusCode != 206 || !bytes.Equal(b, data[len(data)-100:]) {
				t.Errorf("suffix range of a stored object with the upstream %s = %d", mode, res.StatusCode)
			}
			res, _, d := e.reviewDo("GET", "im", nil)
			if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || d > 4*time.Second {
				t.Errorf("miss with the upstream %s = %d, Retry-After %q, after %v; want 503 with Retry-After within the miss timeout",
					mode, res.StatusCode, res.Header.Get("Retry-After"), d)
			}
		})
	}
}

// TestReviewRevalHeadRevalidates: a HEAD after the TTL revalidates as a GET
// does: a conditional request with the stored ETag, the entry kept and its
// age renewed, so the next HEAD and GET are hits without the upstream.
func TestReviewRevalHeadRevalidates(t *testing.T) {
	const ttl = 1 * time.Second
	e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl}, 0)
	var inm headINM
	inm.observe(e)
	data := randomBytes(10<<10, 112)
	e.stored("hd", data)
	m0 := e.expired("hd", ttl)
	res, _, _ := e.reviewDo("HEAD", "hd", nil)
	if res.StatusCode != 200 || res.ContentLength != int64(len(data)) || res.Header.Get("ETag") != m0.ETag {
		t.Fatalf("HEAD = %d, length %d, ETag %q", res.StatusCode, res.ContentLength, res.Header.Get("ETag"))
	}
	if got := inm.get(); len(got) != 1 || got[0] != m0.ETag {
		t.Errorf("upstream HEADs' If-None-Match = %q, want one conditional HEAD with the stored ETag %q", got, m0.ETag)
	}
	if m1, ok := e.stat("hd"); !ok || !m1.StoredAt.After(m0.StoredAt) {
		t.Errorf("the entry's age was not renewed by a revalidating HEAD (StoredAt %v → %v)", m0.StoredAt, m1.StoredAt)
	}
	res, _, _ = e.reviewDo("HEAD", "hd", nil)
	if res.Header.Get("X-Cache") != "HIT" || len(inm.get()) != 1 {
		t.Errorf("HEAD right after a revalidation: X-Cache %q, %d upstream HEADs in all; want HIT and still 1", res.Header.Get("X-Cache"), len(inm.get()))
	}
}

// TestReviewRevalHeadCoalesced: concurrent HEADs on an expired entry cause
// one revalidation.
func TestReviewRevalHeadCoalesced(t *testing.T) {
	const ttl = 3 * time.Second
	e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl}, 0)
	data := randomBytes(10<<10, 113)
	e.stored("hc", data)
	e.up.SetShape(upstreamtest.Shape{FirstByte: 400 * time.Millisecond})
	e.expired("hc", ttl)
	h0 := e.up.Requests("HeadObject")
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			<-start
			if res, _, _ := e.reviewDo("HEAD", "hc", nil); res.StatusCode != 200 {
				t.Errorf("HEAD = %d", res.StatusCode)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := e.up.Requests("HeadObject") - h0; n != 1 {
		t.Errorf("16 HEADs on an expired entry caused %d upstream HEADs, want 1", n)
	}
}

// TestReviewRevalHeadStaleIfError: a HEAD whose revalidation fails follows
// stale_if_error as a GET does: the stored headers with X-Cache STALE.
func TestReviewRevalHeadStaleIfError(t *testing.T) {
	for _, f := range reviewFaults {
		t.Run(f.name, func(t *testing.T) {
			const ttl = 1 * time.Second
			e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl, StaleIfError: true}, 0)
			data := randomBytes(10<<10, 114)
			e.stored("hs", data)
			f.apply(e)
			e.expired("hs", ttl)
			res, _, _ := e.reviewDo("HEAD", "hs", nil)
			if res.StatusCode != 200 || res.ContentLength != int64(len(data)) || res.Header.Get("X-Cache") != "STALE" {
				t.Errorf("stale_if_error, upstream %s: HEAD = %d, length %d, X-Cache %q; want 200 STALE with the stored length",
					f.name, res.StatusCode, res.ContentLength, res.Header.Get("X-Cache"))
			}
		})
	}
}

// TestReviewRevalHeadChangedAndGone: a HEAD after the TTL reports the
// upstream's current version, and a GET after it is never the old bytes.
func TestReviewRevalHeadChangedAndGone(t *testing.T) {
	const ttl = 1 * time.Second
	e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl, StaleIfError: true}, 0)
	v1, v2 := randomBytes(10<<10, 115), randomBytes(12<<10, 116)
	e.stored("hg", v1)
	e.up.PutObject(upstreamBucket, "hs1/hg", v2)
	e.expired("hg", ttl)
	res, _, _ := e.reviewDo("HEAD", "hg", nil)
	if res.StatusCode != 200 || res.ContentLength != int64(len(v2)) {
		t.Errorf("HEAD after an upstream change = %d, length %d; want the new length %d", res.StatusCode, res.ContentLength, len(v2))
	}
	if _, b, _ := e.reviewDo("GET", "hg", nil); !bytes.Equal(b, v2) {
		t.Errorf("GET after a HEAD saw the change: %d bytes, old version: %v", len(b), bytes.Equal(b, v1))
	}
	e.settled("hg", len(v2))
	if err := e.up.Client().Delete(t.Context(), upstreamBucket, "hs1/hg"); err != nil {
		t.Fatal(err)
	}
	e.expired("hg", ttl)
	if res, _, _ := e.reviewDo("HEAD", "hg", nil); res.StatusCode != 404 {
		t.Errorf("HEAD after the upstream deleted the object = %d, want 404", res.StatusCode)
	}
	if res, b, _ := e.reviewDo("GET", "hg", nil); res.StatusCode != 404 || bytes.Equal(b, v2) {
		t.Errorf("GET after the upstream deleted the object = %d, want 404", res.StatusCode)
	}
}

// TestReviewRevalRangeSliced: a range of an expired sliced object (above
// the slice threshold) revalidates once and stays a hit when unchanged;
// after a change, the range is the new version's bytes; with the upstream
// down and stale_if_error, the stored slices are served STALE.
func TestReviewRevalRangeSliced(t *testing.T) {
	const ttl = 1 * time.Second
	e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl, StaleIfError: true}, 0)
	v1, v2 := randomBytes(5<<20, 117), randomBytes(5<<20, 118) // 5 MiB > 4 × 1 MiB slices
	e.up.PutObject(upstreamBucket, "hs1/sl", v1)
	const rng = "bytes=1000-2500000"
	e.storedRange("sl", rng, v1[1000:2500001])
	e.expired("sl", ttl)
	h0, g0 := e.up.Requests("HeadObject"), e.up.Requests("GetObject")
	res, b, _ := e.reviewDo("GET", "sl", map[string]string{"Range": rng})
	if res.StatusCode != 206 || !bytes.Equal(b, v1[1000:2500001]) || res.Header.Get("X-Cache") != "HIT" {
		t.Errorf("range of an expired, unchanged sliced object = %d, X-Cache %q", res.StatusCode, res.Header.Get("X-Cache"))
	}
	if h, g := e.up.Requests("HeadObject")-h0, e.up.Requests("GetObject")-g0; h != 1 || g != 0 {
		t.Errorf("revalidating the sliced object cost %d HEADs and %d GETs, want 1 and 0", h, g)
	}
	// Changed.
	e.up.PutObject(upstreamBucket, "hs1/sl", v2)
	e.expired("sl", ttl)
	res, b, _ = e.reviewDo("GET", "sl", map[string]string{"Range": rng})
	if res.StatusCode != 206 || !bytes.Equal(b, v2[1000:2500001]) {
		t.Errorf("range after an upstream change = %d, old bytes: %v", res.StatusCode, bytes.Equal(b, v1[1000:2500001]))
	}
	e.storedRange("sl", rng, v2[1000:2500001])
	// Down, stale.
	e.up.SetShape(upstreamtest.Shape{Fail: func(*http.Request) upstreamtest.Fault { return upstreamtest.Status(503) }})
	e.expired("sl", ttl)
	res, b, _ = e.reviewDo("GET", "sl", map[string]string{"Range": rng})
	if res.StatusCode != 206 || !bytes.Equal(b, v2[1000:2500001]) || res.Header.Get("X-Cache") != "STALE" {
		t.Errorf("range with the upstream down = %d, X-Cache %q; want 206 STALE", res.StatusCode, res.Header.Get("X-Cache"))
	}
}

// TestReviewRevalRangeWholeChanged: a range of an expired whole entry whose
// object changed is served from the new version.
func TestReviewRevalRangeWholeChanged(t *testing.T) {
	const ttl = 1 * time.Second
	e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl}, 0)
	v1, v2 := randomBytes(100<<10, 119), randomBytes(150<<10, 120)
	e.stored("rw", v1)
	e.up.PutObject(upstreamBucket, "hs1/rw", v2)
	e.expired("rw", ttl)
	res, b, _ := e.reviewDo("GET", "rw", map[string]string{"Range": "bytes=1000-1999"})
	if res.StatusCode != 206 || !bytes.Equal(b, v2[1000:2000]) || res.Header.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", len(v2)) {
		t.Errorf("range after a change = %d %q, new bytes: %v", res.StatusCode, res.Header.Get("Content-Range"), bytes.Equal(b, v2[1000:2000]))
	}
}

// TestReviewRevalSuffixRangeChanged: a suffix range (bytes=-N) of an
// expired entry whose object changed size is the last N bytes of the new
// version, not the bytes at the old version's tail offset.
func TestReviewRevalSuffixRangeChanged(t *testing.T) {
	for _, c := range []struct {
		name   string
		v2size int
	}{{"grew", 150 << 10}, {"shrank", 50 << 10}} {
		t.Run(c.name, func(t *testing.T) {
			const ttl = 1 * time.Second
			e := reviewEnv(t, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl}, 0)
			v1, v2 := randomBytes(100<<10, 121), randomBytes(c.v2size, 122)
			e.stored("sx", v1)
			e.up.PutObject(upstreamBucket, "hs1/sx", v2)
			e.expired("sx", ttl)
			res, b, _ := e.reviewDo("GET", "sx", map[string]string{"Range": "bytes=-1000"})
			want := fmt.Sprintf("bytes %d-%d/%d", len(v2)-1000, len(v2)-1, len(v2))
			if res.StatusCode != 206 || !bytes.Equal(b, v2[len(v2)-1000:]) || res.Header.Get("Content-Range") != want {
				t.Errorf("bytes=-1000 after the object %s from %d to %d bytes = %d, Content-Range %q (want %q), the new tail: %v",
					c.name, len(v1), len(v2), res.StatusCode, res.Header.Get("Content-Range"), want, bytes.Equal(b, v2[len(v2)-1000:]))
			}
		})
	}
}

// reviewEnvOn starts an s3edge in front of an existing upstream with an
// already open cache (newEnv, minus the upstream and the cache's creation).
func reviewEnvOn(t *testing.T, up *upstreamtest.Server, c *cache.Cache, cacheDir string, rule policy.CacheRule) *env {
	t.Helper()
	pol, err := policy.New(policy.Config{
		Buckets: map[string]policy.Bucket{
			"media": {Upstream: "far", Bucket: upstreamBucket, Prefix: "hs1/", Cache: rule},
		},
		Credentials: []policy.Credential{
			{AccessKeyID: fullKey, SecretAccessKey: fullSecret, Grants: []policy.Grant{{Bucket: "media", Actions: policy.Read | policy.Write | policy.List | policy.Delete}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	reg := prometheus.NewRegistry()
	spool := filepath.Join(t.TempDir(), "spool")
	p, err := proxy.New(proxy.Config{
		Metrics:   reg,
		Policy:    func() *policy.Policy { return pol },
		Upstreams: map[string]upstream.Upstream{"far": up.Client()},
		SpoolDir:  spool,
		Logger:    log,
		Cache:     c,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.Config.ConnContext = proxy.ConnContext
	hl := p.HitListener(srv.Listener, proxy.HitOptions{ReadHeaderTimeout: 10 * time.Second})
	srv.Listener = hl
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hl.Shutdown(ctx)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	return &env{t: t, up: up, srv: srv, spoolDir: spool, cache: c, cacheDir: cacheDir, metrics: reg}
}

// TestReviewRevalRestartKeepsAge: the age a revalidation renewed survives a
// restart: right after it, the entry is fresh (a HIT without the upstream);
// once the TTL has passed since the revalidation, it is checked again.
func TestReviewRevalRestartKeepsAge(t *testing.T) {
	for _, c := range []struct {
		name string
		size int
		rng  string
	}{{"whole", 100 << 10, ""}, {"sliced", 5 << 20, "bytes=0-1048575"}} {
		t.Run(c.name, func(t *testing.T) {
			const ttl = 3 * time.Second
			rule := policy.CacheRule{Mode: policy.CacheRevalidate, TTL: ttl}
			opts := reviewCacheOptions(0)
			e := newEnv(t, envOptions{rule: rule, cache: opts})
			data := randomBytes(c.size, 123)
			read := func(e *env, xcache string) {
				t.Helper()
				if c.rng == "" {
					e.mustGet("ob", data, xcache)
					return
				}
				res, b, _ := e.reviewDo("GET", "ob", map[string]string{"Range": c.rng})
				if res.StatusCode != 206 || !bytes.Equal(b, data[:1<<20]) || res.Header.Get("X-Cache") != xcache {
					t.Fatalf("range GET = %d, X-Cache %q; want 206 %s", res.StatusCode, res.Header.Get("X-Cache"), xcache)
				}
			}
			if c.rng == "" {
				e.stored("ob", data)
			} else {
				e.up.PutObject(upstreamBucket, "hs1/ob", data)
				e.storedRange("ob", c.rng, data[:1<<20])
			}
			m0 := e.expired("ob", ttl)
			h0 := e.up.Requests("HeadObject")
			read(e, "HIT") // revalidated: 304
			m1, _ := e.stat("ob")
			if e.up.Requests("HeadObject") != h0+1 || !m1.StoredAt.After(m0.StoredAt) {
				t.Fatalf("no revalidation before the restart")
			}
			if err := e.cache.Close(); err != nil {
				t.Fatal(err)
			}
			c2, err := cache.Open(e.cacheDir, *opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c2.Close() })
			e2 := reviewEnvOn(t, e.up, c2, e.cacheDir, rule)
			m2, ok := e2.stat("ob")
			if !ok || !m2.StoredAt.Equal(m1.StoredAt) {
				t.Fatalf("after a restart: stored %v, StoredAt %v; want %v (the revalidation's)", ok, m2.StoredAt, m1.StoredAt)
			}
			if time.Since(m1.StoredAt) < ttl-500*time.Millisecond {
				h1 := e.up.Requests("HeadObject")
				read(e2, "HIT")
				if n := e.up.Requests("HeadObject"); n != h1 {
					t.Errorf("a revalidated entry was checked again right after a restart (%d HEADs)", n-h1)
				}
			}
			e2.expired("ob", ttl)
			h2 := e.up.Requests("HeadObject")
			read(e2, "HIT")
			if n := e.up.Requests("HeadObject"); n != h2+1 {
				t.Errorf("after the TTL since the revalidation, %d HEADs after a restart, want 1", n-h2)
			}
			if n := e.up.Requests("GetObject"); c.rng == "" && n != 1 {
				t.Errorf("upstream GETs = %d, want 1", n)
			}
		})
	}
}
