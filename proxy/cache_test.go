package proxy_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/cache/blob"
	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

func cachedEnv(t testing.TB, shape upstreamtest.Shape, rule policy.CacheRule) *env {
	return newEnv(t, envOptions{shape: shape, rule: rule, cache: &cache.Options{MaxBytes: 256 << 20, SliceSize: 1 << 20}})
}

// get fetches a key through s3edge with the full-access key.
func (e *env) get(key string, hdr map[string]string) (*http.Response, []byte, error) {
	e.t.Helper()
	r := e.signed("GET", "/media/"+key, nil, fullKey, fullSecret, time.Now(), "", func(r *http.Request) {
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
	})
	res, err := e.httpClient().Do(r)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

func (e *env) mustGet(key string, want []byte, xcache string) {
	e.t.Helper()
	res, b, err := e.get(key, nil)
	if err != nil {
		e.t.Fatalf("GET %s: %v", key, err)
	}
	if res.StatusCode != 200 || !bytes.Equal(b, want) {
		e.t.Fatalf("GET %s = %d, %d bytes; want 200 and %d bytes", key, res.StatusCode, len(b), len(want))
	}
	if got := res.Header.Get("X-Cache"); xcache != "" && got != xcache {
		e.t.Errorf("GET %s X-Cache = %q, want %q", key, got, xcache)
	}
}

// settled waits, bounded, until the fill of key has been committed: a
// client has all the bytes slightly before the cache has fsynced and renamed
// the file, and a GET in between joins the fill (COALESCED).
func (e *env) settled(key string, size int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m, ok := e.cache.Stat(cache.Key{Bucket: "media", Object: key}); ok && m.Size == int64(size) {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s was not stored within 10s", key)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stored puts data at the upstream under key, reads it once through the
// proxy (a MISS) and waits until the cache has committed it.
func (e *env) stored(key string, data []byte) {
	e.t.Helper()
	e.up.PutObject(upstreamBucket, "hs1/"+key, data)
	e.mustGet(key, data, "MISS")
	e.settled(key, len(data))
}

// storedRange GETs rng of key until it is a HIT (every slice it touches
// stored), checking each answer's bytes.
func (e *env) storedRange(key, rng string, want []byte) {
	e.t.Helper()
	for i := 0; ; i++ {
		res, b, err := e.get(key, map[string]string{"Range": rng})
		if err != nil || res.StatusCode != 206 || !bytes.Equal(b, want) {
			e.t.Fatalf("range GET %s %s: %v, %d bytes; want 206 and %d bytes", key, rng, err, len(b), len(want))
		}
		if res.Header.Get("X-Cache") == "HIT" {
			return
		}
		if i == 500 {
			e.t.Fatalf("range %s of %s never became a hit", rng, key)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCacheHitAfterMiss(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	data := randomBytes(300<<10, 1)
	e.up.PutObject(upstreamBucket, "hs1/local_content/ab/cd/x", data)
	e.mustGet("local_content/ab/cd/x", data, "MISS")
	e.settled("local_content/ab/cd/x", len(data))
	for range 3 {
		e.mustGet("local_content/ab/cd/x", data, "HIT")
	}
	if n := e.up.Requests("GetObject"); n != 1 {
		t.Errorf("upstream GETs = %d, want 1", n)
	}
	// HEAD of a stored object is answered locally too.
	r := e.signed("HEAD", "/media/local_content/ab/cd/x", nil, fullKey, fullSecret, time.Now(), "", nil)
	res, err := e.httpClient().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.ContentLength != int64(len(data)) || res.Header.Get("X-Cache") != "HIT" || e.up.Requests("HeadObject") != 0 {
		t.Errorf("HEAD = %d len %d X-Cache %q, upstream HEADs %d", res.StatusCode, res.ContentLength, res.Header.Get("X-Cache"), e.up.Requests("HeadObject"))
	}
	// Ranges and conditionals are answered from the stored copy.
	res, b, err := e.get("local_content/ab/cd/x", map[string]string{"Range": "bytes=100-199"})
	if err != nil || res.StatusCode != 206 || !bytes.Equal(b, data[100:200]) || res.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(data)) {
		t.Errorf("range on a hit: %v %v %d bytes %q", err, res.StatusCode, len(b), res.Header.Get("Content-Range"))
	}
	res, _, _ = e.get("local_content/ab/cd/x", map[string]string{"If-None-Match": res.Header.Get("ETag")})
	if res.StatusCode != 304 {
		t.Errorf("If-None-Match on a hit = %d, want 304", res.StatusCode)
	}
	if n := e.up.Requests("GetObject"); n != 1 {
		t.Errorf("upstream GETs = %d after ranges and conditionals, want 1", n)
	}
}

// TestCacheCoalescing: 64 clients missing on one key at once cause one
// upstream GET; each gets the whole object.
func TestCacheCoalescing(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{FirstByte: 100 * time.Millisecond, BytesPerSec: 64 << 20}, policy.CacheRule{})
	data := randomBytes(8<<20, 2)
	e.up.PutObject(upstreamBucket, "hs1/big", data)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	var mu sync.Mutex
	xcache := map[string]int{}
	for range 64 {
		wg.Go(func() {
			res, b, err := e.get("big", nil)
			if err == nil && !bytes.Equal(b, data) {
				err = fmt.Errorf("got %d bytes, want %d", len(b), len(data))
			}
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			xcache[res.Header.Get("X-Cache")]++
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := e.up.Requests("GetObject"); n != 1 {
		t.Errorf("upstream GETs = %d for 64 concurrent misses, want 1", n)
	}
	// One client started the fill; the others joined it (or, arriving
	// after it was stored, hit).
	if xcache["MISS"] != 1 || xcache["MISS"]+xcache["COALESCED"]+xcache["HIT"] != 64 {
		t.Errorf("X-Cache of the 64 GETs = %v, want one MISS and the rest COALESCED or HIT", xcache)
	}
}

// TestCacheLeaderLeaves: the client whose miss started the fill goes away;
// the others still get the whole object and it is stored.
func TestCacheLeaderLeaves(t *testing.T) {
	// A 2 s fill: the joiners arrive while it runs, however loaded the
	// machine.
	e := cachedEnv(t, upstreamtest.Shape{BytesPerSec: 2 << 20}, policy.CacheRule{})
	data := randomBytes(4<<20, 3)
	e.up.PutObject(upstreamBucket, "hs1/v", data)
	ctx, cancel := context.WithCancel(t.Context())
	r := e.signed("GET", "/media/v", nil, fullKey, fullSecret, time.Now(), "", nil).WithContext(ctx)
	res, err := e.httpClient().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(res.Body, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { e.mustGet("v", data, "COALESCED") })
	}
	cancel() // the leader leaves mid-body
	res.Body.Close()
	wg.Wait()
	e.settled("v", len(data))
	e.mustGet("v", data, "HIT")
	if n := e.up.Requests("GetObject"); n != 1 {
		t.Errorf("upstream GETs = %d, want 1", n)
	}
}

// TestCacheUpstreamFailsMidBody: a reset or a short body from the upstream
// aborts the client's response, stores nothing, and the next GET refetches.
func TestCacheUpstreamFailsMidBody(t *testing.T) {
	for _, fault := range []upstreamtest.Fault{upstreamtest.ResetAfter(200 << 10), upstreamtest.ShortBody(200 << 10)} {
		t.Run(fault.String(), func(t *testing.T) {
			e := cachedEnv(t, upstreamtest.Shape{Fail: upstreamtest.FailFirst(1, "GetObject", fault)}, policy.CacheRule{})
			data := randomBytes(1<<20, 4)
			e.up.PutObject(upstreamBucket, "hs1/f", data)
			res, b, err := e.get("f", nil)
			if err == nil && bytes.Equal(b, data) {
				t.Fatal("a failed upstream body reached the client whole")
			}
			if err == nil && res.StatusCode == 200 {
				t.Fatalf("the client got a clean 200 with %d of %d bytes", len(b), len(data))
			}
			e.mustGet("f", data, "MISS")
			e.settled("f", len(data))
			e.mustGet("f", data, "HIT")
			if n := e.up.Requests("GetObject"); n != 2 {
				t.Errorf("upstream GETs = %d, want 2", n)
			}
			tmp, _ := os.ReadDir(filepath.Join(e.cacheDir, "tmp"))
			if len(tmp) != 0 {
				t.Errorf("%d temp files left in the cache", len(tmp))
			}
		})
	}
}

// TestCachePutThenGet: an upload becomes the cache entry; reading it back
// costs no upstream GET.
func TestCachePutThenGet(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	c := e.client(fullKey, fullSecret)
	data := randomBytes(200<<10, 5)
	if _, err := c.PutObject(ctx(t), putInput("media", "local_thumbnails/a/b/c/32-32-image-png-crop", data)); err != nil {
		t.Fatal(err)
	}
	e.mustGet("local_thumbnails/a/b/c/32-32-image-png-crop", data, "HIT")
	if n := e.up.Requests("GetObject"); n != 0 {
		t.Errorf("upstream GETs = %d after PUT then GET, want 0", n)
	}
	// An overwrite replaces the entry; a delete removes it.
	data2 := randomBytes(100<<10, 6)
	if _, err := c.PutObject(ctx(t), putInput("media", "local_thumbnails/a/b/c/32-32-image-png-crop", data2)); err != nil {
		t.Fatal(err)
	}
	e.mustGet("local_thumbnails/a/b/c/32-32-image-png-crop", data2, "HIT")
	e.spoolEmpty()
}

// TestCacheFillRacingPut: a GET whose fill is streaming the old bytes when
// a PUT replaces them never stores them over the new ones.
func TestCacheFillRacingPut(t *testing.T) {
	// Paced: the fill has read the old object and is still receiving it
	// when the PUT lands.
	e := cachedEnv(t, upstreamtest.Shape{BytesPerSec: 200 << 10}, policy.CacheRule{})
	old, fresh := randomBytes(100<<10, 7), randomBytes(100<<10, 8)
	e.up.PutObject(upstreamBucket, "hs1/r", old)
	c := e.client(fullKey, fullSecret)
	out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("r")})
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 1000)
	if _, err := io.ReadFull(out.Body, first); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx(t), putInput("media", "r", fresh)); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(out.Body) // the old bytes are fine for this client
	out.Body.Close()
	if err != nil || !bytes.Equal(append(first, rest...), old) {
		t.Fatalf("the GET that started first: %d bytes, %v; want the old object", len(first)+len(rest), err)
	}
	if err := e.cache.Drain(ctx(t)); err != nil { // the old fill has ended, committed or not
		t.Fatal(err)
	}
	for range 2 {
		_, b, err := e.get("r", nil)
		if err != nil || !bytes.Equal(b, fresh) {
			t.Fatalf("after the PUT, GET returned old or broken bytes (%d bytes, old: %v, %v)", len(b), bytes.Equal(b, old), err)
		}
	}
}

// TestCacheUpstreamDown: hits keep working; misses fail fast with 503 and
// Retry-After.
func TestCacheUpstreamDown(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	data := randomBytes(10<<10, 9)
	e.up.PutObject(upstreamBucket, "hs1/h", data)
	e.up.PutObject(upstreamBucket, "hs1/m", data)
	e.mustGet("h", data, "MISS")
	e.settled("h", len(data))
	e.up.Close()
	e.mustGet("h", data, "HIT")
	start := time.Now()
	res, _, err := e.get("m", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Errorf("miss with the upstream down = %d, Retry-After %q; want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("miss took %v to fail", d)
	}
}

// TestCacheRevalidate: a revalidate-mode entry is checked with the stored
// ETag after its TTL, and served stale when the upstream fails if allowed.
func TestCacheRevalidate(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{Mode: policy.CacheRevalidate, TTL: time.Nanosecond, StaleIfError: true})
	v1, v2 := randomBytes(10<<10, 10), randomBytes(10<<10, 11)
	e.up.PutObject(upstreamBucket, "hs1/rv", v1)
	e.mustGet("rv", v1, "MISS")
	e.settled("rv", len(v1))
	e.mustGet("rv", v1, "HIT")
	if n := e.up.Requests("HeadObject"); n == 0 {
		t.Error("no revalidation request after the TTL")
	}
	e.up.PutObject(upstreamBucket, "hs1/rv", v2) // changed behind s3edge's back
	_, b, err := e.get("rv", nil)
	if err != nil || !bytes.Equal(b, v2) {
		t.Errorf("after an upstream change: %d bytes, %v; want the new version", len(b), err)
	}
	e.settled("rv", len(v2))
	e.up.SetShape(upstreamtest.Shape{Fail: func(*http.Request) upstreamtest.Fault { return upstreamtest.Status(500) }})
	e.mustGet("rv", v2, "STALE")
}

// TestCacheRanges: a range of a large object fetches only the slices it
// touches, and the same range again is a hit.
func TestCacheRanges(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	data := randomBytes(20<<20, 12)
	e.up.PutObject(upstreamBucket, "hs1/video", data)
	e.up.Reset()
	for i, want := range []string{"MISS", "HIT"} {
		if i > 0 {
			// Slices are stored when complete; wait for the one read.
			deadline := time.Now().Add(10 * time.Second)
			for e.cache.Stats().Entries == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}
		res, b, err := e.get("video", map[string]string{"Range": "bytes=10485760-11534335"})
		if err != nil || res.StatusCode != 206 || !bytes.Equal(b, data[10<<20:11<<20]) {
			t.Fatalf("range read %d: %v %v %d bytes", i, err, res.StatusCode, len(b))
		}
		if got := res.Header.Get("X-Cache"); got != want {
			t.Errorf("range read %d X-Cache = %q, want %q", i, got, want)
		}
	}
	if sent := e.up.BytesSent(); sent > 4<<20 {
		t.Errorf("upstream sent %d bytes for a 1 MiB range of a 20 MiB object", sent)
	}
}

// TestHitsOnOneConnectionDoNotStall: cached responses are corked while they
// are written and must be released at their end. A response held back (the
// kernel releases a corked tail only after 200 ms), or one that waits on an
// ACK, shows as a stall on a reused connection; the classic case is a body
// just under 64 KiB. 120 sequential hits, 4 KiB to 256 KiB, over one
// connection must take well under one such stall each.
func TestHitsOnOneConnectionDoNotStall(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	sizes := []int{4 << 10, 64<<10 - 300, 64 << 10, 256 << 10}
	for i, n := range sizes {
		e.stored(fmt.Sprintf("s%d", i), randomBytes(n, uint64(i)))
	}
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer hc.CloseIdleConnections()
	var conns atomic.Int32
	start := time.Now()
	const rounds = 30
	for range rounds {
		for i, n := range sizes {
			r := e.signed("GET", fmt.Sprintf("/media/s%d", i), nil, fullKey, fullSecret, time.Now(), "", nil)
			r = r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
				GotConn: func(ci httptrace.GotConnInfo) {
					if !ci.Reused {
						conns.Add(1)
					}
				},
			}))
			res, err := hc.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 || len(b) != n || res.Header.Get("X-Cache") != "HIT" {
				t.Fatalf("s%d: status %d, %d of %d bytes, X-Cache %q, %v", i, res.StatusCode, len(b), n, res.Header.Get("X-Cache"), err)
			}
		}
	}
	took := time.Since(start)
	if conns.Load() != 1 {
		t.Errorf("%d connections, want 1 reused throughout", conns.Load())
	}
	// A stall per response would be 120 × 40–200 ms: 5–24 s.
	if took > 3*time.Second {
		t.Errorf("%d hits on one connection took %v: responses stall", rounds*len(sizes), took)
	}
	t.Logf("%d hits on one connection in %v", rounds*len(sizes), took)
}

