package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/proxy"
	"github.com/s3edge/s3edge/upstream"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// The hit path's counters.
const (
	hpHitsMetric     = "s3edge_hit_path_requests_total"
	hpHandoffsMetric = "s3edge_hit_path_handoffs_total"
)

// hpConn is a raw client connection to the proxy: requests are written as
// bytes, responses read with http.ReadResponse, every read under a
// deadline.
type hpConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func (e *env) hpDial() *hpConn {
	e.t.Helper()
	_, c := e.dial(&net.Dialer{})
	return &hpConn{t: e.t, c: c, br: bufio.NewReader(c)}
}

// send writes reqs back to back in one write (a pipeline when there are
// several).
func (h *hpConn) send(reqs ...*http.Request) {
	h.t.Helper()
	var buf bytes.Buffer
	for _, r := range reqs {
		if err := r.Write(&buf); err != nil {
			h.t.Fatalf("serializing %s %s: %v", r.Method, r.URL, err)
		}
	}
	h.sendRaw(buf.Bytes())
}

// sendRaw writes b in one write.
func (h *hpConn) sendRaw(b []byte) {
	h.t.Helper()
	_ = h.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := h.c.Write(b); err != nil {
		h.t.Fatalf("writing %d bytes: %v", len(b), err)
	}
}

// recv reads the response to req (only its method matters) and its body.
func (h *hpConn) recv(req *http.Request) (*http.Response, []byte) {
	h.t.Helper()
	res, b, err := h.tryRecv(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, hpPath(req), err)
	}
	return res, b
}

