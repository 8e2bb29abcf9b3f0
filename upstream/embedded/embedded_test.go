package embedded

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/s3edge/s3edge/upstream"
)

func open(t *testing.T, dir string, buckets ...string) *Embedded {
	t.Helper()
	e, err := Open(dir, nil, buckets...)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func putBytes(t *testing.T, c *upstream.S3, key string, data []byte) upstream.ObjectInfo {
	t.Helper()
	info, err := c.Put(t.Context(), upstream.PutInput{Bucket: "media", Key: key, Body: bytes.NewReader(data), Size: int64(len(data)), ContentType: "image/png"})
	if err != nil {
		t.Fatalf("Put(%q) = %v", key, err)
	}
	return info
}

func getBytes(t *testing.T, c *upstream.S3, key string) []byte {
	t.Helper()
	obj, err := c.Get(t.Context(), "media", key, upstream.GetOptions{})
	if err != nil {
		t.Fatalf("Get(%q) = %v", key, err)
	}
	defer obj.Body.Close()
	data, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatalf("Get(%q) body: %v", key, err)
	}
	return data
}

func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, "media", "other")
	c := e.Client()
	data := []byte("remote media bytes")
	putBytes(t, c, "local_content/ab/cd/rest", data)
	id, err := c.CreateMultipart(t.Context(), upstream.PutInput{Bucket: "media", Key: "big"})
	if err != nil {
		t.Fatalf("CreateMultipart = %v", err)
	}
	p1, err := c.UploadPart(t.Context(), upstream.PartInput{Bucket: "media", Key: "big", UploadID: id, PartNumber: 1, Body: strings.NewReader("first "), Size: 6})
	if err != nil {
		t.Fatalf("UploadPart = %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := c.Head(t.Context(), "media", "local_content/ab/cd/rest", upstream.GetOptions{}); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("Head after Close = %v, want ErrUnavailable", err)
	}

	e2 := open(t, dir, "media")
	c2 := e2.Client()
	if e2.Config().AccessKeyID == e.Config().AccessKeyID {
		t.Error("credentials are the same across runs, want random ones")
	}
	if got := getBytes(t, c2, "local_content/ab/cd/rest"); !bytes.Equal(got, data) {
		t.Errorf("after restart Get = %q, want %q", got, data)
	}
	if err := c2.HeadBucket(t.Context(), "other"); err != nil {
		t.Errorf("HeadBucket(other) after restart = %v", err)
	}
	p2, err := c2.UploadPart(t.Context(), upstream.PartInput{Bucket: "media", Key: "big", UploadID: id, PartNumber: 2, Body: strings.NewReader("second"), Size: 6})
	if err != nil {
		t.Fatalf("UploadPart after restart = %v", err)
	}
	if _, err := c2.CompleteMultipart(t.Context(), upstream.CompleteInput{Bucket: "media", Key: "big", UploadID: id, Parts: []upstream.Part{p1, p2}}); err != nil {
		t.Fatalf("CompleteMultipart after restart = %v", err)
	}
	if got := getBytes(t, c2, "big"); string(got) != "first second" {
		t.Errorf("assembled = %q, want %q", got, "first second")
	}
}

func TestGuard(t *testing.T) {
	e := open(t, t.TempDir(), "media")
	cfg := e.Config()
	if !strings.HasPrefix(cfg.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint = %q, want loopback", cfg.Endpoint)
	}
	resp, err := http.Get(cfg.Endpoint + "/media/k")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned GET = %d, want 403", resp.StatusCode)
	}
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIDSOMEONEELSE", "x"
	other, err := upstream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var apiErr *upstream.APIError
	if _, err := other.List(t.Context(), upstream.ListInput{Bucket: "media"}); !errors.As(err, &apiErr) || apiErr.Code != "InvalidAccessKeyId" {
		t.Errorf("List with another key = %v, want InvalidAccessKeyId", err)
	}

	c := e.Client()
	for _, key := range []string{"a//b", "a/../b", "./a", "a/", strings.Repeat("k", 201), "a/" + strings.Repeat("s", 256) + "/b"} {
		_, err := c.Put(t.Context(), upstream.PutInput{Bucket: "media", Key: key, Body: strings.NewReader("x"), Size: 1})
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
			t.Errorf("Put(%.20q) = %v, want 400", key, err)
		}
	}
	putBytes(t, c, "ok/key with spaces+plus", []byte("x"))
}