// fileConnListener wraps accepted connections in fileConn.
type fileConnListener struct {
	net.Listener
	fileBytes, writeBytes *atomic.Int64
	fileCalls             *atomic.Int64 // ReadFrom calls with a file; may be nil
}

func (l fileConnListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return fileConn{c.(*net.TCPConn), l.fileBytes, l.writeBytes, l.fileCalls}, nil
}

// fileConn counts the bytes net/http hands it as a file (the sendfile path:
// a *os.File, alone or under one io.LimitedReader, which TCPConn.ReadFrom
// turns into sendfile) apart from the bytes it writes from memory.
type fileConn struct {
	*net.TCPConn
	fileBytes, writeBytes *atomic.Int64
	fileCalls             *atomic.Int64
}

func (c fileConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.writeBytes.Add(int64(n))
	return n, err
}

func (c fileConn) ReadFrom(r io.Reader) (int64, error) {
	src := r
	if lr, ok := r.(*io.LimitedReader); ok {
		src = lr.R
	}
	if _, ok := src.(*os.File); !ok {
		return io.Copy(struct{ io.Writer }{c}, r) // not a file: counted as writes
	}
	n, err := c.TCPConn.ReadFrom(r)
	c.fileBytes.Add(n)
	if c.fileCalls != nil {
		c.fileCalls.Add(1)
	}
	return n, err
}