func (h *hpConn) tryRecv(req *http.Request) (*http.Response, []byte, error) {
	_ = h.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(h.br, req)
	if err != nil {
		return nil, nil, fmt.Errorf("reading response: %w", err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return res, b, fmt.Errorf("reading body (%d bytes so far): %w", len(b), err)
	}
	return res, b, nil
}

// closed waits up to max for the server to end the connection, and
// returns how long that took. Any byte read instead fails the test.
func (h *hpConn) closed(max time.Duration) time.Duration {
	h.t.Helper()
	start := time.Now()
	_ = h.c.SetReadDeadline(start.Add(max))
	var b [1]byte
	n, err := h.br.Read(b[:])
	took := time.Since(start)
	switch {
	case n > 0:
		h.t.Fatalf("read %q where the server should have closed the connection", b[:n])
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
	default:
		h.t.Fatalf("connection not closed by the server within %v: %v", max, err)
	}
	return took
}

func hpPath(r *http.Request) string {
	if r.URL == nil {
		return "(raw)"
	}
	return r.URL.Path
}

// hpRaw stands for a hand-written request when reading its response.
func hpRaw(method string) *http.Request { return &http.Request{Method: method} }

// hpCounts returns the hit path's two counters.
func (e *env) hpCounts() (hits, handoffs float64) {
	return e.counter(hpHitsMetric, nil), e.counter(hpHandoffsMetric, nil)
}

// hpExpect checks that, since hits0 and handoffs0, the hit path answered
// exactly dHits requests and handed exactly dHandoffs connections over.
// The hit counter moves just after the response leaves: it is waited for,
// bounded, and then checked again for anything extra.
func (e *env) hpExpect(hits0, handoffs0 float64, dHits, dHandoffs int) {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		h, o := e.hpCounts()
		if h-hits0 >= float64(dHits) && o-handoffs0 >= float64(dHandoffs) || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	h, o := e.hpCounts()
	if h-hits0 != float64(dHits) || o-handoffs0 != float64(dHandoffs) {
		e.t.Errorf("hit path answered %v requests and handed off %v connections; want %d and %d", h-hits0, o-handoffs0, dHits, dHandoffs)
	}
}

// hpWaitCounter waits, bounded, until counter name reaches want, then
// checks that it stays there.
func (e *env) hpWaitCounter(name string, labels map[string]string, want float64) {
	e.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for e.counter(name, labels) < want && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	if got := e.counter(name, labels); got != want {
		e.t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// hpETag GETs key (a hit) with the harness's client and returns its
// ETag, once the hit path has counted that hit: counts taken after it do
// not see it arrive late.
func (e *env) hpETag(key string) string {
	e.t.Helper()
	h0, o0 := e.hpCounts()
	res, _, err := e.get(key, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.hpExpect(h0, o0, 1, 0)
	etag := res.Header.Get("ETag")
	if etag == "" {
		e.t.Fatalf("GET %s: no ETag", key)
	}
	return etag
}

func (e *env) hpGet(key string, mutate func(*http.Request)) *http.Request {
	e.t.Helper()
	return e.signed("GET", "/media/"+key, nil, fullKey, fullSecret, time.Now(), "", mutate)
}

func (e *env) hpHead(key string, mutate func(*http.Request)) *http.Request {
	e.t.Helper()
	return e.signed("HEAD", "/media/"+key, nil, fullKey, fullSecret, time.Now(), "", mutate)
}

func hpHeader(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

// hpCheckObject checks a 200 answer carrying want, with its length
// declared, and X-Cache xcache (unchecked if empty).
func hpCheckObject(t testing.TB, what string, res *http.Response, body, want []byte, xcache string) {
	t.Helper()
	if res.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Errorf("%s: %d with %d bytes (equal: %v); want 200 with %d bytes", what, res.StatusCode, len(body), bytes.Equal(body, want), len(want))
	}
	if got := res.Header.Get("Content-Length"); got != strconv.Itoa(len(want)) {
		t.Errorf("%s: Content-Length %q, want %d", what, got, len(want))
	}
	if got := res.Header.Get("X-Cache"); xcache != "" && got != xcache {
		t.Errorf("%s: X-Cache %q, want %q", what, got, xcache)
	}
}

// TestHitPathKeepAliveHits: hits of every size class on one connection,
// one at a time and pipelined, GET and HEAD, are all answered by the hit
// path, byte for byte.
func TestHitPathKeepAliveHits(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	// And the edges of the in-memory limit (32 KiB) and of the hit
	// writer's buffer (64 KiB).
	sizes := []int{0, 1, 4 << 10, 32<<10 - 1, 32 << 10, 32<<10 + 1, 40 << 10, 64<<10 - 1, 64 << 10, 64<<10 + 1, 300 << 10}
	keys := make([]string, len(sizes))
	objs := map[string][]byte{}
	for i, n := range sizes {
		keys[i] = fmt.Sprintf("hp/keep/%d", n)
		objs[keys[i]] = randomBytes(n, uint64(100+i))
		e.stored(keys[i], objs[keys[i]])
	}
	h0, o0 := e.hpCounts()
	c := e.hpDial()
	n := 0
	for round := range 3 {
		for _, k := range keys {
			r := e.hpGet(k, nil)
			c.send(r)
			res, b := c.recv(r)
			hpCheckObject(t, fmt.Sprintf("round %d GET %s", round, k), res, b, objs[k], "HIT")
			n++
		}
	}
	for _, k := range keys {
		r := e.hpHead(k, nil)
		c.send(r)
		res, b := c.recv(r)
		if res.StatusCode != 200 || len(b) != 0 || res.Header.Get("Content-Length") != strconv.Itoa(len(objs[k])) || res.Header.Get("X-Cache") != "HIT" {
			t.Errorf("HEAD %s: %d, %d body bytes, Content-Length %q, X-Cache %q", k, res.StatusCode, len(b), res.Header.Get("Content-Length"), res.Header.Get("X-Cache"))
		}
		n++
	}
	// Pipelined: every request written at once, GETs and HEADs
	// alternating, so that a HEAD that sent a body, or a body cut short,
	// breaks the parse of the next response.
	var reqs []*http.Request
	for range 2 {
		for _, k := range keys {
			reqs = append(reqs, e.hpGet(k, nil), e.hpHead(k, nil))
		}
	}
	c.send(reqs...)
	for i, r := range reqs {
		k := strings.TrimPrefix(r.URL.Path, "/media/")
		res, b := c.recv(r)
		if r.Method == "HEAD" {
			if res.StatusCode != 200 || len(b) != 0 || res.Header.Get("Content-Length") != strconv.Itoa(len(objs[k])) {
				t.Errorf("pipelined #%d HEAD %s: %d, %d body bytes, Content-Length %q", i, k, res.StatusCode, len(b), res.Header.Get("Content-Length"))
			}
		} else {
			hpCheckObject(t, fmt.Sprintf("pipelined #%d GET %s", i, k), res, b, objs[k], "HIT")
		}
		n++
	}
	e.hpExpect(h0, o0, n, 0)
	if got := e.up.Requests("GetObject"); got != int64(len(keys)) {
		t.Errorf("upstream GETs = %d, want the %d fills", got, len(keys))
	}
}

// TestHitPathRangesAndConditionals: ranges, suffix ranges and failed
// conditions on stored objects are answered by the hit path, and each
// leaves the connection in step for the next request, one at a time and
// pipelined.
func TestHitPathRangesAndConditionals(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	small, large := randomBytes(4<<10, 11), randomBytes(300<<10, 12)
	e.stored("hp/rc/small", small)
	e.stored("hp/rc/large", large)
	etag := e.hpETag("hp/rc/small")
	up0 := e.up.Requests("")
	type tc struct {
		name  string
		req   func() *http.Request
		check func(t *testing.T, res *http.Response, b []byte)
	}
	ranged := func(data []byte, first, last int) func(t *testing.T, res *http.Response, b []byte) {
		return func(t *testing.T, res *http.Response, b []byte) {
			t.Helper()
			want := data[first : last+1]
			cr := fmt.Sprintf("bytes %d-%d/%d", first, last, len(data))
			if res.StatusCode != 206 || !bytes.Equal(b, want) || res.Header.Get("Content-Range") != cr ||
				res.Header.Get("Content-Length") != strconv.Itoa(len(want)) {
				t.Errorf("%d, %d bytes (equal %v), Content-Range %q, Content-Length %q; want 206, %d bytes, %q",
					res.StatusCode, len(b), bytes.Equal(b, want), res.Header.Get("Content-Range"), res.Header.Get("Content-Length"), len(want), cr)
			}
		}
	}
	s3err := func(status int, code string) func(t *testing.T, res *http.Response, b []byte) {
		return func(t *testing.T, res *http.Response, b []byte) {
			t.Helper()
			var se s3Error
			if err := xml.Unmarshal(b, &se); err != nil || res.StatusCode != status || se.Code != code {
				t.Errorf("%d %q (%v); want %d %s", res.StatusCode, se.Code, err, status, code)
			}
			if cl := res.Header.Get("Content-Length"); cl != strconv.Itoa(len(b)) {
				t.Errorf("Content-Length %q for a %d-byte error body", cl, len(b))
			}
		}
	}
	// A 304 carries the validators (RFC 9110, 15.4.5).
	notModified := func(t *testing.T, res *http.Response, b []byte) {
		t.Helper()
		if res.StatusCode != 304 || len(b) != 0 {
			t.Errorf("%d with %d bytes; want 304, no body", res.StatusCode, len(b))
		}
		if res.Header.Get("Etag") != etag || res.Header.Get("Last-Modified") == "" {
			t.Errorf("304 with ETag %q, Last-Modified %q; want %s and a date", res.Header.Get("Etag"), res.Header.Get("Last-Modified"), etag)
		}
	}
	cases := []tc{
		{"range", func() *http.Request { return e.hpGet("hp/rc/small", hpHeader("Range", "bytes=10-99")) }, ranged(small, 10, 99)},
		{"suffix range", func() *http.Request { return e.hpGet("hp/rc/small", hpHeader("Range", "bytes=-5")) }, ranged(small, len(small)-5, len(small)-1)},
		{"large range", func() *http.Request { return e.hpGet("hp/rc/large", hpHeader("Range", "bytes=1000-200000")) }, ranged(large, 1000, 200000)},
		{"large open range", func() *http.Request { return e.hpGet("hp/rc/large", hpHeader("Range", "bytes=250000-")) }, ranged(large, 250000, len(large)-1)},
		{"large suffix range", func() *http.Request { return e.hpGet("hp/rc/large", hpHeader("Range", "bytes=-5")) }, ranged(large, len(large)-5, len(large)-1)},
		{"if-none-match", func() *http.Request { return e.hpGet("hp/rc/small", hpHeader("If-None-Match", etag)) }, notModified},
		{"if-none-match large", func() *http.Request {
			return e.hpGet("hp/rc/large", hpHeader("If-None-Match", "*"))
		}, func(t *testing.T, res *http.Response, b []byte) {
			if res.StatusCode != 304 || len(b) != 0 {
				t.Errorf("%d with %d bytes, want 304 and none", res.StatusCode, len(b))
			}
		}},
		{"if-match other", func() *http.Request { return e.hpGet("hp/rc/small", hpHeader("If-Match", `"0123456789abcdef"`)) }, s3err(412, "PreconditionFailed")},
		{"unsatisfiable range", func() *http.Request { return e.hpGet("hp/rc/small", hpHeader("Range", "bytes=5000-6000")) }, s3err(416, "InvalidRange")},
		{"head if-none-match", func() *http.Request { return e.hpHead("hp/rc/small", hpHeader("If-None-Match", etag)) }, notModified},
		{"plain", func() *http.Request { return e.hpGet("hp/rc/small", nil) }, func(t *testing.T, res *http.Response, b []byte) {
			hpCheckObject(t, "plain GET", res, b, small, "HIT")
		}},
	}
	h0, o0 := e.hpCounts()
	c := e.hpDial()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.req()
			c.send(r)
			res, b := c.recv(r)
			tt.check(t, res, b)
		})
	}
	t.Run("pipelined", func(t *testing.T) {
		reqs := make([]*http.Request, len(cases))
		for i, tt := range cases {
			reqs[i] = tt.req()
		}
		c.send(reqs...)
		for i, tt := range cases {
			res, b, err := c.tryRecv(reqs[i])
			if err != nil {
				t.Fatalf("#%d %s: %v", i, tt.name, err)
			}
			t.Run(tt.name, func(t *testing.T) { tt.check(t, res, b) })
		}
	})
	e.hpExpect(h0, o0, 2*len(cases), 0)
	if got := e.up.Requests("") - up0; got != 0 {
		t.Errorf("upstream saw %d requests for answers from the cache", got)
	}
}

// TestHitPathBadSignature: a request whose signature does not verify is
// refused on the hit path, without the upstream, and the connection goes
// on.
func TestHitPathBadSignature(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	data := randomBytes(4<<10, 21)
	e.stored("hp/sig", data)
	e.up.PutObject(upstreamBucket, "hs1/hp/sig-uncached", data)
	up0 := e.up.Requests("")
	denied0 := e.counter("s3edge_requests_total", map[string]string{"op": "GetObject", "status": "403"})
	tamper := func(r *http.Request) *http.Request {
		a := r.Header.Get("Authorization")
		last := a[len(a)-1]
		flip := byte('0')
		if last == '0' {
			flip = '1'
		}
		r.Header.Set("Authorization", a[:len(a)-1]+string(flip))
		return r
	}
	h0, o0 := e.hpCounts()
	c := e.hpDial()
	reqs := []*http.Request{
		e.signed("GET", "/media/hp/sig", nil, fullKey, "wrong-secret-000000", time.Now(), "", nil),
		tamper(e.hpGet("hp/sig", nil)),
		e.signed("GET", "/media/hp/sig-uncached", nil, fullKey, "wrong-secret-000000", time.Now(), "", nil),
		e.signed("HEAD", "/media/hp/sig", nil, fullKey, "wrong-secret-000000", time.Now(), "", nil),
	}
	for i, r := range reqs {
		c.send(r)
		res, b := c.recv(r)
		var se s3Error
		_ = xml.Unmarshal(b, &se)
		switch {
		case res.StatusCode != 403:
			t.Errorf("#%d %s %s: %d, want 403", i, r.Method, r.URL.Path, res.StatusCode)
		case r.Method == "HEAD" && len(b) != 0:
			t.Errorf("#%d HEAD: %d body bytes", i, len(b))
		case r.Method == "GET" && se.Code != "SignatureDoesNotMatch":
			t.Errorf("#%d GET %s: code %q, want SignatureDoesNotMatch", i, r.URL.Path, se.Code)
		case r.Method == "GET" && res.Header.Get("Content-Length") != strconv.Itoa(len(b)):
			t.Errorf("#%d: Content-Length %q for %d bytes", i, res.Header.Get("Content-Length"), len(b))
		}
	}
	r := e.hpGet("hp/sig", nil)
	c.send(r)
	res, b := c.recv(r)
	hpCheckObject(t, "GET after refusals", res, b, data, "HIT")
	e.hpExpect(h0, o0, len(reqs)+1, 0)
	e.hpWaitCounter("s3edge_requests_total", map[string]string{"op": "GetObject", "status": "403"}, denied0+3)
	if got := e.up.Requests(""); got != up0 {
		t.Errorf("upstream saw %d requests for refused ones", got-up0)
	}
}

// TestHitPathHandOffAndGiveBack: on one connection, misses go to net/http
// and are answered from the upstream, and the hits after them are the hit
// path's again.
func TestHitPathHandOffAndGiveBack(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	a := randomBytes(4<<10, 31)
	e.stored("hp/gb/a", a)
	b := randomBytes(1<<10, 32)
	cc := randomBytes(300<<10, 33)
	d := randomBytes(2<<10, 34)
	e.up.PutObject(upstreamBucket, "hs1/hp/gb/b", b)
	e.up.PutObject(upstreamBucket, "hs1/hp/gb/c", cc)
	e.up.PutObject(upstreamBucket, "hs1/hp/gb/d", d)
	gets0 := e.up.Requests("GetObject")
	c := e.hpDial()
	step := func(what string, r *http.Request, want []byte, xcache string, dHits, dHandoffs int) {
		t.Helper()
		h0, o0 := e.hpCounts()
		c.send(r)
		res, body := c.recv(r)
		hpCheckObject(t, what, res, body, want, xcache)
		e.hpExpect(h0, o0, dHits, dHandoffs)
	}
	step("hit", e.hpGet("hp/gb/a", nil), a, "HIT", 1, 0)
	step("small miss", e.hpGet("hp/gb/b", nil), b, "MISS", 0, 1)
	step("hit after a miss", e.hpGet("hp/gb/a", nil), a, "HIT", 1, 0)
	step("second hit after a miss", e.hpGet("hp/gb/a", nil), a, "HIT", 1, 0)
	step("large miss", e.hpGet("hp/gb/c", nil), cc, "MISS", 0, 1)
	step("hit after a large miss", e.hpGet("hp/gb/a", nil), a, "HIT", 1, 0)
	e.settled("hp/gb/b", len(b))
	e.settled("hp/gb/c", len(cc))
	step("hit of the small miss", e.hpGet("hp/gb/b", nil), b, "HIT", 1, 0)
	step("hit of the large miss", e.hpGet("hp/gb/c", nil), cc, "HIT", 1, 0)
	if got := e.up.Requests("GetObject") - gets0; got != 2 {
		t.Errorf("upstream GETs = %d, want 2 (one per miss)", got)
	}

	// A HEAD miss goes to the upstream through net/http, and comes back.
	h0, o0 := e.hpCounts()
	r := e.hpHead("hp/gb/d", nil)
	c.send(r)
	res, body := c.recv(r)
	if res.StatusCode != 200 || len(body) != 0 || res.Header.Get("Content-Length") != strconv.Itoa(len(d)) {
		t.Errorf("HEAD miss: %d, %d body bytes, Content-Length %q", res.StatusCode, len(body), res.Header.Get("Content-Length"))
	}
	e.hpExpect(h0, o0, 0, 1)
	step("hit after a HEAD miss", e.hpGet("hp/gb/a", nil), a, "HIT", 1, 0)

	// A miss the upstream does not have: a declared error body, given back.
	h0, o0 = e.hpCounts()
	r = e.hpGet("hp/gb/absent", nil)
	c.send(r)
	res, body = c.recv(r)
	var se s3Error
	_ = xml.Unmarshal(body, &se)
	if res.StatusCode != 404 || se.Code != "NoSuchKey" || res.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("GET absent: %d %q, Content-Length %q for %d bytes", res.StatusCode, se.Code, res.Header.Get("Content-Length"), len(body))
	}
	e.hpExpect(h0, o0, 0, 1)
	step("hit after a 404", e.hpGet("hp/gb/a", nil), a, "HIT", 1, 0)
}

