package upstream_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3edge/s3edge/upstream"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

const bucket = "b"

// newServer starts an upstreamtest server with bucket "b" and returns it
// with a client.
func newServer(t *testing.T, shape upstreamtest.Shape) (*upstreamtest.Server, *upstream.S3) {
	t.Helper()
	srv := upstreamtest.NewServer(shape, bucket)
	t.Cleanup(srv.Close)
	return srv, srv.Client()
}

// recorder keeps the headers of the last request of each operation.
type recorder struct {
	mu   sync.Mutex
	last map[string]http.Header
}

func record(srv *upstreamtest.Server) *recorder {
	rec := &recorder{last: make(map[string]http.Header)}
	srv.Observe(func(op string, r *http.Request) {
		rec.mu.Lock()
		rec.last[op] = r.Header.Clone()
		rec.mu.Unlock()
	})
	return rec
}

func (rec *recorder) header(op string) http.Header {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.last[op]
}

func etagOf(data []byte) string {
	sum := md5.Sum(data)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

func put(t *testing.T, c *upstream.S3, key string, data []byte) upstream.ObjectInfo {
	t.Helper()
	info, err := c.Put(t.Context(), upstream.PutInput{Bucket: bucket, Key: key, Body: bytes.NewReader(data), Size: int64(len(data))})
	if err != nil {
		t.Fatalf("Put(%q) = %v", key, err)
	}
	return info
}

func readAll(t *testing.T, obj *upstream.Object) []byte {
	t.Helper()
	defer obj.Body.Close()
	data, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return data
}

func TestPutGetHead(t *testing.T) {
	srv, c := newServer(t, upstreamtest.Shape{})
	rec := record(srv)
	data := []byte("hello, upstream")
	in := upstream.PutInput{
		Bucket: bucket, Key: "local_content/ab/cd/rest", Body: bytes.NewReader(data), Size: int64(len(data)),
		ContentType: "image/png", StorageClass: "STANDARD_IA",
		Header: map[string]string{
			"Cache-Control":       "max-age=3600",
			"Content-Disposition": `inline; filename="a.png"`,
			"Content-Encoding":    "identity",
			"Content-Language":    "fr",
			"Expires":             "Wed, 21 Oct 2037 07:28:00 GMT",
			"X-Amz-Meta-Origin":   "synapse",
			"X-Amz-Tagging":       "k=v",
		},
	}
	info, err := c.Put(t.Context(), in)
	if err != nil {
		t.Fatalf("Put = %v", err)
	}
	if info.ETag != etagOf(data) || info.Size != int64(len(data)) || info.LastModified.IsZero() {
		t.Errorf("Put = %+v, want ETag %s, Size %d and a LastModified", info, etagOf(data), len(data))
	}

	sent := rec.header("PutObject")
	for name, want := range map[string]string{
		"Content-Type": "image/png", "X-Amz-Storage-Class": "STANDARD_IA",
		"Cache-Control": "max-age=3600", "Content-Disposition": `inline; filename="a.png"`,
		"Content-Encoding": "identity", "Content-Language": "fr", "Expires": "Wed, 21 Oct 2037 07:28:00 GMT",
		"X-Amz-Meta-Origin": "synapse", "X-Amz-Tagging": "k=v", "Content-Length": fmt.Sprint(len(data)),
	} {
		if got := sent.Get(name); got != want {
			t.Errorf("PutObject header %s = %q, want %q", name, got, want)
		}
	}

	// gofakes3 keeps Content-Type, Content-Disposition, Content-Encoding
	// and X-Amz-* only (see upstreamtest's package doc).
	wantHeader := map[string]string{
		"Content-Disposition": `inline; filename="a.png"`, "Content-Encoding": "identity",
		"X-Amz-Meta-Origin": "synapse", "X-Amz-Storage-Class": "STANDARD_IA",
	}
	obj, err := c.Get(t.Context(), bucket, in.Key, upstream.GetOptions{})
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	if got := readAll(t, obj); !bytes.Equal(got, data) {
		t.Errorf("Get body = %q, want %q", got, data)
	}
	head, err := c.Head(t.Context(), bucket, in.Key, upstream.GetOptions{})
	if err != nil {
		t.Fatalf("Head = %v", err)
	}
	for name, got := range map[string]upstream.ObjectInfo{"Get": obj.ObjectInfo, "Head": head} {
		if got.ETag != etagOf(data) || got.Size != int64(len(data)) || got.ContentType != "image/png" ||
			got.StorageClass != "STANDARD_IA" || got.LastModified.IsZero() || obj.Range != nil {
			t.Errorf("%s = %+v, want ETag %s, Size %d, image/png, STANDARD_IA", name, got, etagOf(data), len(data))
		}
		for k, v := range wantHeader {
			if got.Header[k] != v {
				t.Errorf("%s Header[%s] = %q, want %q", name, k, got.Header[k], v)
			}
		}
	}
	if n := srv.ChunkedRequests(); n != 0 {
		t.Errorf("ChunkedRequests = %d, want 0", n)
	}
}

func TestGetRange(t *testing.T) {
	srv, c := newServer(t, upstreamtest.Shape{})
	data := []byte("0123456789abcdefghij")
	srv.PutObject(bucket, "k", data)
	tests := []struct {
		rng        string
		start, end int64
	}{
		{"bytes=0-4", 0, 4},
		{"bytes=5-", 5, 19},
		{"bytes=-3", 17, 19},
		{"bytes=15-100", 15, 19},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			obj, err := c.Get(t.Context(), bucket, "k", upstream.GetOptions{Range: tt.rng})
			if err != nil {
				t.Fatalf("Get = %v", err)
			}
			got := readAll(t, obj)
			want := upstream.ContentRange{Start: tt.start, End: tt.end, Total: int64(len(data))}
			if obj.Range == nil || *obj.Range != want {
				t.Errorf("Range = %+v, want %+v", obj.Range, want)
			}
			if obj.Size != int64(len(data)) {
				t.Errorf("Size = %d, want the whole object's %d", obj.Size, len(data))
			}
			if !bytes.Equal(got, data[tt.start:tt.end+1]) {
				t.Errorf("body = %q, want %q", got, data[tt.start:tt.end+1])
			}
			head, err := c.Head(t.Context(), bucket, "k", upstream.GetOptions{Range: tt.rng})
			if err != nil || head.Size != int64(len(data)) {
				t.Errorf("Head with range = %+v, %v; want Size %d", head, err, len(data))
			}
		})
	}
	_, err := c.Get(t.Context(), bucket, "k", upstream.GetOptions{Range: "bytes=20-"})
	if !errors.Is(err, upstream.ErrInvalidRange) {
		t.Errorf("Get(bytes=20-) = %v, want ErrInvalidRange", err)
	}
}