// TestHitSendfileCallsBySize: a hit of up to 256 KiB goes out in 64 KiB
// sendfile calls, which cost the kernel half as much as one call; a larger
// one in a single call.
func TestHitSendfileCallsBySize(t *testing.T) {
	var fileBytes, writeBytes, calls atomic.Int64
	e := newEnv(t, envOptions{
		cache:    &cache.Options{MaxBytes: 64 << 20, SliceSize: 4 << 20},
		listener: func(l net.Listener) net.Listener { return fileConnListener{l, &fileBytes, &writeBytes, &calls} },
	})
	for _, c := range []struct {
		size  int
		calls int64
	}{{100 << 10, 2}, {256 << 10, 4}, {256<<10 + 1, 1}, {1 << 20, 1}} {
		key := fmt.Sprintf("obj-%d", c.size)
		data := randomBytes(c.size, uint64(c.size))
		e.up.PutObject(upstreamBucket, "hs1/"+key, data)
		ok200 := map[string]string{"op": "GetObject", "status": "200"}
		req0 := e.counter("s3edge_requests_total", ok200)
		e.get(key, nil)
		e.settled(key, c.size)
		// The miss's last write may be counted after its client is done;
		// its request is counted after that.
		settle(func() bool { return e.counter("s3edge_requests_total", ok200) > req0 })
		fileBytes.Store(0)
		calls.Store(0)
		res, body, err := e.get(key, nil)
		if err != nil || res.StatusCode != 200 || !bytes.Equal(body, data) || res.Header.Get("X-Cache") != "HIT" {
			t.Fatalf("%d bytes: %v, status %d, X-Cache %q, %d bytes back", c.size, err, res.StatusCode, res.Header.Get("X-Cache"), len(body))
		}
		if !settle(func() bool { return fileBytes.Load() == int64(c.size) && calls.Load() == c.calls }) {
			t.Errorf("%d bytes: %d sent as a file in %d calls, want all in %d", c.size, fileBytes.Load(), calls.Load(), c.calls)
		}
	}
}

