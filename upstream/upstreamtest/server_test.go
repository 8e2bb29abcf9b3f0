package upstreamtest_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/s3edge/s3edge/upstream"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

func TestOperation(t *testing.T) {
	tests := []struct {
		method, target string
		copySource     bool
		want           string
	}{
		{"GET", "/", false, "ListBuckets"},
		{"GET", "/b?list-type=2&prefix=a", false, "ListObjectsV2"},
		{"GET", "/b", false, "ListObjects"},
		{"GET", "/b?location", false, "GetBucketLocation"},
		{"GET", "/b?uploads", false, "ListMultipartUploads"},
		{"GET", "/b?versions", false, "ListObjectVersions"},
		{"HEAD", "/b", false, "HeadBucket"},
		{"PUT", "/b", false, "CreateBucket"},
		{"DELETE", "/b", false, "DeleteBucket"},
		{"POST", "/b?delete", false, "DeleteObjects"},
		{"GET", "/b/k/with/slashes?x-id=GetObject", false, "GetObject"},
		{"HEAD", "/b/k", false, "HeadObject"},
		{"PUT", "/b/k", false, "PutObject"},
		{"PUT", "/b/k", true, "CopyObject"},
		{"DELETE", "/b/k", false, "DeleteObject"},
		{"POST", "/b/k?uploads", false, "CreateMultipartUpload"},
		{"PUT", "/b/k?partNumber=2&uploadId=u", false, "UploadPart"},
		{"PUT", "/b/k?partNumber=2&uploadId=u", true, "UploadPartCopy"},
		{"POST", "/b/k?uploadId=u", false, "CompleteMultipartUpload"},
		{"DELETE", "/b/k?uploadId=u", false, "AbortMultipartUpload"},
		{"GET", "/b/k?uploadId=u", false, "ListParts"},
		{"PATCH", "/b/k", false, "Unknown"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.target, nil)
		if tt.copySource {
			r.Header.Set("X-Amz-Copy-Source", "b/src")
		}
		if got := upstreamtest.Operation(r); got != tt.want {
			t.Errorf("Operation(%s %s) = %q, want %q", tt.method, tt.target, got, tt.want)
		}
	}
}

func newServer(t *testing.T, shape upstreamtest.Shape) *upstreamtest.Server {
	t.Helper()
	srv := upstreamtest.NewServer(shape, "b")
	t.Cleanup(srv.Close)
	return srv
}