func TestConditionals(t *testing.T) {
	srv, c := newServer(t, upstreamtest.Shape{})
	rec := record(srv)
	data := []byte("conditional")
	info := put(t, c, "k", data)
	future := time.Now().Add(time.Hour)

	tests := []struct {
		name string
		o    upstream.GetOptions
		want error
	}{
		{"if-none-match same etag", upstream.GetOptions{IfNoneMatch: info.ETag}, upstream.ErrNotModified},
		{"if-none-match other etag", upstream.GetOptions{IfNoneMatch: `"other"`}, nil},
		{"if-modified-since future", upstream.GetOptions{IfModifiedSince: future}, upstream.ErrNotModified},
		{"if-modified-since past", upstream.GetOptions{IfModifiedSince: time.Now().Add(-time.Hour)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := c.Get(t.Context(), bucket, "k", tt.o)
			if err == nil {
				readAll(t, obj)
			}
			if !errors.Is(err, tt.want) && (tt.want != nil || err != nil) {
				t.Errorf("Get = %v, want %v", err, tt.want)
			}
			_, err = c.Head(t.Context(), bucket, "k", tt.o)
			if !errors.Is(err, tt.want) && (tt.want != nil || err != nil) {
				t.Errorf("Head = %v, want %v", err, tt.want)
			}
		})
	}

	// gofakes3 ignores If-Match and If-Unmodified-Since on reads: check
	// that they are sent (their answers are tested in faults_test.go).
	o := upstream.GetOptions{IfMatch: info.ETag, IfUnmodifiedSince: future, VersionID: "v1", PartNumber: 1}
	_, _ = c.Head(t.Context(), bucket, "k", o)
	h := rec.header("HeadObject")
	if h.Get("If-Match") != info.ETag || h.Get("If-Unmodified-Since") != future.UTC().Format(http.TimeFormat) {
		t.Errorf("HeadObject sent If-Match %q, If-Unmodified-Since %q; want %q, %q",
			h.Get("If-Match"), h.Get("If-Unmodified-Since"), info.ETag, future.UTC().Format(http.TimeFormat))
	}
}