// TestHitPathPipelinedMissBetweenHits: hits and misses written in one go
// are answered in order, the requests behind a miss replayed and given
// back with the connection.
func TestHitPathPipelinedMissBetweenHits(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	a := randomBytes(4<<10, 41)
	big := randomBytes(300<<10, 42)
	e.stored("hp/pl/a", a)
	e.stored("hp/pl/big", big)
	objs := map[string][]byte{"hp/pl/a": a, "hp/pl/big": big}
	for i, n := range []int{40 << 10, 1 << 10, 300 << 10} {
		k := fmt.Sprintf("hp/pl/m%d", i)
		objs[k] = randomBytes(n, uint64(43+i))
		e.up.PutObject(upstreamBucket, "hs1/"+k, objs[k])
	}
	type want struct {
		key    string
		xcache string
	}
	run := func(t *testing.T, ws []want, dHits, dHandoffs int) {
		h0, o0 := e.hpCounts()
		c := e.hpDial()
		reqs := make([]*http.Request, len(ws))
		for i, w := range ws {
			reqs[i] = e.hpGet(w.key, nil)
		}
		c.send(reqs...)
		for i, w := range ws {
			res, b, err := c.tryRecv(reqs[i])
			if err != nil {
				t.Fatalf("#%d GET %s: %v", i, w.key, err)
			}
			hpCheckObject(t, fmt.Sprintf("#%d GET %s", i, w.key), res, b, objs[w.key], w.xcache)
		}
		e.hpExpect(h0, o0, dHits, dHandoffs)
	}
	t.Run("hit miss hit", func(t *testing.T) {
		run(t, []want{{"hp/pl/a", "HIT"}, {"hp/pl/m0", "MISS"}, {"hp/pl/a", "HIT"}}, 2, 1)
	})
	t.Run("two misses", func(t *testing.T) {
		run(t, []want{
			{"hp/pl/big", "HIT"}, {"hp/pl/m1", "MISS"}, {"hp/pl/a", "HIT"},
			{"hp/pl/m2", "MISS"}, {"hp/pl/big", "HIT"}, {"hp/pl/a", "HIT"},
		}, 4, 2)
	})
}

// TestHitPathPutThenHits: an upload on a connection goes to net/http; the
// connection comes back after it, and the GETs of what was uploaded are
// hits on the hit path.
func TestHitPathPutThenHits(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	for _, n := range []int{10 << 10, 300 << 10} {
		t.Run(sizeName(n), func(t *testing.T) {
			key := fmt.Sprintf("hp/put/%d", n)
			data := randomBytes(n, uint64(n))
			gets0 := e.up.Requests("GetObject")
			h0, o0 := e.hpCounts()
			c := e.hpDial()
			put := e.signed("PUT", "/media/"+key, data, fullKey, fullSecret, time.Now(), "", nil)
			c.send(put)
			res, _ := c.recv(put)
			if res.StatusCode != 200 {
				t.Fatalf("PUT: %d", res.StatusCode)
			}
			for i := range 2 {
				r := e.hpGet(key, nil)
				c.send(r)
				res, b := c.recv(r)
				hpCheckObject(t, fmt.Sprintf("GET #%d after PUT", i), res, b, data, "HIT")
			}
			e.hpExpect(h0, o0, 2, 1)
			// Pipelined: the GET waits behind the upload.
			data2 := randomBytes(n, uint64(n)+1)
			put = e.signed("PUT", "/media/"+key, data2, fullKey, fullSecret, time.Now(), "", nil)
			get := e.hpGet(key, nil)
			c.send(put, get)
			if res, _ := c.recv(put); res.StatusCode != 200 {
				t.Fatalf("pipelined PUT: %d", res.StatusCode)
			}
			res, b := c.recv(get)
			hpCheckObject(t, "GET pipelined after PUT", res, b, data2, "HIT")
			e.hpExpect(h0, o0, 3, 2)
			if got := e.up.Requests("GetObject") - gets0; got != 0 {
				t.Errorf("upstream GETs = %d, want 0", got)
			}
			if up, _, err := e.upstreamObject("hs1/" + key); err != nil || !bytes.Equal(up, data2) {
				t.Errorf("upstream holds %d bytes (%v), want the second upload", len(up), err)
			}
		})
	}
	e.spoolEmpty()
}