func TestFailedPutKeepsObject(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, "media")
	c := e.Client()
	old := []byte("the old version")
	putBytes(t, c, "k", old)

	wrong := md5.Sum([]byte("something else"))
	_, err := c.Put(t.Context(), upstream.PutInput{Bucket: "media", Key: "k", Body: strings.NewReader("new bytes"), Size: 9, ContentMD5: base64.StdEncoding.EncodeToString(wrong[:])})
	var apiErr *upstream.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "BadDigest" {
		t.Errorf("Put with a wrong Content-MD5 = %v, want BadDigest", err)
	}

	// A client that dies mid-body.
	r, err := http.NewRequestWithContext(t.Context(), http.MethodPut, e.Config().Endpoint+"/media/k", io.MultiReader(strings.NewReader("partial"), failingReader{}))
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = 100
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+e.Config().AccessKeyID+"/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")
	if resp, err := http.DefaultClient.Do(r); err == nil {
		resp.Body.Close()
	}

	// Close waits for the handlers, the cut one included.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(entries) != 0 {
		t.Errorf("spools left: %v", entries)
	}
	e = open(t, dir, "media")
	if got := getBytes(t, e.Client(), "k"); !bytes.Equal(got, old) {
		t.Errorf("after failed PUTs Get = %q, want the old %q", got, old)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("client died") }

func TestSelfCopy(t *testing.T) {
	e := open(t, t.TempDir(), "media")
	c := e.Client()
	data := bytes.Repeat([]byte("copy onto itself "), 1000)
	putBytes(t, c, "k", data)
	_, err := c.Copy(t.Context(), upstream.CopyInput{Bucket: "media", Key: "k", SourceBucket: "media", SourceKey: "k", MetadataDirective: "REPLACE", ContentType: "text/plain"})
	if err != nil {
		t.Fatalf("Copy onto itself = %v", err)
	}
	if got := getBytes(t, c, "k"); !bytes.Equal(got, data) {
		t.Errorf("after self-copy: %d bytes, want %d", len(got), len(data))
	}
	info, err := c.Head(t.Context(), "media", "k", upstream.GetOptions{})
	if err != nil || info.ContentType != "text/plain" {
		t.Errorf("Head = %+v, %v; want text/plain", info, err)
	}
}

