package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// opKind is the S3 operation of a request.
type opKind uint8

const (
	opGet opKind = iota
	opHead
	opPut
)

func (o opKind) String() string {
	switch o {
	case opGet:
		return "GET"
	case opHead:
		return "HEAD"
	case opPut:
		return "PUT"
	}
	return "?"
}

// request is one S3 request of a trace.
type request struct {
	op      opKind
	key     string
	rng     string // Range header value, or ""
	body    []byte // PUT payload, shared and read-only
	bodySHA string // hex SHA-256 of body, computed once when the trace is built
	want    int64  // body bytes a successful GET must return; -1: unchecked
	miss    bool   // a 404 is the expected answer (HEAD of a missing key)
}

// step is a chain of requests one client sends in order (an upload and the
// reads that follow it); the trace hands out whole steps.
type step []request

// target is where a participant's requests go.
type target struct {
	base   string  // "http://127.0.0.1:port"
	bucket string  // first path element
	sign   *signer // nil sends unsigned requests
}

// cacheStatus is the X-Cache answer of a response.
type cacheStatus uint8

const (
	cacheNone cacheStatus = iota // no X-Cache header
	cacheHit
	cacheMiss
	cacheCoalesced
	cacheBypass
	cacheOther
)

// parseXCache maps s3edge's X-Cache values, and the ones the benchmark's
// nginx ($upstream_cache_status) and Varnish configurations emit, onto one
// vocabulary.
func parseXCache(v string) cacheStatus {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "":
		return cacheNone
	case "HIT", "REVALIDATED", "STALE":
		return cacheHit
	case "MISS", "EXPIRED":
		return cacheMiss
	case "COALESCED", "UPDATING":
		return cacheCoalesced
	case "BYPASS":
		return cacheBypass
	}
	return cacheOther
}

// sample is the outcome of one request.
type sample struct {
	lat, ttfb time.Duration
	bytes     int64 // response body bytes read
	status    int32
	op        opKind
	cache     cacheStatus
	failed    bool
	done      bool // false: not sent, or cut short by the phase deadline
}

// runOpts bounds one run.
type runOpts struct {
	concurrency int
	maxTime     time.Duration // the run stops sending when it expires
	// rate, if positive, paces the run (open loop): step i is due
	// i/rate seconds after the start, and its latency counts from then,
	// so a client that falls behind shows as latency instead of hiding it
	// (no coordinated omission).
	rate float64
	// dead, if set, is asked after a failed request whether the server
	// has died; if so the run stops instead of failing through the rest
	// of its trace.
	dead func() error
}

// runResult is what a run measured.
type runResult struct {
	samples  []sample // one per request in trace order
	wall     time.Duration
	errors   int64
	firstErr string
	timedOut bool
}

// newClient returns an HTTP client for one participant: a keep-alive pool
// large enough that no closed-loop client ever waits for, or churns, a
// connection, and timeouts that bound every wait.
func newClient(concurrency int) *http.Client {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2 * concurrency,
		MaxIdleConnsPerHost:   2 * concurrency,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true, // measure the bytes as served
	}
	return &http.Client{Transport: tr}
}

// graceTime bounds how long requests in flight may finish once a run has
// stopped sending: letting them finish keeps the client's and the
// upstream's counts equal, and the bound keeps a stuck server from
// hanging the run.
const graceTime = 15 * time.Second

// run replays steps as a closed loop: concurrency clients, each taking the
// next step in trace order as soon as its previous one is done, until the
// trace is exhausted, opts.maxTime passes or ctx is cancelled. All clients
// start together (the coalescing burst relies on it). Every sample goes
// into a slot preallocated for it, so the loop neither locks nor allocates
// for bookkeeping.
func run(ctx context.Context, c *http.Client, t target, steps []step, opts runOpts) runResult {
	offsets := make([]int, len(steps))
	total := 0
	for i, s := range steps {
		offsets[i] = total
		total += len(s)
	}
	res := runResult{samples: make([]sample, total)}
	if opts.rate > 0 {
		defer pauseGC()()
	}
	// Past maxTime no step starts; past maxTime+graceTime requests in
	// flight are cut (and not counted).
	issue, stopIssuing := context.WithTimeout(ctx, opts.maxTime)
	defer stopIssuing()
	ctx, cancel := context.WithTimeout(ctx, opts.maxTime+graceTime)
	defer cancel()

	var (
		next    atomic.Int64
		errs    atomic.Int64
		died    atomic.Bool
		errOnce sync.Once
		wg      sync.WaitGroup
	)
	start := make(chan struct{})
	var t0 time.Time // set before start is closed
	for range max(opts.concurrency, 1) {
		wg.Go(func() {
			w := worker{c: c, t: t, buf: make([]byte, 64<<10)}
			<-start
			for issue.Err() == nil && !died.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(steps) {
					return
				}
				var late time.Duration
				if opts.rate > 0 {
					due := t0.Add(time.Duration(float64(i) / opts.rate * float64(time.Second)))
					if !sleepUntil(issue, due) {
						return
					}
					late = time.Since(due)
				}
				for j, rq := range steps[i] {
					s, err := w.do(ctx, rq)
					if j == 0 {
						s.lat += late
						s.ttfb += late
					}
					if ctx.Err() != nil && err != nil {
						return // cut by the hard deadline: not a participant error
					}
					res.samples[offsets[i]+j] = s
					if s.failed {
						errs.Add(1)
						errOnce.Do(func() { res.firstErr = rq.op.String() + " " + rq.key + ": " + err.Error() })
						if opts.dead != nil && opts.dead() != nil {
							died.Store(true)
							return
						}
					}
				}
			}
		})
	}
	t0 = time.Now()
	close(start)
	wg.Wait()
	res.wall = time.Since(t0)
	res.errors = errs.Load()
	res.timedOut = issue.Err() != nil && int(next.Load()) < len(steps)
	return res
}

