package proxy

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzCopySource: x-amz-copy-source and x-amz-copy-source-range come from
// the client. Parsing never panics; what it accepts names a bucket and a
// valid key, and a range with both ends in order.
func FuzzCopySource(f *testing.F) {
	for _, s := range [][2]string{
		{"/media/src/a", "bytes=0-9"},
		{"media/a%20b?versionId=3", ""},
		{"media/%2e%2e/x", "bytes=5-"},
		{"/media", "bytes=-5"},
		{"m/k%", "bytes=9-5"},
		{"m//k", "bytes=1-2,3-4"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, src, rng string) {
		bucket, key, _, err := copySource(src)
		if err == nil {
			if bucket == "" || strings.Contains(bucket, "/") || validKey(key) != nil {
				t.Fatalf("copySource(%q) = %q, %q: accepted a bad name", src, bucket, key)
			}
		}
		h := http.Header{}
		h.Set("X-Amz-Copy-Source-Range", rng)
		o, _, _, err := copySourceOptions(h)
		if err != nil || rng == "" {
			return
		}
		br, ok := parseRange(o.Range)
		if !ok || br.first < 0 || br.last < br.first {
			t.Fatalf("copySourceOptions(%q) accepted range %q", rng, o.Range)
		}
	})
}
