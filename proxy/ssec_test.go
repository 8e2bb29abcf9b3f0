package proxy_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// sseHeaders are the SSE-C request headers of a 256-bit key made of b.
func sseHeaders(b byte) map[string]string {
	key := bytes.Repeat([]byte{b}, 32)
	sum := md5.Sum(key)
	return map[string]string{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256",
		"X-Amz-Server-Side-Encryption-Customer-Key":       base64.StdEncoding.EncodeToString(key),
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   base64.StdEncoding.EncodeToString(sum[:]),
	}
}

// TestSSECCaching: with cache.sse_c, an object read or written with an SSE-C
// key is cached and served only to requests presenting that key; requests
// with another key, with none or with malformed key headers go to the
// upstream, which answers them as S3 does (gofakes3 ignores SSE-C, so the
// shape enforces key A on "enc/" keys as S3 would); a bucket without the
// option never caches SSE-C; a fill started with one key is never handed to
// a request with another.
func TestSSECCaching(t *testing.T) {
	keyA, keyB := sseHeaders(1), sseHeaders(2)
	const keyHeader = "X-Amz-Server-Side-Encryption-Customer-Key"
	var firstByte time.Duration
	var mu sync.Mutex
	enforce := func(r *http.Request) upstreamtest.Fault {
		mu.Lock()
		d := firstByte
		mu.Unlock()
		time.Sleep(d)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return upstreamtest.Fault{}
		}
		if strings.Contains(r.URL.Path, "/plain/") && r.Header.Get(keyHeader) != "" {
			// S3 refuses SSE-C parameters for an object stored without.
			return upstreamtest.Fault{Kind: upstreamtest.FaultStatus, Status: 400, Code: "InvalidRequest"}
		}
		if !strings.Contains(r.URL.Path, "/enc/") {
			return upstreamtest.Fault{}
		}
		switch r.Header.Get(keyHeader) {
		case keyA[keyHeader]:
			return upstreamtest.Fault{}
		case "":
			return upstreamtest.Fault{Kind: upstreamtest.FaultStatus, Status: 400, Code: "InvalidRequest"}
		}
		return upstreamtest.Fault{Kind: upstreamtest.FaultStatus, Status: 403, Code: "AccessDenied"}
	}
	e := newEnv(t, envOptions{
		shape: upstreamtest.Shape{Fail: enforce},
		rule:  policy.CacheRule{SSEC: true},
		cache: &cache.Options{MaxBytes: 256 << 20, SliceSize: 1 << 20},
	})
	gets := func() int64 { return e.up.Requests("GetObject") }
	expect := func(what, key string, hdr map[string]string, status int, want []byte, xcache string) {
		t.Helper()
		res, body, err := e.get(key, hdr)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if res.StatusCode != status || want != nil && !bytes.Equal(body, want) {
			t.Errorf("%s: %d, %d bytes; want %d", what, res.StatusCode, len(body), status)
		}
		if got := res.Header.Get("X-Cache"); got != xcache {
			t.Errorf("%s: X-Cache %q, want %q", what, got, xcache)
		}
	}

	data := randomBytes(300<<10, 51)
	e.up.PutObject(upstreamBucket, "hs1/enc/a", data)
	expect("first GET with key A", "enc/a", keyA, 200, data, "MISS")
	e.settled("enc/a", len(data))
	expect("second GET with key A", "enc/a", keyA, 200, data, "HIT")
	if n := gets(); n != 1 {
		t.Fatalf("upstream GETs = %d after a miss and a hit, want 1", n)
	}
	expect("GET with key B", "enc/a", keyB, 403, nil, "")
	expect("GET without a key", "enc/a", nil, 400, nil, "")
	bad := map[string]string{}
	for k, v := range keyA {
		bad[k] = v
	}
	bad["X-Amz-Server-Side-Encryption-Customer-Key-Md5"] = keyB["X-Amz-Server-Side-Encryption-Customer-Key-Md5"]
	expect("GET with key A and another key's MD5", "enc/a", bad, 200, data, "") // gofakes3 checks no MD5; S3 would refuse
	if n := gets(); n != 4 {
		t.Errorf("upstream GETs = %d, want 4: other keys, no key and a malformed key are the upstream's to answer", n)
	}
	expect("third GET with key A", "enc/a", keyA, 200, data, "HIT")

	head := func(hdr map[string]string) int {
		r := e.signed("HEAD", "/media/enc/a", nil, fullKey, fullSecret, time.Now(), "", func(r *http.Request) {
			for k, v := range hdr {
				r.Header.Set(k, v)
			}
		})
		st, _ := e.do(r)
		return st
	}
	if st := head(keyA); st != 200 || e.up.Requests("HeadObject") != 0 {
		t.Errorf("HEAD with key A = %d, %d upstream HEADs; want 200 from the cache", st, e.up.Requests("HeadObject"))
	}
	if st := head(keyB); st != 403 || e.up.Requests("HeadObject") != 1 {
		t.Errorf("HEAD with key B = %d, %d upstream HEADs; want the upstream's 403", st, e.up.Requests("HeadObject"))
	}

	// An upload with key A is the entry: reading it back costs nothing,
	// and the answer carries the SSE-C parameters S3 would send.
	up := randomBytes(100<<10, 52)
	put := e.signed("PUT", "/media/enc/p", up, fullKey, fullSecret, time.Now(), "", func(r *http.Request) {
		for k, v := range keyA {
			r.Header.Set(k, v)
		}
	})
	if st, code := e.do(put); st != 200 {
		t.Fatalf("PUT with key A = %d %s", st, code)
	}
	before := gets()
	res, body, err := e.get("enc/p", keyA)
	if err != nil || res.StatusCode != 200 || !bytes.Equal(body, up) || res.Header.Get("X-Cache") != "HIT" || gets() != before {
		t.Errorf("GET after PUT with key A: %v, %d, X-Cache %q, %d upstream GETs", err, res.StatusCode, res.Header.Get("X-Cache"), gets()-before)
	}
	if res.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5") != keyA["X-Amz-Server-Side-Encryption-Customer-Key-Md5"] ||
		res.Header.Get(keyHeader) != "" {
		t.Errorf("hit headers: %v; want the key's MD5 and never the key", res.Header)
	}
	expect("GET of the upload with key B", "enc/p", keyB, 403, nil, "")

	// A fill started with key A is not handed to a request with key B
	// that arrives while it runs.
	e.up.PutObject(upstreamBucket, "hs1/enc/c", data)
	mu.Lock()
	firstByte = 200 * time.Millisecond
	mu.Unlock()
	var wg sync.WaitGroup
	wg.Go(func() { expect("cold GET with key A", "enc/c", keyA, 200, data, "MISS") })
	time.Sleep(50 * time.Millisecond)
	expect("GET with key B during key A's fill", "enc/c", keyB, 403, nil, "")
	wg.Wait()
	// Nor does a fill that a request with a key started, and that the
	// upstream refused, fail the plain requests that joined it.
	e.up.PutObject(upstreamBucket, "hs1/plain/d", data)
	wg.Go(func() { expect("GET of a plain object with key B", "plain/d", keyB, 400, nil, "") })
	time.Sleep(50 * time.Millisecond)
	expect("plain GET during key B's refused fill", "plain/d", nil, 200, data, "")
	wg.Wait()
	mu.Lock()
	firstByte = 0
	mu.Unlock()

	// A bucket without cache.sse_c never caches SSE-C objects.
	e.up.PutObject(upstreamBucket, "hs2/enc/x", data)
	before = gets()
	for range 2 {
		r := e.signed("GET", "/media2/enc/x", nil, otherKey, otherSecret, time.Now(), "", func(r *http.Request) {
			for k, v := range keyA {
				r.Header.Set(k, v)
			}
		})
		if st, code := e.do(r); st != 200 {
			t.Fatalf("GET media2 with key A = %d %s", st, code)
		}
	}
	if n := gets() - before; n != 2 {
		t.Errorf("bucket without sse_c: %d upstream GETs for 2 reads, want 2", n)
	}
}
