package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeS3 answers GET /bench/<size> with <size> bytes and X-Cache: HIT,
// /bench/missing with 404, /bench/broken with 500, /bench/short with a
// body one byte short of what the trace expects, PUT with 200, and counts
// requests and their signatures.
type fakeS3 struct {
	requests, signed atomic.Int64
	mu               sync.Mutex
	maxInFlight      int
	inFlight         int
	hold             chan struct{} // if not nil, requests wait for it to close
	release          int           // hold is closed when this many requests are in flight
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	if strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+benchAccessKey+"/") &&
		r.Header.Get("X-Amz-Content-Sha256") != "" {
		f.signed.Add(1)
	}
	f.mu.Lock()
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	if f.hold != nil && f.inFlight == f.release {
		close(f.hold)
	}
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.inFlight--; f.mu.Unlock() }()
	if f.hold != nil {
		<-f.hold
	}
	key := strings.TrimPrefix(r.URL.Path, "/bench/")
	switch key {
	case "missing":
		http.NotFound(w, r)
		return
	case "broken":
		http.Error(w, "<Error><Code>InternalError</Code></Error>", http.StatusInternalServerError)
		return
	case "short":
		w.Write([]byte("abc"))
		return
	}
	if r.Method == http.MethodPut {
		return
	}
	n, _ := strconv.Atoi(key)
	w.Header().Set("X-Cache", "HIT")
	w.Write(make([]byte, n))
}

func get(key string, want int64) step { return step{{op: opGet, key: key, want: want}} }

func TestRunCountsEverything(t *testing.T) {
	f := &fakeS3{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	steps := []step{
		get("100", 100), get("4096", 4096),
		{{op: opHead, key: "missing", miss: true}}, // an expected 404 is fine
		get("missing", -1),                         // an unexpected one is an error
		get("broken", -1),
		get("short", 4),
		{{op: opPut, key: "p", body: []byte("data"), bodySHA: sha256Hex([]byte("data"))}, {op: opGet, key: "7", want: 7}},
	}
	tgt := target{base: srv.URL, bucket: benchBucket, sign: newSigner(benchAccessKey, benchSecretKey, benchRegion)}
	res := run(t.Context(), newClient(4), tgt, steps, runOpts{concurrency: 4, maxTime: 10 * time.Second})
	if len(res.samples) != 8 {
		t.Fatalf("%d samples, want 8", len(res.samples))
	}
	if res.errors != 3 {
		t.Errorf("errors = %d, want 3 (unexpected 404, 500, short body); first: %s", res.errors, res.firstErr)
	}
	if got := f.signed.Load(); got != 8 {
		t.Errorf("%d signed requests, want 8", got)
	}
	s := res.samples
	if !s[0].done || s[0].failed || s[0].bytes != 100 || s[0].cache != cacheHit || s[0].lat <= 0 || s[0].ttfb <= 0 || s[0].ttfb > s[0].lat {
		t.Errorf("sample 0 = %+v", s[0])
	}
	if s[2].failed || s[2].status != 404 {
		t.Errorf("expected 404 = %+v, want a success", s[2])
	}
	if !s[4].failed || s[4].status != 500 {
		t.Errorf("500 = %+v, want a failure", s[4])
	}
	if s[6].op != opPut || s[6].failed || s[7].bytes != 7 {
		t.Errorf("PUT then GET = %+v, %+v", s[6], s[7])
	}
	if res.timedOut {
		t.Error("timedOut set on a finished trace")
	}
}

// TestRunStartsClientsTogether checks the coalescing burst: with the
// server holding every request, all clients must be in flight at once.
func TestRunStartsClientsTogether(t *testing.T) {
	const n = 20
	f := &fakeS3{hold: make(chan struct{}), release: n}
	srv := httptest.NewServer(f)
	defer srv.Close()
	steps := make([]step, n)
	for i := range steps {
		steps[i] = get("10", 10)
	}
	// Should the clients not all be in flight together, the hold is never
	// released and the run ends at its bound with errors.
	res := run(t.Context(), newClient(n), target{base: srv.URL, bucket: benchBucket}, steps, runOpts{concurrency: n, maxTime: 3 * time.Second})
	if res.errors != 0 || f.maxInFlight != n {
		t.Errorf("errors %d, max in flight %d, want 0 and %d", res.errors, f.maxInFlight, n)
	}
}

// TestRunTimeBound checks that a long trace stops at maxTime and that the
// requests in flight finish and count.
func TestRunTimeBound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // a slow server
	}))
	defer srv.Close()
	steps := make([]step, 100000)
	for i := range steps {
		steps[i] = get("x", 0)
	}
	t0 := time.Now()
	res := run(t.Context(), newClient(4), target{base: srv.URL, bucket: benchBucket}, steps, runOpts{concurrency: 4, maxTime: 200 * time.Millisecond})
	if el := time.Since(t0); el > 2*time.Second {
		t.Errorf("run took %v with a 200ms bound", el)
	}
	done := 0
	for _, s := range res.samples {
		if s.done {
			done++
		}
	}
	if !res.timedOut || done == 0 || done > 100 || res.errors != 0 {
		t.Errorf("timedOut %v, %d done, %d errors", res.timedOut, done, res.errors)
	}
}

func TestRunCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	t0 := time.Now()
	res := run(ctx, newClient(2), target{base: srv.URL, bucket: benchBucket}, []step{get("x", 0), get("y", 0)}, runOpts{concurrency: 2, maxTime: time.Minute})
	if el := time.Since(t0); el > 5*time.Second {
		t.Errorf("cancelled run took %v", el)
	}
	if res.errors != 0 {
		t.Errorf("cancellation counted as %d errors: %s", res.errors, res.firstErr)
	}
}

// BenchmarkSign is what SigV4 signing costs a client per GET (the report's
// sign_ns_per_request).
func BenchmarkSign(b *testing.B) {
	s := newSigner(benchAccessKey, benchSecretKey, benchRegion)
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9000/bench/local_thumbnails/ab/cd/efghijklmnopqrstuvwx/96-96-image-jpeg-crop", nil)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.sign(req, emptySHA256, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientGet4KiB is the load generator's own cost per request
// against a trivial server: the ceiling on what it can measure.
func BenchmarkClientGet4KiB(b *testing.B) {
	srv := httptest.NewServer(&fakeS3{})
	defer srv.Close()
	w := worker{c: newClient(1), t: target{base: srv.URL, bucket: benchBucket}, buf: make([]byte, 64<<10)}
	rq := request{op: opGet, key: "4096", want: 4096}
	b.ReportAllocs()
	b.SetBytes(4096)
	for b.Loop() {
		if s, err := w.do(context.Background(), rq); s.failed {
			b.Fatal(err)
		}
	}
}

// TestRunPaced: a paced run sends at its rate, however fast the server,
// and a server slower than the rate shows as growing latency, counted from
// each request's due time (no coordinated omission).
func TestRunPaced(t *testing.T) {
	srv := httptest.NewServer(&fakeS3{})
	defer srv.Close()
	steps := make([]step, 40)
	for i := range steps {
		steps[i] = get("10", 10)
	}
	tgt := target{base: srv.URL, bucket: benchBucket}
	res := run(t.Context(), newClient(4), tgt, steps, runOpts{concurrency: 4, maxTime: 10 * time.Second, rate: 200})
	// 40 requests at 200/s: the last is due 195 ms after the start.
	if res.errors != 0 || res.wall < 190*time.Millisecond {
		t.Errorf("paced run of 40 at 200/s: %d errors, took %v, want at least 195 ms", res.errors, res.wall)
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
	}))
	defer slow.Close()
	steps = make([]step, 10)
	for i := range steps {
		steps[i] = get("x", -1)
	}
	// One client, one request due every 5 ms, each taking 20: the tenth
	// is due at 45 ms and starts at about 180 ms.
	res = run(t.Context(), newClient(1), target{base: slow.URL, bucket: benchBucket}, steps, runOpts{concurrency: 1, maxTime: 10 * time.Second, rate: 200})
	last := res.samples[len(res.samples)-1]
	if res.errors != 0 || last.lat < 120*time.Millisecond || last.ttfb < 120*time.Millisecond {
		t.Errorf("last request behind a slow server: latency %v, TTFB %v, want over 120 ms (it was due 135 ms before it could start)", last.lat, last.ttfb)
	}
}
