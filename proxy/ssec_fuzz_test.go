package proxy

import (
	"crypto/md5"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/s3edge/s3edge/upstream"
)

// FuzzSSECTag: the SSE-C headers come from the client. sseCTag never panics,
// accepts only a well-formed AES256 key with its MD5, and gives one tag per
// key, which never contains the key.
func FuzzSSECTag(f *testing.F) {
	key := make([]byte, 32)
	sum := md5.Sum(key)
	f.Add("AES256", base64.StdEncoding.EncodeToString(key), base64.StdEncoding.EncodeToString(sum[:]))
	f.Add("AES256", "short", "")
	f.Add("aws:kms", base64.StdEncoding.EncodeToString(key), "")
	f.Fuzz(func(t *testing.T, alg, k, kmd5 string) {
		tag, ok := sseCTag(upstream.SSEC{Algorithm: alg, Key: k, KeyMD5: kmd5})
		if !ok {
			return
		}
		raw, err := base64.StdEncoding.DecodeString(k)
		sum := md5.Sum(raw)
		if alg != "AES256" || err != nil || len(raw) != 32 || base64.StdEncoding.EncodeToString(sum[:]) != kmd5 {
			t.Fatalf("accepted %q %q %q", alg, k, kmd5)
		}
		if again, _ := sseCTag(upstream.SSEC{Algorithm: alg, Key: k, KeyMD5: kmd5}); again != tag || !strings.HasPrefix(tag, "sse-c:") || strings.Contains(tag, k) {
			t.Fatalf("tag %q for key %q", tag, k)
		}
		raw[0] ^= 1
		sum = md5.Sum(raw)
		other, _ := sseCTag(upstream.SSEC{Algorithm: alg, Key: base64.StdEncoding.EncodeToString(raw), KeyMD5: base64.StdEncoding.EncodeToString(sum[:])})
		if other == tag {
			t.Fatalf("two keys share tag %q", tag)
		}
	})
}