// TestStreams puts and gets 32 MiB through the embedded upstream, server
// side included in this process, and checks that neither holds the object
// in memory.
func TestStreams(t *testing.T) {
	const size = 32 << 20
	e := open(t, t.TempDir(), "media")
	c := e.Client()
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := c.Put(t.Context(), upstream.PutInput{Bucket: "media", Key: "big", Body: f, Size: size}); err != nil {
		t.Fatalf("Put = %v", err)
	}
	obj, err := c.Get(t.Context(), "media", "big", upstream.GetOptions{})
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	n, err := io.Copy(io.Discard, obj.Body)
	obj.Body.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != size {
		t.Fatalf("Get body: %d bytes, %v", n, err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/8 {
		t.Errorf("Put and Get of %d MiB allocated %d KiB, want < %d KiB", size>>20, alloc>>10, size/8>>10)
	} else {
		t.Logf("Put and Get of %d MiB allocated %d KiB", size>>20, alloc>>10)
	}
}

func TestMultipartOnDisk(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, "media")
	c := e.Client()
	ctx := t.Context()
	if page, err := c.ListUploads(ctx, upstream.ListUploadsInput{Bucket: "media"}); err != nil || len(page.Uploads) != 0 {
		t.Errorf("ListUploads(none) = %+v, %v", page, err)
	}
	id, err := c.CreateMultipart(ctx, upstream.PutInput{Bucket: "media", Key: "v/clip.mp4", ContentType: "video/mp4"})
	if err != nil {
		t.Fatalf("CreateMultipart = %v", err)
	}
	other, err := c.CreateMultipart(ctx, upstream.PutInput{Bucket: "media", Key: "w/other"})
	if err != nil {
		t.Fatalf("CreateMultipart = %v", err)
	}
	parts := make([]upstream.Part, 4)
	for _, n := range []int32{4, 2, 1, 3, 2} { // out of order, part 2 twice
		body := strings.Repeat(string(rune('a'+n)), 1000*int(n))
		p, err := c.UploadPart(ctx, upstream.PartInput{Bucket: "media", Key: "v/clip.mp4", UploadID: id, PartNumber: n, Body: strings.NewReader(body), Size: int64(len(body))})
		if err != nil {
			t.Fatalf("UploadPart(%d) = %v", n, err)
		}
		parts[n-1] = p
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "uploads", id, "0000*")); len(files) != 4 {
		t.Errorf("part files on disk: %v, want 4", files)
	}

	var got []int32
	in := upstream.ListPartsInput{Bucket: "media", Key: "v/clip.mp4", UploadID: id, MaxParts: 3}
	for range 3 {
		page, err := c.ListParts(ctx, in)
		if err != nil {
			t.Fatalf("ListParts = %v", err)
		}
		for _, p := range page.Parts {
			got = append(got, p.PartNumber)
			if p.ETag != parts[p.PartNumber-1].ETag || p.Size != int64(1000*p.PartNumber) {
				t.Errorf("listed part %+v, want ETag %s", p, parts[p.PartNumber-1].ETag)
			}
		}
		if !page.IsTruncated {
			break
		}
		in.PartNumberMarker = page.NextPartNumberMarker
	}
	if want := []int32{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("paginated ListParts = %v, want %v", got, want)
	}

	page, err := c.ListUploads(ctx, upstream.ListUploadsInput{Bucket: "media", Delimiter: "/"})
	if err != nil || len(page.Uploads) != 0 || !slices.Equal(page.CommonPrefixes, []string{"v/", "w/"}) {
		t.Errorf("ListUploads(delimiter /) = %+v, %v; want prefixes v/, w/", page, err)
	}
	page, err = c.ListUploads(ctx, upstream.ListUploadsInput{Bucket: "media", MaxUploads: 1})
	if err != nil || len(page.Uploads) != 1 || page.Uploads[0].UploadID != id || !page.IsTruncated {
		t.Fatalf("ListUploads(max 1) = %+v, %v", page, err)
	}
	page, err = c.ListUploads(ctx, upstream.ListUploadsInput{Bucket: "media", KeyMarker: page.NextKeyMarker, UploadIDMarker: page.NextUploadIDMarker})
	if err != nil || len(page.Uploads) != 1 || page.Uploads[0].UploadID != other || page.IsTruncated {
		t.Errorf("ListUploads(second page) = %+v, %v; want %s", page, err, other)
	}

	bad := []upstream.Part{parts[1], parts[0]}
	if _, err := c.CompleteMultipart(ctx, upstream.CompleteInput{Bucket: "media", Key: "v/clip.mp4", UploadID: id, Parts: bad}); err == nil {
		t.Error("CompleteMultipart(parts out of order) = nil, want an error")
	}
	info, err := c.CompleteMultipart(ctx, upstream.CompleteInput{Bucket: "media", Key: "v/clip.mp4", UploadID: id, Parts: parts})
	if err != nil {
		t.Fatalf("CompleteMultipart = %v", err)
	}
	if !strings.HasSuffix(info.ETag, `-4"`) {
		t.Errorf("ETag = %s, want a multipart ETag", info.ETag)
	}
	var want strings.Builder
	for n := 1; n <= 4; n++ {
		want.WriteString(strings.Repeat(string(rune('a'+n)), 1000*n))
	}
	if got := getBytes(t, c, "v/clip.mp4"); string(got) != want.String() {
		t.Errorf("assembled %d bytes, want %d", len(got), want.Len())
	}
	if _, err := os.Stat(filepath.Join(dir, "uploads", id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upload directory left after completion: %v", err)
	}
	if err := c.AbortMultipart(ctx, "media", "w/other", other); err != nil {
		t.Errorf("AbortMultipart = %v", err)
	}
	if _, err := c.ListParts(ctx, upstream.ListPartsInput{Bucket: "media", Key: "w/other", UploadID: other}); !errors.Is(err, upstream.ErrNoSuchUpload) {
		t.Errorf("ListParts after Abort = %v, want ErrNoSuchUpload", err)
	}
	if _, err := c.ListParts(ctx, upstream.ListPartsInput{Bucket: "media", Key: "k", UploadID: "../../etc"}); !errors.Is(err, upstream.ErrNoSuchUpload) {
		t.Errorf("ListParts(upload ID ../../etc) = %v, want ErrNoSuchUpload", err)
	}
}