// hpPair is s3edge twice: plain HTTP through the hit path, and TLS,
// served by net/http alone, the reference the hit path must answer like.
type hpPair struct {
	hit, net *env
}

func hpEnvs(t *testing.T) hpPair {
	opts := func(tls bool) envOptions {
		return envOptions{tls: tls, cache: &cache.Options{MaxBytes: 64 << 20, SliceSize: 1 << 20}}
	}
	p := hpPair{hit: newEnv(t, opts(false)), net: newEnv(t, opts(true))}
	return p
}

// TestHitPathLeavesToNetHTTP: requests the hit path does not serve
// itself are answered as net/http alone answers them.
func TestHitPathLeavesToNetHTTP(t *testing.T) {
	p := hpEnvs(t)
	obj := randomBytes(4<<10, 51)
	pub := randomBytes(2<<10, 52)
	for _, e := range []*env{p.hit, p.net} {
		e.stored("hp/n/o", obj)
		e.stored("public/hp/n", pub)
	}
	e := p.hit

	t.Run("connection close", func(t *testing.T) {
		for _, e := range []*env{p.hit, p.net} {
			h0, o0 := e.hpCounts()
			c := e.hpDial()
			r := e.hpGet("hp/n/o", nil)
			r.Close = true
			c.send(r)
			res, b := c.recv(r)
			hpCheckObject(t, "GET with Connection: close", res, b, obj, "HIT")
			if !res.Close {
				t.Error("the answer does not close the connection")
			}
			c.closed(3 * time.Second)
			if e == p.hit {
				e.hpExpect(h0, o0, 0, 1)
			}
		}
	})

	// Hand-written requests: the same bytes to both servers, the answers
	// compared.
	type exchange struct {
		status int
		body   []byte
		closed bool
		err    error
	}
	rawExchange := func(e *env, raw string, method string, n int) []exchange {
		c := e.hpDial()
		c.sendRaw([]byte(raw))
		var out []exchange
		for range n {
			res, b, err := c.tryRecv(hpRaw(method))
			if err != nil {
				out = append(out, exchange{err: err})
				return out
			}
			out = append(out, exchange{status: res.StatusCode, body: b, closed: res.Close})
		}
		_ = c.c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var one [1]byte
		if n, err := c.br.Read(one[:]); n > 0 {
			out = append(out, exchange{err: fmt.Errorf("unexpected byte %q after the answers", one[:n])})
		} else if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			out[len(out)-1].closed = true
		}
		return out
	}
	host := func(e *env) string { return e.srv.Listener.Addr().String() }
	rawCases := []struct {
		name   string
		raw    func(host string) string
		n      int // responses expected
		status []int
		body   [][]byte
		// handoffs expected on the hit path (-1: not checked)
		handoffs int
	}{
		{"http/1.0", func(h string) string { return "GET /media/public/hp/n HTTP/1.0\r\nHost: " + h + "\r\n\r\n" }, 1, []int{200}, [][]byte{pub}, 1},
		{"http/1.0 keep-alive", func(h string) string {
			one := "GET /media/public/hp/n HTTP/1.0\r\nHost: " + h + "\r\nConnection: keep-alive\r\n\r\n"
			return one + one
		}, 2, []int{200, 200}, [][]byte{pub, pub}, 1},
		{"bare LF", func(h string) string {
			one := "GET /media/public/hp/n HTTP/1.1\nHost: " + h + "\n\n"
			return one + one
		}, 2, []int{200, 200}, [][]byte{pub, pub}, -1},
		{"expect 100-continue", func(h string) string {
			return "GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\nExpect: 100-continue\r\n\r\n" +
				"GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\n\r\n"
		}, 2, []int{200, 200}, [][]byte{pub, pub}, 1},
		{"GET with a body", func(h string) string {
			return "GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\nContent-Length: 5\r\n\r\nabcde" +
				"GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\n\r\n"
		}, 2, []int{200, 200}, [][]byte{pub, pub}, 1},
		{"chunked GET", func(h string) string {
			return "GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
				"GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\n\r\n"
		}, 2, []int{200, 200}, [][]byte{pub, pub}, 1},
		{"garbage", func(string) string { return "NOT HTTP\r\n\r\n" }, 1, []int{400}, nil, 1},
		{"garbage after a hit", func(h string) string {
			return "GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\n\r\nNOT HTTP\r\n\r\n"
		}, 2, []int{200, 400}, [][]byte{pub}, 1},
		{"empty line first", func(h string) string { return "\r\nGET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\n\r\n" }, 1, []int{400}, nil, 1},
		{"no host", func(string) string { return "GET /media/public/hp/n HTTP/1.1\r\n\r\n" }, 1, []int{400}, nil, 1},
		{"two hosts", func(h string) string {
			return "GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\nHost: other.example\r\n\r\n"
		}, 1, []int{400}, nil, 1},
		{"bad header line", func(h string) string {
			return "GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\nno colon here\r\n\r\n"
		}, 1, []int{400}, nil, 1},
		{"bad header value", func(h string) string {
			return "GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\nX-A: a\x01b\r\n\r\n"
		}, 1, []int{400}, nil, 1},
		{"http/9.9", func(h string) string { return "GET /media/public/hp/n HTTP/9.9\r\nHost: " + h + "\r\n\r\n" }, 1, []int{505}, nil, 1},
		{"absolute URI", func(h string) string {
			return "GET http://" + h + "/media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\n\r\n"
		}, 1, []int{200}, [][]byte{pub}, 1},
		{"upgrade", func(h string) string {
			return "GET /media/public/hp/n HTTP/1.1\r\nHost: " + h + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
		}, 1, []int{200}, [][]byte{pub}, 1},
	}
	for _, tt := range rawCases {
		t.Run(tt.name, func(t *testing.T) {
			_, o0 := p.hit.hpCounts()
			got := rawExchange(p.hit, tt.raw(host(p.hit)), "GET", tt.n)
			if tt.handoffs >= 0 {
				_, o := p.hit.hpCounts()
				if o-o0 != float64(tt.handoffs) {
					t.Errorf("hit path handed off %v connections, want %d", o-o0, tt.handoffs)
				}
			}
			ref := rawExchange(p.net, tt.raw(host(p.net)), "GET", tt.n)
			for i := range tt.n {
				var g, r exchange
				if i < len(got) {
					g = got[i]
				}
				if i < len(ref) {
					r = ref[i]
				}
				if g.err != nil || g.status != tt.status[i] || i < len(tt.body) && !bytes.Equal(g.body, tt.body[i]) {
					t.Errorf("hit path answer #%d: %d, %d bytes, %v; want %d", i, g.status, len(g.body), g.err, tt.status[i])
				}
				if r.err != nil || r.status != tt.status[i] {
					t.Errorf("net/http answer #%d: %d, %v; want %d", i, r.status, r.err, tt.status[i])
				}
				if g.status != r.status || !bytes.Equal(g.body, r.body) && tt.status[i] == 200 || g.closed != r.closed {
					t.Errorf("answer #%d: hit path %d (%d bytes, closed %v), net/http %d (%d bytes, closed %v)",
						i, g.status, len(g.body), g.closed, r.status, len(r.body), r.closed)
				}
			}
			if len(got) > tt.n {
				t.Errorf("hit path: %v", got[tt.n].err)
			}
		})
	}

	t.Run("header section over 4 KiB", func(t *testing.T) {
		h0, o0 := e.hpCounts()
		c := e.hpDial()
		r := e.hpGet("hp/n/o", hpHeader("X-Pad", strings.Repeat("p", 5000)))
		c.send(r)
		res, b := c.recv(r)
		hpCheckObject(t, "GET with a 5 KB header", res, b, obj, "HIT")
		e.hpExpect(h0, o0, 0, 1)
		// The connection came back after it.
		r = e.hpGet("hp/n/o", nil)
		c.send(r)
		res, b = c.recv(r)
		hpCheckObject(t, "GET after it", res, b, obj, "HIT")
		e.hpExpect(h0, o0, 1, 1)
		// Again, now after a hit on the hit path: nothing of the hit's
		// request goes into the replay.
		r = e.hpGet("hp/n/o", hpHeader("X-Pad", strings.Repeat("q", 6000)))
		c.send(r)
		res, b = c.recv(r)
		hpCheckObject(t, "GET with a 6 KB header after a hit", res, b, obj, "HIT")
		e.hpExpect(h0, o0, 1, 2)
		// And pipelined: hit, large header, hit.
		reqs := []*http.Request{e.hpGet("hp/n/o", nil), e.hpGet("hp/n/o", hpHeader("X-Pad", strings.Repeat("r", 4500))), e.hpGet("hp/n/o", nil)}
		c.send(reqs...)
		for i, r := range reqs {
			res, b := c.recv(r)
			hpCheckObject(t, fmt.Sprintf("pipelined #%d", i), res, b, obj, "HIT")
		}
		e.hpExpect(h0, o0, 3, 3)
	})

	// Header sections around the read buffer's 4 KiB, each followed by a
	// pipelined GET: one that fits is the hit path's, one that does not is
	// replayed, its bytes and the next request's intact.
	t.Run("header section at 4 KiB", func(t *testing.T) {
		for _, total := range []int{4095, 4096, 4097, 4200, 8192} {
			padded := func() *http.Request {
				pad := 100
				for range 3 {
					r := e.hpGet("hp/n/o", hpHeader("X-Pad", strings.Repeat("p", pad)))
					var buf bytes.Buffer
					_ = r.Write(&buf)
					if buf.Len() == total {
						return r
					}
					pad += total - buf.Len()
				}
				t.Fatalf("could not size a request to %d bytes", total)
				return nil
			}()
			h0, o0 := e.hpCounts()
			c := e.hpDial()
			next := e.hpGet("hp/n/o", nil)
			c.send(padded, next)
			for i, r := range []*http.Request{padded, next} {
				res, b := c.recv(r)
				hpCheckObject(t, fmt.Sprintf("%d-byte request, answer #%d", total, i), res, b, obj, "HIT")
			}
			if total <= 4096 {
				e.hpExpect(h0, o0, 2, 0)
			} else {
				e.hpExpect(h0, o0, 1, 1)
			}
		}
	})

	t.Run("still serving", func(t *testing.T) {
		c := e.hpDial()
		r := e.hpGet("hp/n/o", nil)
		c.send(r)
		res, b := c.recv(r)
		hpCheckObject(t, "GET on a new connection", res, b, obj, "HIT")
	})
}

