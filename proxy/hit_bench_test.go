package proxy_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// BenchmarkHit measures cache hits through the whole front end over a real
// listener: SigV4 verification, index lookup, headers, sendfile. Clients
// run in parallel on the same machine, so the figure is CPU per request.
func BenchmarkHit(b *testing.B) {
	for _, size := range []int{4 << 10, 256 << 10, 4 << 20} {
		b.Run(sizeName(size), func(b *testing.B) {
			e := cachedEnv(b, upstreamtest.Shape{}, policy.CacheRule{})
			data := randomBytes(size, 1)
			e.up.PutObject(upstreamBucket, "hs1/hot", data)
			e.get("hot", nil)
			e.settled("hot", size)
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			hc := &http.Client{Transport: tr}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 64<<10)
				for pb.Next() {
					r := e.signed("GET", "/media/hot", nil, fullKey, fullSecret, time.Now(), "", nil)
					res, err := hc.Do(r)
					if err != nil {
						b.Fatal(err)
					}
					io.CopyBuffer(io.Discard, res.Body, buf)
					res.Body.Close()
					if res.StatusCode != 200 || res.Header.Get("X-Cache") != "HIT" {
						b.Fatalf("status %d X-Cache %q", res.StatusCode, res.Header.Get("X-Cache"))
					}
				}
			})
		})
	}
}