// TestMissesGoThroughSendfile: clients of an object that is still arriving
// from a slow upstream get its bytes through sendfile from the fill's files
// as they reach the disk, whole object or slices; a fill that is not stored
// (above max_object_size) is copied from memory. Every client gets the
// exact bytes.
func TestMissesGoThroughSendfile(t *testing.T) {
	var fileBytes, writeBytes atomic.Int64
	e := newEnv(t, envOptions{
		shape:    upstreamtest.Shape{BytesPerSec: 16 << 20},
		cache:    &cache.Options{MaxBytes: 256 << 20, SliceSize: 1 << 20, MaxObjectSize: 7 << 20},
		listener: func(l net.Listener) net.Listener { return fileConnListener{l, &fileBytes, &writeBytes, nil} },
	})
	whole := randomBytes(3<<20, 31)  // stored whole
	sliced := randomBytes(6<<20, 32) // above the slice threshold: stored in 1 MiB slices
	big := randomBytes(8<<20, 33)    // above max_object_size: not stored
	for k, b := range map[string][]byte{"whole": whole, "sliced": sliced, "big": big} {
		e.up.PutObject(upstreamBucket, "hs1/"+k, b)
	}
	const clients = 4
	for _, c := range []struct {
		key      string
		want     []byte
		file     bool
		maxWrite int64
	}{{"whole", whole, true, clients * 4096}, {"sliced", sliced, true, clients * 4096}, {"big", big, false, 0}} {
		fileBytes.Store(0)
		writeBytes.Store(0)
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				res, body, err := e.get(c.key, nil)
				if err != nil || res.StatusCode != 200 || !bytes.Equal(body, c.want) {
					t.Errorf("%s: %v, %d bytes", c.key, err, len(body))
					return
				}
				if x := res.Header.Get("X-Cache"); x != "MISS" && x != "COALESCED" && (c.file || x != "BYPASS") {
					t.Errorf("%s: X-Cache %q, want a miss", c.key, x)
				}
			})
		}
		wg.Wait()
		total := int64(clients * len(c.want))
		var f, w int64
		settle(func() bool {
			f, w = fileBytes.Load(), writeBytes.Load()
			return c.file && f >= total || !c.file && w >= total
		})
		f, w = fileBytes.Load(), writeBytes.Load()
		switch {
		case c.file && (f != total || w > c.maxWrite):
			t.Errorf("%s: %d bytes sent as a file, %d written from memory; want all %d as a file and only the headers written", c.key, f, w, total)
		case !c.file && (f != 0 || w < total):
			t.Errorf("%s (not stored): %d bytes sent as a file, %d written from memory; want all %d from memory", c.key, f, w, total)
		}
		if c.key == "sliced" {
			if n := e.up.Requests("GetObject"); n != 2 {
				t.Errorf("upstream GETs = %d, want 2 (one per stored object)", n)
			}
		}
	}
}