// TestHitPathAnswersAsNetHTTP: the hit path's answers carry what
// net/http's carry for the same request (the same handler, another
// ResponseWriter): a request with Connection: close goes to net/http on
// the same server.
func TestHitPathAnswersAsNetHTTP(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	sizes := []int{0, 4 << 10, 300 << 10}
	for _, n := range sizes {
		e.stored(fmt.Sprintf("hp/as/%d", n), randomBytes(n, uint64(n)+61))
	}
	etag := e.hpETag("hp/as/4096")
	cases := []struct {
		name string
		req  func() *http.Request
	}{
		{"GET 0 B", func() *http.Request { return e.hpGet("hp/as/0", nil) }},
		{"GET 4 KiB", func() *http.Request { return e.hpGet("hp/as/4096", nil) }},
		{"GET 300 KiB", func() *http.Request { return e.hpGet("hp/as/307200", nil) }},
		{"HEAD", func() *http.Request { return e.hpHead("hp/as/307200", nil) }},
		{"range", func() *http.Request { return e.hpGet("hp/as/4096", hpHeader("Range", "bytes=10-99")) }},
		{"overrides", func() *http.Request {
			return e.hpGet("hp/as/4096?response-content-type=text%2Fplain&response-cache-control=no-store", nil)
		}},
		{"304", func() *http.Request { return e.hpGet("hp/as/4096", hpHeader("If-None-Match", etag)) }},
		{"412", func() *http.Request { return e.hpGet("hp/as/4096", hpHeader("If-Match", `"nope"`)) }},
		{"416", func() *http.Request { return e.hpGet("hp/as/4096", hpHeader("Range", "bytes=9000-")) }},
		{"403", func() *http.Request {
			return e.signed("GET", "/media/hp/as/4096", nil, fullKey, "wrong-secret-000000", time.Now(), "", nil)
		}},
		{"HEAD 403", func() *http.Request {
			return e.signed("HEAD", "/media/hp/as/4096", nil, fullKey, "wrong-secret-000000", time.Now(), "", nil)
		}},
		{"anonymous denied", func() *http.Request {
			r, _ := http.NewRequest("GET", e.srv.URL+"/media/hp/as/4096", nil)
			return r
		}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			h0, o0 := e.hpCounts()
			c := e.hpDial()
			r := tt.req()
			c.send(r)
			hres, hbody := c.recv(r)
			e.hpExpect(h0, o0, 1, 0)
			c = e.hpDial()
			r = tt.req()
			r.Close = true
			c.send(r)
			nres, nbody := c.recv(r)
			e.hpExpect(h0, o0, 1, 1)
			if hres.StatusCode != nres.StatusCode {
				t.Errorf("status: hit path %d, net/http %d", hres.StatusCode, nres.StatusCode)
			}
			if hres.StatusCode < 400 && !bytes.Equal(hbody, nbody) {
				t.Errorf("body: hit path %d bytes, net/http %d, not equal", len(hbody), len(nbody))
			}
			if hres.StatusCode >= 400 {
				var hs, ns s3Error
				_ = xml.Unmarshal(hbody, &hs)
				_ = xml.Unmarshal(nbody, &ns)
				if hs.Code != ns.Code || len(hbody) != len(nbody) {
					t.Errorf("error body: hit path %q (%d bytes), net/http %q (%d bytes)", hs.Code, len(hbody), ns.Code, len(nbody))
				}
			}
			skip := map[string]bool{"Date": true, "X-Amz-Request-Id": true, "Connection": true}
			hk, nk := hpHeaderLines(hres.Header, skip), hpHeaderLines(nres.Header, skip)
			if strings.Join(hk, "\n") != strings.Join(nk, "\n") {
				t.Errorf("headers differ:\nhit path:\n\t%s\nnet/http:\n\t%s", strings.Join(hk, "\n\t"), strings.Join(nk, "\n\t"))
			}
			if _, ok := hres.Header["Date"]; !ok {
				t.Error("hit path answer has no Date")
			}
		})
	}
}

func hpHeaderLines(h http.Header, skip map[string]bool) []string {
	var out []string
	for k, vs := range h {
		if skip[k] {
			continue
		}
		for _, v := range vs {
			out = append(out, k+": "+v)
		}
	}
	sort.Strings(out)
	return out
}