func TestList(t *testing.T) {
	_, c := newServer(t, upstreamtest.Shape{})
	keys := []string{"a/1", "a/2", "b/1", "c", "d", "e/x/y"}
	for _, k := range keys {
		put(t, c, k, []byte(k))
	}

	page, err := c.List(t.Context(), upstream.ListInput{Bucket: bucket, Delimiter: "/"})
	if err != nil {
		t.Fatalf("List = %v", err)
	}
	var got []string
	for _, o := range page.Objects {
		got = append(got, o.Key)
		if o.ETag != etagOf([]byte(o.Key)) || o.Size != int64(len(o.Key)) || o.Bucket != bucket {
			t.Errorf("List object %+v, want ETag %s, Size %d", o, etagOf([]byte(o.Key)), len(o.Key))
		}
	}
	if !slices.Equal(got, []string{"c", "d"}) || !slices.Equal(page.CommonPrefixes, []string{"a/", "b/", "e/"}) {
		t.Errorf("List(delimiter /) = %v, prefixes %v; want [c d], [a/ b/ e/]", got, page.CommonPrefixes)
	}

	page, err = c.List(t.Context(), upstream.ListInput{Bucket: bucket, Prefix: "a/"})
	if err != nil || len(page.Objects) != 2 {
		t.Errorf("List(prefix a/) = %+v, %v; want 2 objects", page, err)
	}

	got = nil
	in := upstream.ListInput{Bucket: bucket, MaxKeys: 2}
	for pages := 0; ; pages++ {
		if pages > len(keys) {
			t.Fatal("List does not end")
		}
		page, err := c.List(t.Context(), in)
		if err != nil {
			t.Fatalf("List(page %d) = %v", pages, err)
		}
		if len(page.Objects) > 2 {
			t.Errorf("page %d has %d objects, want ≤ 2", pages, len(page.Objects))
		}
		for _, o := range page.Objects {
			got = append(got, o.Key)
		}
		if !page.IsTruncated {
			break
		}
		in.ContinuationToken = page.NextContinuationToken
	}
	if !slices.Equal(got, keys) {
		t.Errorf("paginated List = %v, want %v", got, keys)
	}

	page, err = c.List(t.Context(), upstream.ListInput{Bucket: bucket, StartAfter: "c"})
	if err != nil || len(page.Objects) != 2 || page.Objects[0].Key != "d" {
		t.Errorf("List(start after c) = %+v, %v; want d, e/x/y", page, err)
	}
}

