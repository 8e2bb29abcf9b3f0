package proxy_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// TestVirtualHostStyle: a request to <bucket>.<base domain> names the bucket.
func TestVirtualHostStyle(t *testing.T) {
	e := newEnv(t, envOptions{baseDomains: []string{"s3.test"}})
	c := e.client(fullKey, fullSecret)
	if _, err := c.PutObject(ctx(t), putInput("media", "v/key", []byte("virtual"))); err != nil {
		t.Fatal(err)
	}
	r := e.signed("GET", "/v/key", nil, fullKey, fullSecret, time.Now(), "", func(r *http.Request) {
		r.Host = "media.s3.test"
	})
	res, err := e.httpClient().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "virtual" {
		t.Errorf("virtual-host GET = %d %q", res.StatusCode, b)
	}
}

// TestSSECPassThrough: the SSE-C headers of every operation reach the
// upstream unchanged, and the key is never echoed back.
func TestSSECPassThrough(t *testing.T) {
	e := newEnv(t, envOptions{})
	key := bytes.Repeat([]byte{7}, 32)
	keyB64 := base64.StdEncoding.EncodeToString(key)
	sum := md5.Sum(key)
	keyMD5 := base64.StdEncoding.EncodeToString(sum[:])
	var mu sync.Mutex
	seen := map[string]string{}
	e.up.Observe(func(op string, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen[op] = r.Header.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5")
	})
	c := e.client(fullKey, fullSecret)
	put, err := c.PutObject(ctx(t), &s3.PutObjectInput{
		Bucket: aws.String("media"), Key: aws.String("enc"), Body: strings.NewReader("secret media"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(keyB64), SSECustomerKeyMD5: aws.String(keyMD5),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(put.SSECustomerKeyMD5) != keyMD5 {
		t.Errorf("PutObject SSE-C key MD5 echo = %q", aws.ToString(put.SSECustomerKeyMD5))
	}
	got, err := c.GetObject(ctx(t), &s3.GetObjectInput{
		Bucket: aws.String("media"), Key: aws.String("enc"),
		SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(keyB64), SSECustomerKeyMD5: aws.String(keyMD5),
	})
	if err != nil {
		t.Fatal(err)
	}
	got.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	for _, op := range []string{"PutObject", "GetObject"} {
		if seen[op] != keyMD5 {
			t.Errorf("upstream %s got SSE-C key MD5 %q, want %q", op, seen[op], keyMD5)
		}
	}
}

// TestUpstreamFaults: a provider that fails answers the client with S3's
// retryable errors, and a body cut mid-way aborts the client's connection
// instead of ending it cleanly.
func TestUpstreamFaults(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(fullKey, fullSecret)
	data := randomBytes(1<<20, 2)
	if _, err := c.PutObject(ctx(t), putInput("media", "f", data)); err != nil {
		t.Fatal(err)
	}
	e.up.SetShape(upstreamtest.Shape{Fail: func(r *http.Request) upstreamtest.Fault {
		if r.Method == http.MethodGet {
			return upstreamtest.Status(503)
		}
		return upstreamtest.Fault{}
	}})
	status, code := e.do(e.signed("GET", "/media/f", nil, fullKey, fullSecret, time.Now(), "", nil))
	if status != 503 || code != "ServiceUnavailable" {
		t.Errorf("upstream 503: got %d %s, want 503 ServiceUnavailable", status, code)
	}
	e.up.SetShape(upstreamtest.Shape{Fail: func(r *http.Request) upstreamtest.Fault {
		if r.Method == http.MethodGet {
			return upstreamtest.ResetAfter(300 << 10)
		}
		return upstreamtest.Fault{}
	}})
	res, err := e.httpClient().Do(e.signed("GET", "/media/f", nil, fullKey, fullSecret, time.Now(), "", nil))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || err == nil || len(b) >= len(data) {
		t.Errorf("mid-body reset: status %d, %d bytes, err %v; want 200 and a read error", res.StatusCode, len(b), err)
	}
}