func TestFirstByte(t *testing.T) {
	const delay = 150 * time.Millisecond
	srv := newServer(t, upstreamtest.Shape{FirstByte: delay, Jitter: 10 * time.Millisecond})
	srv.PutObject("b", "k", []byte("x"))
	c := srv.Client()
	for _, op := range []string{"HeadObject", "GetObject"} {
		start := time.Now()
		var err error
		if op == "HeadObject" {
			_, err = c.Head(t.Context(), "b", "k", upstream.GetOptions{})
		} else {
			var obj *upstream.Object
			if obj, err = c.Get(t.Context(), "b", "k", upstream.GetOptions{}); err == nil {
				obj.Body.Close()
			}
		}
		if elapsed := time.Since(start); err != nil || elapsed < delay {
			t.Errorf("%s took %v, %v; want ≥ %v", op, elapsed, err, delay)
		}
	}
	srv.SetShape(upstreamtest.Shape{})
	start := time.Now()
	if _, err := c.Head(t.Context(), "b", "k", upstream.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("unshaped HEAD took %v", time.Since(start))
}

func TestBandwidth(t *testing.T) {
	const rate, size = 1 << 20, 256 << 10 // 1 MiB/s, 256 KiB: ≥ 250 ms
	srv := newServer(t, upstreamtest.Shape{BytesPerSec: rate})
	data := bytes.Repeat([]byte("z"), size)
	srv.PutObject("b", "k", data)
	start := time.Now()
	obj, err := srv.Client().Get(t.Context(), "b", "k", upstream.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	elapsed := time.Since(start)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("body: %d bytes, %v", len(got), err)
	}
	if min := 200 * time.Millisecond; elapsed < min {
		t.Errorf("256 KiB at 1 MiB/s took %v, want ≥ %v", elapsed, min)
	}
}

func TestCounting(t *testing.T) {
	srv := newServer(t, upstreamtest.Shape{})
	c := srv.Client()
	ctx := t.Context()
	data := []byte("0123456789")
	if _, err := c.Put(ctx, upstream.PutInput{Bucket: "b", Key: "k", Body: bytes.NewReader(data), Size: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Head(ctx, "b", "k", upstream.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	srv.Reset()
	for range 3 {
		obj, err := c.Get(ctx, "b", "k", upstream.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, obj.Body)
		obj.Body.Close()
	}
	if _, err := c.Head(ctx, "b", "k", upstream.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	for op, want := range map[string]int64{"GetObject": 3, "HeadObject": 1, "PutObject": 0, "": 4} {
		if got := srv.Requests(op); got != want {
			t.Errorf("Requests(%q) = %d, want %d", op, got, want)
		}
	}
	if got := srv.BytesSent(); got != 30 {
		t.Errorf("BytesSent = %d, want 30", got)
	}
	srv.Reset()
	if srv.Requests("") != 0 || srv.BytesSent() != 0 {
		t.Errorf("after Reset: %d requests, %d bytes", srv.Requests(""), srv.BytesSent())
	}
	if got, ok := srv.Object("b", "k"); !ok || !bytes.Equal(got, data) {
		t.Errorf("Object(b, k) = %q, %t; want %q", got, ok, data)
	}
	if _, ok := srv.Object("b", "missing"); ok {
		t.Error("Object(b, missing) found")
	}
}

// TestChunkedRequests shows why the counter exists: an aws-chunked body
// with a trailer is stored with its framing.
func TestChunkedRequests(t *testing.T) {
	srv := newServer(t, upstreamtest.Shape{})
	body := "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n"
	r, err := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/b/k", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	r.Header.Set("X-Amz-Decoded-Content-Length", "5")
	r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := srv.ChunkedRequests(); n != 1 {
		t.Errorf("ChunkedRequests = %d, want 1", n)
	}
	// If this fails, gofakes3 learnt to decode trailers: update the
	// package doc.
	if got, _ := srv.Object("b", "k"); string(got) != body {
		t.Errorf("stored %q, want the framed body as sent", got)
	}
}

func TestFaultStatusAnswer(t *testing.T) {
	srv := newServer(t, upstreamtest.Shape{Fail: func(*http.Request) upstreamtest.Fault { return upstreamtest.Status(503) }})
	resp, err := http.Get(srv.URL + "/b/k")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || !strings.Contains(string(body), "<Code>ServiceUnavailable</Code>") {
		t.Errorf("answer %d %s, want 503 with an S3 ServiceUnavailable error", resp.StatusCode, body)
	}
	_, err = srv.Client().Head(t.Context(), "b", "k", upstream.GetOptions{})
	var apiErr *upstream.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 503 {
		t.Errorf("Head = %v, want an *upstream.APIError 503", err)
	}
}

func TestFaultString(t *testing.T) {
	for f, want := range map[upstreamtest.Fault]string{
		{}:                       "none",
		upstreamtest.Status(500): "status 500 InternalError",
		{Kind: upstreamtest.FaultStatus, Status: 503, Code: "SlowDown"}: "status 503 SlowDown",
		upstreamtest.ResetBeforeHeaders():                               "reset before headers",
		upstreamtest.ResetAfter(10):                                     "reset mid-body after 10 bytes",
		upstreamtest.ShortBody(3):                                       "short body after 3 bytes",
	} {
		if got := f.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", f, got, want)
		}
	}
}