func TestCopy(t *testing.T) {
	srv, c := newServer(t, upstreamtest.Shape{})
	rec := record(srv)
	data := []byte("copy me")
	src := "dir/a+b c ü%.txt"
	put(t, c, src, data)

	info, err := c.Copy(t.Context(), upstream.CopyInput{Bucket: bucket, Key: "dst/1", SourceBucket: bucket, SourceKey: src})
	if err != nil {
		t.Fatalf("Copy = %v", err)
	}
	if info.ETag != etagOf(data) {
		t.Errorf("Copy ETag = %s, want %s", info.ETag, etagOf(data))
	}
	if got, want := rec.header("CopyObject").Get("X-Amz-Copy-Source"), "b/dir/a%2Bb%20c%20%C3%BC%25.txt"; got != want {
		t.Errorf("X-Amz-Copy-Source = %q, want %q", got, want)
	}
	obj, err := c.Get(t.Context(), bucket, "dst/1", upstream.GetOptions{})
	if err != nil {
		t.Fatalf("Get(copy) = %v", err)
	}
	if got := readAll(t, obj); !bytes.Equal(got, data) {
		t.Errorf("copy body = %q, want %q", got, data)
	}

	_, err = c.Copy(t.Context(), upstream.CopyInput{
		Bucket: bucket, Key: "dst/2", SourceBucket: bucket, SourceKey: src,
		MetadataDirective: "REPLACE", ContentType: "text/plain", Header: map[string]string{"X-Amz-Meta-New": "1"},
		IfMatch: info.ETag,
	})
	if err != nil {
		t.Fatalf("Copy(REPLACE) = %v", err)
	}
	h := rec.header("CopyObject")
	if h.Get("X-Amz-Metadata-Directive") != "REPLACE" || h.Get("Content-Type") != "text/plain" ||
		h.Get("X-Amz-Meta-New") != "1" || h.Get("X-Amz-Copy-Source-If-Match") != info.ETag {
		t.Errorf("Copy(REPLACE) sent %v", h)
	}

	_, err = c.Copy(t.Context(), upstream.CopyInput{Bucket: bucket, Key: "dst/3", SourceBucket: bucket, SourceKey: "missing"})
	if !errors.Is(err, upstream.ErrNotFound) {
		t.Errorf("Copy(missing source) = %v, want ErrNotFound", err)
	}
	_, err = c.Copy(t.Context(), upstream.CopyInput{Bucket: bucket, Key: "x", SourceBucket: bucket, SourceKey: src, MetadataDirective: "MERGE"})
	if err == nil {
		t.Error("Copy(MERGE directive) = nil, want an error")
	}
}

func TestDelete(t *testing.T) {
	srv, c := newServer(t, upstreamtest.Shape{})
	rec := record(srv)
	put(t, c, "k", []byte("x"))
	if err := c.Delete(t.Context(), bucket, "k"); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if _, err := c.Head(t.Context(), bucket, "k", upstream.GetOptions{}); !errors.Is(err, upstream.ErrNotFound) {
		t.Errorf("Head after Delete = %v, want ErrNotFound", err)
	}
	if err := c.Delete(t.Context(), bucket, "k"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}

	for _, k := range []string{"1", "2", "3"} {
		put(t, c, k, []byte(k))
	}
	keys := []string{"1", "missing", "2", "3"}
	results, err := c.DeleteObjects(t.Context(), bucket, keys)
	if err != nil {
		t.Fatalf("DeleteObjects = %v", err)
	}
	if len(results) != len(keys) {
		t.Fatalf("DeleteObjects returned %d results, want %d", len(results), len(keys))
	}
	for i, r := range results {
		if r.Key != keys[i] || r.Code != "" {
			t.Errorf("result %d = %+v, want %q deleted", i, r, keys[i])
		}
	}
	if rec.header("DeleteObjects").Get("Content-Md5") == "" {
		t.Error("DeleteObjects sent no Content-MD5")
	}
	page, err := c.List(t.Context(), upstream.ListInput{Bucket: bucket})
	if err != nil || len(page.Objects) != 0 {
		t.Errorf("List after DeleteObjects = %+v, %v; want empty", page, err)
	}

	srv.Reset()
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("none/%d", i)
	}
	results, err = c.DeleteObjects(t.Context(), bucket, many)
	if err != nil || len(results) != len(many) {
		t.Fatalf("DeleteObjects(1001 keys) = %d results, %v", len(results), err)
	}
	if n := srv.Requests("DeleteObjects"); n != 2 {
		t.Errorf("DeleteObjects(1001 keys) sent %d requests, want 2", n)
	}
	if results, err := c.DeleteObjects(t.Context(), bucket, nil); err != nil || len(results) != 0 {
		t.Errorf("DeleteObjects(nil) = %v, %v; want none", results, err)
	}
}