// pausedGCLimit bounds the load generator's heap while its collector is
// paused: a paced run of 20,000 requests allocates a few hundred MB.
const pausedGCLimit = 4 << 30

// pauseGC stops the load generator's own garbage collection until resume
// is called. A paced run counts latency from each request's due time, so
// the generator's collections showed as the server's tail: at 5,000 4 KiB
// hits/s, s3edge's p99 read 3-4.8 ms with them and 1.8-1.9 ms without,
// while turning off the server's own collector changed nothing.
func pauseGC() (resume func()) {
	// The earlier runs' garbage goes first: left in the heap, it brought
	// the paused heap to the limit, where collections come back (a 100 ms
	// stall after the hot workload).
	runtime.GC()
	gc := debug.SetGCPercent(-1)
	limit := debug.SetMemoryLimit(min(debug.SetMemoryLimit(-1), pausedGCLimit)) // a lower GOMEMLIMIT stays
	return func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
		runtime.GC()
	}
}

// sleepUntil waits until t; it reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// worker is one client: closed loop, or paced by runOpts.rate.
type worker struct {
	c   *http.Client
	t   target
	buf []byte
}

// errShort is a 2xx GET whose body was not the object's length.
var errShort = errors.New("short body")

// statusError is an unexpected HTTP status; head holds the start of the
// body (an S3 error's XML names its code).
type statusError struct {
	status int
	head   string
}

func (e statusError) Error() string { return fmt.Sprintf("status %d: %s", e.status, e.head) }

// do sends one request and reads the whole answer. Signing happens before
// the clock starts: the report gives its cost separately (signCost), so
// that latencies compare the servers.
func (w *worker) do(ctx context.Context, rq request) (sample, error) {
	s := sample{op: rq.op, done: true}
	method, hash := http.MethodGet, emptySHA256
	var body io.Reader
	switch rq.op {
	case opHead:
		method = http.MethodHead
	case opPut:
		method, hash = http.MethodPut, rq.bodySHA
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.t.base+"/"+w.t.bucket+"/"+rq.key, body)
	if err != nil {
		s.failed = true
		return s, err
	}
	if rq.op == opPut {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	if rq.rng != "" {
		req.Header.Set("Range", rq.rng)
	}
	if w.t.sign != nil {
		if err := w.t.sign.sign(req, hash, time.Now()); err != nil {
			s.failed = true
			return s, err
		}
	}
	var t0 time.Time
	trace := &httptrace.ClientTrace{GotFirstResponseByte: func() { s.ttfb = time.Since(t0) }}
	req = req.WithContext(httptrace.WithClientTrace(ctx, trace))
	t0 = time.Now()
	resp, err := w.c.Do(req)
	if err != nil {
		s.lat, s.failed = time.Since(t0), true
		return s, err
	}
	s.status = int32(resp.StatusCode)
	s.cache = parseXCache(resp.Header.Get("X-Cache"))
	var head []byte
	for {
		n, rerr := resp.Body.Read(w.buf)
		if head == nil && resp.StatusCode/100 != 2 {
			head = bytes.Clone(w.buf[:min(n, 300)])
		}
		s.bytes += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	resp.Body.Close()
	s.lat = time.Since(t0)
	switch {
	case err != nil:
	case resp.StatusCode == http.StatusNotFound && rq.miss:
	case resp.StatusCode/100 != 2:
		err = statusError{resp.StatusCode, strings.Join(strings.Fields(string(head)), " ")}
	case rq.op == opGet && rq.want >= 0 && s.bytes != rq.want:
		err = errShort
	}
	s.failed = err != nil
	return s, err
}