// TestHitPathDeclinedCountedOnce: a miss the hit path declines and
// net/http then serves is fetched, counted and looked up in the cache
// once.
func TestHitPathDeclinedCountedOnce(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	data := randomBytes(40<<10, 71)
	e.up.PutObject(upstreamBucket, "hs1/hp/once", data)
	e.up.PutObject(upstreamBucket, "hs1/hp/once-head", data)
	e.up.PutObject(upstreamBucket, "hs1/hp/once-range", data)
	ok200 := map[string]string{"op": "GetObject", "status": "200"}
	up0, req0, st0 := e.up.Requests(""), e.counter("s3edge_requests_total", ok200), e.cache.Stats()
	h0, o0 := e.hpCounts()

	c := e.hpDial()
	r := e.hpGet("hp/once", nil)
	c.send(r)
	res, b := c.recv(r)
	hpCheckObject(t, "miss", res, b, data, "MISS")
	e.hpExpect(h0, o0, 0, 1)
	e.hpWaitCounter("s3edge_requests_total", ok200, req0+1)
	if got := e.up.Requests("") - up0; got != 1 {
		t.Errorf("upstream requests for one miss = %d, want 1", got)
	}
	st := e.cache.Stats()
	if st.Misses-st0.Misses != 1 || st.Hits != st0.Hits || st.Coalesced != st0.Coalesced || st.Bypass != st0.Bypass {
		t.Errorf("cache counted %d misses, %d hits, %d coalesced, %d bypass for one miss; want 1 miss",
			st.Misses-st0.Misses, st.Hits-st0.Hits, st.Coalesced-st0.Coalesced, st.Bypass-st0.Bypass)
	}

	e.settled("hp/once", len(data))
	r = e.hpGet("hp/once", nil)
	c.send(r)
	res, b = c.recv(r)
	hpCheckObject(t, "hit", res, b, data, "HIT")
	e.hpExpect(h0, o0, 1, 1)
	e.hpWaitCounter("s3edge_requests_total", ok200, req0+2)
	st2 := e.cache.Stats()
	if st2.Hits-st.Hits != 1 || st2.Misses != st.Misses {
		t.Errorf("cache counted %d hits and %d misses for one hit", st2.Hits-st.Hits, st2.Misses-st.Misses)
	}
	if got := e.up.Requests("") - up0; got != 1 {
		t.Errorf("upstream requests = %d after the hit, want 1", got)
	}

	// A HEAD miss: one upstream HEAD, counted once.
	head200 := map[string]string{"op": "HeadObject", "status": "200"}
	heads0, up1 := e.counter("s3edge_requests_total", head200), e.up.Requests("")
	r = e.hpHead("hp/once-head", nil)
	c.send(r)
	if res, _ := c.recv(r); res.StatusCode != 200 {
		t.Errorf("HEAD miss: %d", res.StatusCode)
	}
	e.hpWaitCounter("s3edge_requests_total", head200, heads0+1)
	if got := e.up.Requests("") - up1; got != 1 {
		t.Errorf("upstream requests for one HEAD miss = %d, want 1", got)
	}

	// A range miss: one upstream request, counted once.
	part := map[string]string{"op": "GetObject", "status": "206"}
	parts0, up2, st3 := e.counter("s3edge_requests_total", part), e.up.Requests(""), e.cache.Stats()
	r = e.hpGet("hp/once-range", hpHeader("Range", "bytes=0-9"))
	c.send(r)
	if res, b := c.recv(r); res.StatusCode != 206 || !bytes.Equal(b, data[:10]) {
		t.Errorf("range miss: %d, %d bytes", res.StatusCode, len(b))
	}
	e.hpWaitCounter("s3edge_requests_total", part, parts0+1)
	if got := e.up.Requests("") - up2; got != 1 {
		t.Errorf("upstream requests for one range miss = %d, want 1", got)
	}
	if st4 := e.cache.Stats(); st4.Misses-st3.Misses != 1 {
		t.Errorf("cache counted %d misses for one range miss, want 1", st4.Misses-st3.Misses)
	}
	e.hpExpect(h0, o0, 1, 3)
}

// hpServer starts s3edge on 127.0.0.1:0 through a HitListener with
// options o, served by an http.Server with the same limits, as
// cmd/s3edge serves plain HTTP.
func hpServer(t *testing.T, o proxy.HitOptions) (*env, *proxy.HitListener, *http.Server, <-chan error) {
	t.Helper()
	up := upstreamtest.NewServer(upstreamtest.Shape{}, upstreamBucket)
	t.Cleanup(up.Close)
	pol, err := policy.New(policy.Config{
		Buckets: map[string]policy.Bucket{
			"media": {Upstream: "far", Bucket: upstreamBucket, Prefix: "hs1/", PublicReadPrefixes: []string{"public/"}},
		},
		Credentials: []policy.Credential{
			{AccessKeyID: fullKey, SecretAccessKey: fullSecret, Grants: []policy.Grant{{Bucket: "media", Actions: policy.Read | policy.Write | policy.List | policy.Delete}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(t.TempDir(), "cache")
	// Objects up to 32 MiB are stored whole (sliced ones are not the hit
	// path's).
	c, err := cache.Open(cacheDir, cache.Options{MaxBytes: 64 << 20, SliceSize: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	spool := filepath.Join(t.TempDir(), "spool")
	reg := prometheus.NewRegistry()
	p, err := proxy.New(proxy.Config{
		Metrics:   reg,
		Policy:    func() *policy.Policy { return pol },
		Upstreams: map[string]upstream.Upstream{"far": up.Client()},
		SpoolDir:  spool,
		Cache:     c,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl := p.HitListener(ln, o)
	srv := &http.Server{
		Handler:           p,
		ConnContext:       proxy.ConnContext,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
	}
	served := make(chan error, 1) // Serve's error, then closed
	go func() { served <- srv.Serve(hl); close(served) }()
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hl.Shutdown(ctx)
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Error("http.Server.Serve did not return")
		}
	})
	e := &env{
		t: t, up: up, spoolDir: spool, cache: c, cacheDir: cacheDir, metrics: reg,
		srv: &httptest.Server{URL: "http://" + ln.Addr().String(), Listener: hl},
	}
	return e, hl, srv, served
}

// TestHitPathIdleTimeout: a connection left idle after a hit, or after a
// miss that net/http answered and gave back, is closed after IdleTimeout.
func TestHitPathIdleTimeout(t *testing.T) {
	const d = 600 * time.Millisecond
	e, _, _, _ := hpServer(t, proxy.HitOptions{ReadHeaderTimeout: d, IdleTimeout: d})
	data := randomBytes(4<<10, 81)
	e.stored("hp/idle", data)
	e.up.PutObject(upstreamBucket, "hs1/hp/idle-miss", data)

	t.Run("after a hit", func(t *testing.T) {
		h0, o0 := e.hpCounts()
		c := e.hpDial()
		r := e.hpGet("hp/idle", nil)
		c.send(r)
		res, b := c.recv(r)
		start := time.Now()
		hpCheckObject(t, "hit", res, b, data, "HIT")
		e.hpExpect(h0, o0, 1, 0)
		c.closed(3 * time.Second)
		if took := time.Since(start); took < d-50*time.Millisecond {
			t.Errorf("closed %v after the hit, before the idle timeout of %v", took, d)
		}
	})
	t.Run("after a given-back miss", func(t *testing.T) {
		h0, o0 := e.hpCounts()
		c := e.hpDial()
		r := e.hpGet("hp/idle-miss", nil)
		c.send(r)
		res, b := c.recv(r)
		start := time.Now()
		hpCheckObject(t, "miss", res, b, data, "MISS")
		e.hpExpect(h0, o0, 0, 1)
		c.closed(3 * time.Second)
		if took := time.Since(start); took < d-50*time.Millisecond {
			t.Errorf("closed %v after the miss, before the idle timeout of %v", took, d)
		}
	})
	t.Run("a second request within the timeout", func(t *testing.T) {
		c := e.hpDial()
		for i := range 3 {
			r := e.hpGet("hp/idle", nil)
			c.send(r)
			res, b := c.recv(r)
			hpCheckObject(t, fmt.Sprintf("hit #%d", i), res, b, data, "HIT")
			time.Sleep(d / 3)
		}
	})
	t.Run("nothing sent", func(t *testing.T) {
		c := e.hpDial()
		if took := c.closed(3 * time.Second); took < d-50*time.Millisecond {
			t.Errorf("silent connection closed after %v, before %v", took, d)
		}
	})
}

// TestHitPathReadHeaderTimeout: a header section that does not arrive in
// full within ReadHeaderTimeout ends the connection, however it trickles.
func TestHitPathReadHeaderTimeout(t *testing.T) {
	// The idle timeout is longer: a connection cut after d is cut by
	// ReadHeaderTimeout.
	const d = 300 * time.Millisecond
	e, _, _, _ := hpServer(t, proxy.HitOptions{ReadHeaderTimeout: d, IdleTimeout: 10 * d})
	data := randomBytes(4<<10, 91)
	e.stored("hp/rht", data)
	half := "GET /media/public/x HTTP/1.1\r\nHost: " + e.srv.Listener.Addr().String() + "\r\nX-A:"

	t.Run("half a header", func(t *testing.T) {
		c := e.hpDial()
		c.sendRaw([]byte(half))
		if took := c.closed(5 * time.Second); took < d-50*time.Millisecond || took > 5*d {
			t.Errorf("closed after %v, want about %v", took, d)
		}
	})
	t.Run("half a header after a hit", func(t *testing.T) {
		c := e.hpDial()
		r := e.hpGet("hp/rht", nil)
		c.send(r)
		res, b := c.recv(r)
		hpCheckObject(t, "hit", res, b, data, "HIT")
		c.sendRaw([]byte(half))
		if took := c.closed(5 * time.Second); took < d-50*time.Millisecond || took > 5*d {
			t.Errorf("closed after %v, want about %v", took, d)
		}
	})
	t.Run("trickle", func(t *testing.T) {
		c := e.hpDial()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				_ = c.c.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := c.c.Write([]byte{half[i%len(half)]}); err != nil {
					return
				}
			}
		}()
		took := c.closed(3 * time.Second)
		close(stop)
		<-done
		if took > 5*d {
			t.Errorf("a trickled header held the connection %v (ReadHeaderTimeout %v)", took, d)
		}
	})
}

// TestHitPathIdleTimeoutOnlyBoundsTheWait: with no ReadHeaderTimeout, as
// HitOptions documents it (0: none), the idle timeout bounds the wait for
// a request's first byte, not the reading of its header, as in net/http:
// the same exchanges, timed alike, are answered by net/http with the same
// limits.
func TestHitPathIdleTimeoutOnlyBoundsTheWait(t *testing.T) {
	// Long enough that a loaded machine's late wake-ups (tens of ms under
	// -race beside other packages) stay well inside the margins.
	const d = time.Second
	e, _, _, _ := hpServer(t, proxy.HitOptions{IdleTimeout: d})
	data := randomBytes(4<<10, 95)
	e.stored("public/hp/slow", data)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ref := &http.Server{IdleTimeout: d, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = ref.Serve(ln) }()
	defer ref.Close()

	// A step sends its bytes, or sleeps, or reads n answers.
	type step struct {
		send  string // with %s for the request line's rest: path and host
		sleep time.Duration
		read  int
	}
	const whole = "GET %[1]s HTTP/1.1\r\nHost: %[2]s\r\n\r\n"
	const line = "GET %[1]s HTTP/1.1\r\n"
	const rest = "Host: %[2]s\r\n\r\n"
	scripts := []struct {
		name  string
		steps []step
	}{
		{"header finished after the idle timeout", []step{
			{send: whole}, {read: 1},
			{sleep: d / 3}, {send: line}, {sleep: d}, {send: rest}, {read: 1},
		}},
		{"pipelined header finished after the idle timeout", []step{
			{send: whole}, {read: 1},
			// A request arrives near the end of the idle wait, whole,
			// with the start of the next one.
			{sleep: d / 2}, {send: whole + line}, {read: 1},
			{sleep: d * 3 / 4}, {send: rest}, {read: 1},
		}},
	}
	run := func(t *testing.T, addr, path string, steps []step, check func(*http.Response, []byte) bool) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h := &hpConn{t: t, c: c, br: bufio.NewReader(c)}
		answers := 0
		for i, s := range steps {
			switch {
			case s.send != "":
				h.sendRaw([]byte(fmt.Sprintf(s.send, path, addr)))
			case s.sleep > 0:
				time.Sleep(s.sleep)
			default:
				for range s.read {
					res, b, err := h.tryRecv(hpRaw("GET"))
					if err != nil || !check(res, b) {
						t.Fatalf("step %d, answer #%d: %v", i, answers, err)
					}
					answers++
				}
			}
		}
	}
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			t.Run("net/http", func(t *testing.T) {
				run(t, ln.Addr().String(), "/", sc.steps, func(res *http.Response, b []byte) bool {
					return res.StatusCode == 200 && string(b) == "ok"
				})
			})
			t.Run("hit path", func(t *testing.T) {
				run(t, e.srv.Listener.Addr().String(), "/media/public/hp/slow", sc.steps, func(res *http.Response, b []byte) bool {
					return res.StatusCode == 200 && bytes.Equal(b, data)
				})
			})
		})
	}
}