// TestHitsGoThroughSendfile: a hit on a stored object larger than the small
// body threshold, whole or a range over stored slices, reaches the
// connection as a file (sendfile), not as bytes copied through memory.
func TestHitsGoThroughSendfile(t *testing.T) {
	var fileBytes, writeBytes atomic.Int64
	e := newEnv(t, envOptions{
		cache:    &cache.Options{MaxBytes: 256 << 20, SliceSize: 1 << 20},
		listener: func(l net.Listener) net.Listener { return fileConnListener{l, &fileBytes, &writeBytes, nil} },
	})
	whole := randomBytes(3<<20, 21)  // stored whole
	sliced := randomBytes(6<<20, 22) // above the slice threshold: stored in 1 MiB slices
	e.up.PutObject(upstreamBucket, "hs1/whole", whole)
	e.up.PutObject(upstreamBucket, "hs1/sliced", sliced)
	e.mustGet("whole", whole, "")
	e.settled("whole", len(whole))
	rng := map[string]string{"Range": "bytes=1000-4500000"}
	e.storedRange("sliced", rng["Range"], sliced[1000:4500001])
	for _, c := range []struct {
		key  string
		hdr  map[string]string
		want []byte
	}{{"whole", nil, whole}, {"sliced", rng, sliced[1000:4500001]}} {
		fileBytes.Store(0)
		writeBytes.Store(0)
		res, body, err := e.get(c.key, c.hdr)
		if err != nil || res.Header.Get("X-Cache") != "HIT" || !bytes.Equal(body, c.want) {
			t.Fatalf("%s: %v, X-Cache %q, %d bytes", c.key, err, res.Header.Get("X-Cache"), len(body))
		}
		settle(func() bool { return fileBytes.Load() >= int64(len(c.want)) })
		if f, w := fileBytes.Load(), writeBytes.Load(); f != int64(len(c.want)) || w > 4096 {
			t.Errorf("%s hit: %d bytes sent as a file, %d written from memory; want all %d as a file and only the header written",
				c.key, f, w, len(c.want))
		}
	}
}