func TestSSECHeadersSent(t *testing.T) {
	// gofakes3 does not implement SSE-C: check that every operation that
	// takes the parameters sends them, and that the key never comes back.
	srv, c := newServer(t, upstreamtest.Shape{})
	rec := record(srv)
	ssec := upstream.SSEC{Algorithm: "AES256", Key: "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=", KeyMD5: "bWQ1bWQ1bWQ1bWQ1bWQ1bQ=="}
	src := upstream.SSEC{Algorithm: "AES256", Key: "c3JjX2tleV9zcmNfa2V5X3NyY19rZXlfc3JjX2tleV8=", KeyMD5: "c3JjbWQ1c3JjbWQ1c3JjbQ=="}
	ctx := t.Context()
	data := []byte("secret bytes")

	if _, err := c.Put(ctx, upstream.PutInput{Bucket: bucket, Key: "k", Body: bytes.NewReader(data), Size: int64(len(data)), SSEC: ssec}); err != nil {
		t.Fatalf("Put = %v", err)
	}
	info, err := c.Head(ctx, bucket, "k", upstream.GetOptions{SSEC: ssec})
	if err != nil {
		t.Fatalf("Head = %v", err)
	}
	obj, err := c.Get(ctx, bucket, "k", upstream.GetOptions{SSEC: ssec})
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	readAll(t, obj)
	if _, err := c.Copy(ctx, upstream.CopyInput{Bucket: bucket, Key: "k2", SourceBucket: bucket, SourceKey: "k", SSEC: ssec, SourceSSEC: src}); err != nil {
		t.Fatalf("Copy = %v", err)
	}
	id, err := c.CreateMultipart(ctx, upstream.PutInput{Bucket: bucket, Key: "m", SSEC: ssec})
	if err != nil {
		t.Fatalf("CreateMultipart = %v", err)
	}
	part, err := c.UploadPart(ctx, upstream.PartInput{Bucket: bucket, Key: "m", UploadID: id, PartNumber: 1, Body: bytes.NewReader(data), Size: int64(len(data)), SSEC: ssec})
	if err != nil {
		t.Fatalf("UploadPart = %v", err)
	}
	if _, err := c.CompleteMultipart(ctx, upstream.CompleteInput{Bucket: bucket, Key: "m", UploadID: id, Parts: []upstream.Part{part}, SSEC: ssec}); err != nil {
		t.Fatalf("CompleteMultipart = %v", err)
	}

	for _, op := range []string{"PutObject", "HeadObject", "GetObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"} {
		h := rec.header(op)
		if h.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") != ssec.Algorithm ||
			h.Get("X-Amz-Server-Side-Encryption-Customer-Key") != ssec.Key ||
			h.Get("X-Amz-Server-Side-Encryption-Customer-Key-Md5") != ssec.KeyMD5 {
			t.Errorf("%s did not send the SSE-C headers: %v", op, h)
		}
	}
	h := rec.header("CopyObject")
	if h.Get("X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key") != src.Key ||
		h.Get("X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key-Md5") != src.KeyMD5 {
		t.Errorf("CopyObject did not send the source's SSE-C headers: %v", h)
	}
	for _, got := range []upstream.ObjectInfo{info, obj.ObjectInfo} {
		for k, v := range got.Header {
			if strings.Contains(v, ssec.Key) {
				t.Errorf("ObjectInfo.Header[%s] holds the SSE-C key", k)
			}
		}
	}
	if s := fmt.Sprint(ssec); strings.Contains(s, ssec.Key) {
		t.Errorf("SSEC prints its key: %s", s)
	}
}

func TestHeadBucket(t *testing.T) {
	_, c := newServer(t, upstreamtest.Shape{})
	if err := c.HeadBucket(t.Context(), bucket); err != nil {
		t.Errorf("HeadBucket(%q) = %v", bucket, err)
	}
	if err := c.HeadBucket(t.Context(), "nope"); !errors.Is(err, upstream.ErrNoSuchBucket) {
		t.Errorf("HeadBucket(nope) = %v, want ErrNoSuchBucket", err)
	}
}

func TestConcurrentGets(t *testing.T) {
	srv, c := newServer(t, upstreamtest.Shape{})
	data := bytes.Repeat([]byte("0123456789"), 10_000)
	srv.PutObject(bucket, "k", data)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			obj, err := c.Get(ctx, bucket, "k", upstream.GetOptions{})
			if err != nil {
				t.Errorf("Get = %v", err)
				return
			}
			defer obj.Body.Close()
			got, err := io.ReadAll(obj.Body)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("Get body: %d bytes, %v; want %d bytes", len(got), err, len(data))
			}
		})
	}
	wg.Wait()
	if got, want := srv.BytesSent(), int64(16*len(data)); got != want {
		t.Errorf("BytesSent = %d, want %d", got, want)
	}
}