// TestHitPathShutdown: after the http.Server's Shutdown, the
// HitListener's ends its idle connections and returns at once.
func TestHitPathShutdown(t *testing.T) {
	e, hl, srv, served := hpServer(t, proxy.HitOptions{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second})
	data := randomBytes(4<<10, 101)
	e.stored("public/hp/sd", data)
	h0, o0 := e.hpCounts()
	idle := e.hpDial()
	r := e.hpGet("public/hp/sd", nil)
	idle.send(r)
	res, b := idle.recv(r)
	hpCheckObject(t, "hit", res, b, data, "HIT")
	// A connection net/http keeps: HTTP/1.0 with keep-alive.
	onNet := e.hpDial()
	onNet.sendRaw([]byte("GET /media/public/hp/sd HTTP/1.0\r\nHost: " + e.srv.Listener.Addr().String() + "\r\nConnection: keep-alive\r\n\r\n"))
	res, b = onNet.recv(hpRaw("GET"))
	if res.StatusCode != 200 || !bytes.Equal(b, data) || res.Close {
		t.Fatalf("HTTP/1.0 keep-alive GET: %d, %d bytes, close %v", res.StatusCode, len(b), res.Close)
	}
	e.hpExpect(h0, o0, 1, 1)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("http.Server.Shutdown: %v", err)
	}
	if err := hl.Shutdown(ctx); err != nil {
		t.Errorf("HitListener.Shutdown: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("shutdown took %v with idle connections only", took)
	}
	idle.closed(time.Second)
	onNet.closed(time.Second)
	select {
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("Serve did not return")
	}
	if c, err := net.DialTimeout("tcp", e.srv.Listener.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts after Shutdown")
	}
}

// TestHitPathShutdownCancelled: with its context done, Shutdown closes
// the connections it would wait for, busy ones too, and returns the
// context's error.
func TestHitPathShutdownCancelled(t *testing.T) {
	e, hl, _, _ := hpServer(t, proxy.HitOptions{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second})
	data := randomBytes(4<<10, 111)
	e.stored("public/hp/sdc", data)
	idle := e.hpDial()
	r := e.hpGet("public/hp/sdc", nil)
	idle.send(r)
	res, b := idle.recv(r)
	hpCheckObject(t, "hit", res, b, data, "HIT")
	// Busy: half a header, waiting for the rest for up to 10s.
	busy := e.hpDial()
	busy.sendRaw([]byte("GET /media/public/hp/sdc HTTP/1.1\r\nHost: x\r\n"))
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := hl.Shutdown(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with a done context = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Shutdown with a done context took %v", took)
	}
	idle.closed(time.Second)
	busy.closed(time.Second)
}

// TestHitPathStaleDeclinedCountedOnce: a revalidate-mode entry past its
// TTL is declined by the hit path without being counted or revalidated
// there; net/http revalidates it once.
func TestHitPathStaleDeclinedCountedOnce(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: time.Nanosecond})
	data := randomBytes(8<<10, 121)
	e.stored("hp/stale", data)
	ok200 := map[string]string{"op": "GetObject", "status": "200"}
	up0, req0, st0 := e.up.Requests(""), e.counter("s3edge_requests_total", ok200), e.cache.Stats()
	h0, o0 := e.hpCounts()
	c := e.hpDial()
	r := e.hpGet("hp/stale", nil)
	c.send(r)
	res, b := c.recv(r)
	hpCheckObject(t, "GET past the TTL", res, b, data, "")
	e.hpExpect(h0, o0, 0, 1)
	e.hpWaitCounter("s3edge_requests_total", ok200, req0+1)
	if got := e.up.Requests("") - up0; got != 1 {
		t.Errorf("upstream requests = %d for one revalidation, want 1", got)
	}
	st := e.cache.Stats()
	looked := (st.Hits + st.Misses + st.Coalesced + st.Bypass + st.Stale) - (st0.Hits + st0.Misses + st0.Coalesced + st0.Bypass + st0.Stale)
	if looked != 1 {
		t.Errorf("cache counted %d lookups for one request (hits %d, misses %d, stale %d)", looked,
			st.Hits-st0.Hits, st.Misses-st0.Misses, st.Stale-st0.Stale)
	}

	// A HEAD past the TTL: declined too, revalidated once by net/http.
	up1 := e.up.Requests("HeadObject")
	h1, o1 := e.hpCounts()
	c = e.hpDial()
	r = e.hpHead("hp/stale", nil)
	c.send(r)
	if res, _ := c.recv(r); res.StatusCode != 200 || res.Header.Get("ETag") == "" {
		t.Errorf("HEAD past the TTL: %d, ETag %q", res.StatusCode, res.Header.Get("ETag"))
	}
	e.hpExpect(h1, o1, 0, 1)
	if got := e.up.Requests("HeadObject") - up1; got != 1 {
		t.Errorf("upstream HEADs = %d for one HEAD past the TTL, want 1 (its revalidation)", got)
	}
}