// TestCacheWritesInvalidate: every write that replaces or removes a cached
// key through the proxy (CopyObject, CompleteMultipartUpload, DeleteObject,
// DeleteObjects) makes the next GET see the upstream's new state, never the
// cached bytes.
func TestCacheWritesInvalidate(t *testing.T) {
	e := cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{})
	c := e.client(fullKey, fullSecret)
	src := randomBytes(20<<10, 30)
	e.up.PutObject(upstreamBucket, "hs1/src", src)
	cached := func(key string) []byte {
		t.Helper()
		b := randomBytes(20<<10, uint64(len(key)))
		e.up.PutObject(upstreamBucket, "hs1/"+key, b)
		e.mustGet(key, b, "MISS")
		e.settled(key, len(b))
		e.mustGet(key, b, "HIT")
		return b
	}
	status := func(key string) int {
		t.Helper()
		res, _, err := e.get(key, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode
	}

	cached("copied")
	if _, err := c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String("media"), Key: aws.String("copied"),
		CopySource: aws.String("media/src")}); err != nil {
		t.Fatal(err)
	}
	e.mustGet("copied", src, "")

	cached("completed")
	part := randomBytes(10<<10, 31)
	mp, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String("media"), Key: aws.String("completed")})
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String("media"), Key: aws.String("completed"),
		UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(part)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String("media"), Key: aws.String("completed"),
		UploadId: mp.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: up.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	e.mustGet("completed", part, "")

	cached("deleted")
	if _, err := c.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String("media"), Key: aws.String("deleted")}); err != nil {
		t.Fatal(err)
	}
	if s := status("deleted"); s != http.StatusNotFound {
		t.Errorf("GET after DeleteObject = %d, want 404", s)
	}

	cached("batch1")
	cached("batch2")
	if _, err := c.DeleteObjects(ctx(t), &s3.DeleteObjectsInput{Bucket: aws.String("media"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("batch1")}, {Key: aws.String("batch2")}}}}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"batch1", "batch2"} {
		if s := status(k); s != http.StatusNotFound {
			t.Errorf("GET %s after DeleteObjects = %d, want 404", k, s)
		}
	}
}

