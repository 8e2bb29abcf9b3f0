package proxy_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/policy"
)

// TestCacheHitsOverTLS: under TLS the proxy's connection holds TLS records,
// not plain bytes, and a body has no sendfile path: the held header and
// body records must still arrive whole and in order, below and above what
// a connection holds (64 KiB), and on one reused connection.
func TestCacheHitsOverTLS(t *testing.T) {
	e := newEnv(t, envOptions{tls: true, cache: &cache.Options{MaxBytes: 256 << 20, SliceSize: 1 << 20}, rule: policy.CacheRule{}})
	sizes := []int{0, 4 << 10, 40 << 10, 100 << 10, 3 << 20}
	for i, n := range sizes {
		e.up.PutObject(upstreamBucket, fmt.Sprintf("hs1/t%d", i), randomBytes(n, uint64(i)))
	}
	for round, want := range []string{"MISS", "HIT", "HIT"} {
		for i, n := range sizes {
			key := fmt.Sprintf("t%d", i)
			res, body, err := e.get(key, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || !bytes.Equal(body, randomBytes(n, uint64(i))) {
				t.Fatalf("round %d, %d bytes: status %d, %d bytes, content differs", round, n, res.StatusCode, len(body))
			}
			if got := res.Header.Get("X-Cache"); got != want {
				t.Errorf("round %d, %d bytes: X-Cache %q, want %q", round, n, got, want)
			}
			if round == 0 {
				e.settled(key, n)
			}
		}
	}
}