// TestHitPathConcurrentMixed: connections at once, each mixing hits,
// HEADs, misses, uploads and pipelines, all get the right bytes.
func TestHitPathConcurrentMixed(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	objs := map[string][]byte{}
	for i, n := range []int{0, 4 << 10, 40 << 10, 300 << 10} {
		k := fmt.Sprintf("hp/mix/s%d", i)
		objs[k] = randomBytes(n, uint64(130+i))
		e.stored(k, objs[k])
	}
	const workers, rounds = 8, 12
	for i := range workers * rounds {
		k := fmt.Sprintf("hp/mix/m%d", i)
		objs[k] = randomBytes(1<<10+i*97, uint64(200+i))
		e.up.PutObject(upstreamBucket, "hs1/"+k, objs[k])
	}
	stored := []string{"hp/mix/s0", "hp/mix/s1", "hp/mix/s2", "hp/mix/s3"}
	h0, o0 := e.hpCounts()
	addr := e.srv.Listener.Addr().String()
	// Requests are built here: signing needs the test's t.
	type job struct {
		reqs []*http.Request
		want [][]byte // nil: any 200 without body (HEAD, PUT)
	}
	jobs := make([][]job, workers)
	for w := range workers {
		for i := range rounds {
			hit := stored[(w+i)%len(stored)]
			miss := fmt.Sprintf("hp/mix/m%d", w*rounds+i)
			switch i % 4 {
			case 0:
				jobs[w] = append(jobs[w], job{[]*http.Request{e.hpGet(hit, nil)}, [][]byte{objs[hit]}})
			case 1:
				jobs[w] = append(jobs[w], job{[]*http.Request{e.hpHead(hit, nil), e.hpGet(miss, nil), e.hpGet(hit, nil)}, [][]byte{nil, objs[miss], objs[hit]}})
			case 2:
				up := fmt.Sprintf("hp/mix/put%d-%d", w, i)
				body := randomBytes(3<<10+i, uint64(w*1000+i))
				jobs[w] = append(jobs[w], job{
					[]*http.Request{e.signed("PUT", "/media/"+up, body, fullKey, fullSecret, time.Now(), "", nil), e.hpGet(up, nil)},
					[][]byte{nil, body},
				})
			case 3:
				jobs[w] = append(jobs[w], job{[]*http.Request{e.hpGet(miss, nil)}, [][]byte{objs[miss]}})
			}
		}
	}
	errc := make(chan error, workers)
	for w := range workers {
		go func() {
			errc <- func() error {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return err
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(20 * time.Second))
				br := bufio.NewReader(c)
				for j, jb := range jobs[w] {
					var buf bytes.Buffer
					for _, r := range jb.reqs {
						if err := r.Write(&buf); err != nil {
							return err
						}
					}
					if _, err := c.Write(buf.Bytes()); err != nil {
						return fmt.Errorf("worker %d job %d: write: %w", w, j, err)
					}
					for i, r := range jb.reqs {
						res, err := http.ReadResponse(br, r)
						if err != nil {
							return fmt.Errorf("worker %d job %d #%d %s %s: %w", w, j, i, r.Method, r.URL.Path, err)
						}
						b, err := io.ReadAll(res.Body)
						res.Body.Close()
						if err != nil || res.StatusCode != 200 || jb.want[i] != nil && !bytes.Equal(b, jb.want[i]) || jb.want[i] == nil && len(b) != 0 {
							return fmt.Errorf("worker %d job %d #%d %s %s: %d, %d bytes, %v", w, j, i, r.Method, r.URL.Path, res.StatusCode, len(b), err)
						}
					}
				}
				return nil
			}()
		}()
	}
	for range workers {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	// Per worker and 4 rounds: a hit; a HEAD hit, a miss, a hit; an
	// upload and a hit of it; a miss.
	e.hpExpect(h0, o0, workers*rounds/4*4, workers*rounds/4*3)
	e.spoolEmpty()
}

// TestHitPathUpstreamFailsOnHandedOffMiss: a miss whose upstream body
// breaks off, handed to net/http from a hit-path connection, ends that
// connection after the bytes it got (the client sees a short body, never
// another response's bytes in it); the next connection refetches.
func TestHitPathUpstreamFailsOnHandedOffMiss(t *testing.T) {
	for _, fault := range []upstreamtest.Fault{upstreamtest.ResetAfter(100 << 10), upstreamtest.ShortBody(100 << 10)} {
		t.Run(fault.String(), func(t *testing.T) {
			e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
			a := randomBytes(4<<10, 141)
			e.stored("hp/uf/a", a)
			data := randomBytes(300<<10, 142)
			e.up.PutObject(upstreamBucket, "hs1/hp/uf/f", data)
			e.up.SetShape(upstreamtest.Shape{Fail: upstreamtest.FailFirst(1, "GetObject", fault)})
			c := e.hpDial()
			reqs := []*http.Request{e.hpGet("hp/uf/a", nil), e.hpGet("hp/uf/f", nil), e.hpGet("hp/uf/a", nil)}
			c.send(reqs...)
			res, b := c.recv(reqs[0])
			hpCheckObject(t, "hit before the failing miss", res, b, a, "HIT")
			res, b, err := c.tryRecv(reqs[1])
			if err == nil {
				t.Fatalf("failed miss read as a whole response: %d, %d bytes", res.StatusCode, len(b))
			}
			if len(b) > 0 && !bytes.Equal(b, data[:len(b)]) {
				t.Errorf("the %d bytes of the failed miss are not the object's first bytes", len(b))
			}
			c.closed(3 * time.Second)
			c = e.hpDial()
			r := e.hpGet("hp/uf/f", nil)
			c.send(r)
			res, b = c.recv(r)
			hpCheckObject(t, "refetch", res, b, data, "MISS")
		})
	}
}

// TestHitPathShutdownBusy: Shutdown lets a hit-path connection busy
// with a response finish it, and then ends the connection without
// answering the request pipelined behind it, as net/http does.
func TestHitPathShutdownBusy(t *testing.T) {
	e, hl, srv, _ := hpServer(t, proxy.HitOptions{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second})
	var h0, o0 float64
	hpBusyShutdown(t, e, func() { h0, o0 = e.hpCounts() }, func(ctx context.Context) error {
		if err := srv.Shutdown(ctx); err != nil {
			return err
		}
		return hl.Shutdown(ctx)
	})
	e.hpExpect(h0, o0, 1, 0)
}

// hpBusyShutdown pipelines two GETs of an object larger than the socket
// buffers hold, reads part of the first answer, shuts the server down,
// and reads on: the first answer must end whole, then the connection.
func hpBusyShutdown(t *testing.T, e *env, ready func(), shutdown func(context.Context) error) {
	data := randomBytes(16<<20, 151)
	e.stored("public/hp/busy", data)
	ready()
	c := e.hpDial()
	reqs := []*http.Request{e.hpGet("public/hp/busy", nil), e.hpGet("public/hp/busy", nil)}
	c.send(reqs...)
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(c.br, reqs[0])
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1<<20)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		t.Fatal(err)
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- shutdown(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	rest, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || !bytes.Equal(append(first, rest...), data) {
		t.Errorf("the answer in progress at Shutdown: %d of %d bytes, %v", len(first)+len(rest), len(data), err)
	}
	_ = c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if b, err := c.br.Peek(1); err == nil {
		res, _, err := c.tryRecv(reqs[1])
		status := 0
		if res != nil {
			status = res.StatusCode
		}
		t.Errorf("the pipelined request was answered after Shutdown (%d %q, %v)", status, b, err)
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("connection not ended after the answer in progress: %v", err)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(6 * time.Second):
		t.Error("Shutdown did not return")
	}
}