// TestCacheHitReplaysHeaders: a hit answers with the headers the upstream
// gave (type, encoding, disposition, user metadata, ETag, Last-Modified;
// gofakes3 keeps no Cache-Control or Content-Language to check), and
// X-Cache can be turned off.
func TestCacheHitReplaysHeaders(t *testing.T) {
	for _, noXCache := range []bool{false, true} {
		e := newEnv(t, envOptions{rule: policy.CacheRule{}, noXCache: noXCache,
			cache: &cache.Options{MaxBytes: 256 << 20, SliceSize: 1 << 20}})
		c := e.client(fullKey, fullSecret)
		body := randomBytes(30<<10, 40)
		if _, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("h"), Body: bytes.NewReader(body),
			ContentType: aws.String("image/webp"), ContentDisposition: aws.String(`inline; filename="a.webp"`),
			ContentEncoding: aws.String("identity"),
			Metadata:        map[string]string{"sha": "abc", "origin": "matrix.example"}}); err != nil {
			t.Fatal(err)
		}
		e.cache.Invalidate(cache.Key{Bucket: "media", Object: "h"}) // make the first GET a miss
		get := func() (*s3.GetObjectOutput, string) {
			var res *http.Response
			out, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("h")},
				func(o *s3.Options) { o.HTTPClient = captureDoer{e.httpClient(), &res} })
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil || !bytes.Equal(b, body) {
				t.Fatalf("GET: %d bytes, %v", len(b), err)
			}
			return out, res.Header.Get("X-Cache")
		}
		miss, xm := get()
		e.settled("h", len(body))
		hit, xh := get()
		switch {
		case noXCache && (xm != "" || xh != ""):
			t.Errorf("X-Cache turned off, yet sent: %q, %q", xm, xh)
		case !noXCache && (xm != "MISS" || xh != "HIT"):
			t.Errorf("X-Cache = %q then %q, want MISS then HIT", xm, xh)
		}
		etag := `"` + hex.EncodeToString(md5Sum(body)) + `"`
		for name, got := range map[string][3]string{
			"Content-Type":        {"image/webp", aws.ToString(miss.ContentType), aws.ToString(hit.ContentType)},
			"Content-Disposition": {`inline; filename="a.webp"`, aws.ToString(miss.ContentDisposition), aws.ToString(hit.ContentDisposition)},
			"Content-Encoding":    {"identity", aws.ToString(miss.ContentEncoding), aws.ToString(hit.ContentEncoding)},
			"ETag":                {etag, aws.ToString(miss.ETag), aws.ToString(hit.ETag)},
		} {
			if got[1] != got[0] || got[2] != got[0] {
				t.Errorf("%s: miss %q, hit %q; want %q", name, got[1], got[2], got[0])
			}
		}
		if !aws.ToTime(miss.LastModified).Equal(aws.ToTime(hit.LastModified)) || miss.LastModified == nil {
			t.Errorf("Last-Modified: miss %v, hit %v", miss.LastModified, hit.LastModified)
		}
		if hit.Metadata["sha"] != "abc" || hit.Metadata["origin"] != "matrix.example" || len(hit.Metadata) != 2 {
			t.Errorf("hit metadata = %v", hit.Metadata)
		}
	}
}

func md5Sum(b []byte) []byte {
	s := md5.Sum(b)
	return s[:]
}

// captureDoer records the last response, for its headers.
type captureDoer struct {
	c   *http.Client
	res **http.Response
}

func (d captureDoer) Do(r *http.Request) (*http.Response, error) {
	res, err := d.c.Do(r)
	*d.res = res
	return res, err
}

// TestCacheMissTimeout: a provider that accepts the request and never
// answers costs a miss the miss timeout, not the upstream client's retries:
// 503 with Retry-After; the fetch goes on and the next GET is served.
func TestCacheMissTimeout(t *testing.T) {
	e := newEnv(t, envOptions{shape: upstreamtest.Shape{FirstByte: 2 * time.Second},
		cache: &cache.Options{MaxBytes: 256 << 20, SliceSize: 1 << 20, MissTimeout: 200 * time.Millisecond}})
	data := randomBytes(10<<10, 50)
	e.up.PutObject(upstreamBucket, "hs1/slow", data)
	start := time.Now()
	res, _, err := e.get("slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || d > 1500*time.Millisecond {
		t.Fatalf("miss on a silent upstream = %d, Retry-After %q, after %v; want 503 with Retry-After before the upstream answers",
			res.StatusCode, res.Header.Get("Retry-After"), d)
	}
	e.settled("slow", len(data)) // the fetch went on
	e.mustGet("slow", data, "HIT")
	if n := e.up.Requests("GetObject"); n != 1 {
		t.Errorf("upstream GETs = %d, want 1", n)
	}
}

// fullDisk is a cache store whose disk can be made full.
type fullDisk struct {
	cache.Store
	full atomic.Bool
}

func (d *fullDisk) Create() (cache.Temp, error) {
	if d.full.Load() {
		return nil, &os.PathError{Op: "open", Path: "tmp/fill", Err: syscall.ENOSPC}
	}
	return d.Store.Create()
}

// TestCacheDiskFull: with the cache's disk full, GETs and PUTs keep working
// as pass-through (BYPASS), and storing resumes once there is room.
func TestCacheDiskFull(t *testing.T) {
	ds, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{Store: ds}
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	e := newEnv(t, envOptions{cache: &cache.Options{MaxBytes: 256 << 20, Store: disk, Now: func() time.Time { return time.Unix(0, now.Load()) }}})
	a, b := randomBytes(50<<10, 60), randomBytes(50<<10, 61)
	e.up.PutObject(upstreamBucket, "hs1/a", a)
	disk.full.Store(true)
	for i := range 3 {
		res, got, err := e.get("a", nil)
		if err != nil || res.StatusCode != 200 || !bytes.Equal(got, a) {
			t.Fatalf("GET %d with the disk full: %v, %v", i, res.Status, err)
		}
		if x := res.Header.Get("X-Cache"); i > 0 && x != "BYPASS" {
			t.Errorf("GET %d with the disk full: X-Cache %s, want BYPASS", i, x)
		}
	}
	if _, err := e.client(fullKey, fullSecret).PutObject(ctx(t), putInput("media", "b", b)); err != nil {
		t.Fatalf("PUT with the disk full: %v", err)
	}
	e.mustGet("b", b, "BYPASS")
	if n := e.up.Requests("GetObject"); n != 4 {
		t.Errorf("upstream GETs = %d, want 4 (nothing stored)", n)
	}
	if st := e.cache.Stats(); st.DiskErrors == 0 || st.Entries != 0 {
		t.Errorf("cache stats with the disk full = %+v", st)
	}

	disk.full.Store(false)
	now.Add(int64(time.Minute)) // past the cache's back-off from the disk
	e.mustGet("a", a, "MISS")
	e.settled("a", len(a))
	e.mustGet("a", a, "HIT")
}

// TestCacheSlicesOfChangedObject: an object replaced at the origin, not
// through s3edge, while some of its slices are stored: a range over a
// missing slice finds the new version (the cache's If-Match fails, or the
// answer's ETag differs); the client gets a retryable error (a 503, or a
// connection cut after the header, which was the stored version's) or the
// new bytes, never the old version's bytes for that slice, and the next reads
// serve the new version throughout. The stored slices of the old version
// once made every later read fail the same way.
func TestCacheSlicesOfChangedObject(t *testing.T) {
	e := newEnv(t, envOptions{cache: &cache.Options{MaxBytes: 64 << 20, SliceSize: 1 << 20}})
	old, cur := randomBytes(3<<20, 41), randomBytes(3<<20, 42)
	e.up.PutObject(upstreamBucket, "hs1/changing", old)
	first := map[string]string{"Range": "bytes=0-99"}
	e.storedRange("changing", first["Range"], old[:100])
	e.up.PutObject(upstreamBucket, "hs1/changing", cur) // behind s3edge's back

	second := map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", 1<<20, 1<<20+99)}
	res, b, err := e.get("changing", second)
	switch {
	case err != nil: // cut mid-response: the client retries
	case res.StatusCode == 206 && bytes.Equal(b, old[1<<20:1<<20+100]):
		t.Fatal("a slice of the replaced version was served")
	case res.StatusCode != 503 && !(res.StatusCode == 206 && bytes.Equal(b, cur[1<<20:1<<20+100])):
		t.Fatalf("range over a missing slice after the change: %d, %d bytes; want 503 or the new bytes", res.StatusCode, len(b))
	}
	for _, hdr := range []map[string]string{second, first} {
		res, b, err := e.get("changing", hdr)
		if err != nil || res.StatusCode != 206 {
			t.Fatalf("range %s on retry: %v, status %d", hdr["Range"], err, res.StatusCode)
		}
		var off int
		fmt.Sscanf(hdr["Range"], "bytes=%d-", &off)
		if !bytes.Equal(b, cur[off:off+100]) {
			t.Errorf("range %s on retry: not the new version's bytes", hdr["Range"])
		}
	}
}
