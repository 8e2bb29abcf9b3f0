package proxy_test

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3edge/s3edge/upstream"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// apiCode returns the S3 error code of an SDK error.
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// upstreamObject reads an object straight from the upstream, bypassing s3edge.
func (e *env) upstreamObject(key string) ([]byte, upstream.ObjectInfo, error) {
	obj, err := e.up.Client().Get(e.t.Context(), upstreamBucket, key, upstream.GetOptions{})
	if err != nil {
		return nil, upstream.ObjectInfo{}, err
	}
	defer obj.Body.Close()
	b, err := io.ReadAll(obj.Body)
	return b, obj.ObjectInfo, err
}

func bothSchemes(t *testing.T, f func(t *testing.T, e *env)) {
	for _, tlsOn := range []bool{false, true} {
		name := "http"
		if tlsOn {
			name = "https"
		}
		t.Run(name, func(t *testing.T) { f(t, newEnv(t, envOptions{tls: tlsOn})) })
	}
}

func TestPutGetHead(t *testing.T) {
	bothSchemes(t, func(t *testing.T, e *env) {
		c := e.client(fullKey, fullSecret)
		keys := []string{
			"local_content/ab/cd/efghijklmnopqrstuvwx",
			"remote_content/[2001:db8::1]:8448/ab/cd/ef",
			"with space/and+plus/ünïcode/%41",
			"a//double/slash/",
		}
		for i, key := range keys {
			data := randomBytes(100<<10+i, uint64(i))
			_, err := c.PutObject(ctx(t), &s3.PutObjectInput{
				Bucket:             aws.String("media"),
				Key:                aws.String(key),
				Body:               bytes.NewReader(data),
				ContentType:        aws.String("image/png"),
				CacheControl:       aws.String("max-age=3600"),
				ContentDisposition: aws.String(`inline; filename="x.png"`),
				StorageClass:       types.StorageClassStandard,
				Metadata:           map[string]string{"origin": "test"},
			})
			if err != nil {
				t.Fatalf("PutObject(%q): %v", key, err)
			}
			got, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("GetObject(%q): %v", key, err)
			}
			body, err := io.ReadAll(got.Body)
			got.Body.Close()
			if err != nil || !bytes.Equal(body, data) {
				t.Fatalf("GetObject(%q) body differs (len %d, want %d), err %v", key, len(body), len(data), err)
			}
			// gofakes3 drops Cache-Control, so it is not checked here.
			if aws.ToString(got.ContentType) != "image/png" || got.Metadata["origin"] != "test" ||
				aws.ToString(got.ContentDisposition) != `inline; filename="x.png"` {
				t.Errorf("GetObject(%q) headers: type %q meta %v disp %q", key, aws.ToString(got.ContentType),
					got.Metadata, aws.ToString(got.ContentDisposition))
			}
			want := fmt.Sprintf(`"%x"`, md5.Sum(data))
			if aws.ToString(got.ETag) != want {
				t.Errorf("ETag = %s, want %s", aws.ToString(got.ETag), want)
			}
			head, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String("media"), Key: aws.String(key)})
			if err != nil || aws.ToInt64(head.ContentLength) != int64(len(data)) || aws.ToString(head.ETag) != want {
				t.Fatalf("HeadObject(%q) = %v, %v", key, head, err)
			}
			// The upstream holds the plain bytes under the bucket's prefix.
			raw, _, err := e.upstreamObject("hs1/" + key)
			if err != nil || !bytes.Equal(raw, data) {
				t.Fatalf("upstream copy of %q differs or missing: %v", key, err)
			}
		}
		if n := e.up.ChunkedRequests(); n != 0 {
			t.Errorf("upstream got %d aws-chunked requests, want 0", n)
		}
		// Empty object.
		if _, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("empty"), Body: bytes.NewReader(nil)}); err != nil {
			t.Fatal(err)
		}
		got, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("empty")})
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(got.Body); len(b) != 0 {
			t.Errorf("empty object has %d bytes", len(b))
		}
		e.spoolEmpty()
	})
}

func TestMissingKey(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(fullKey, fullSecret)
	_, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("nope")})
	var nsk *types.NoSuchKey
	if !errors.As(err, &nsk) {
		t.Errorf("GetObject(missing) error = %v, want NoSuchKey", err)
	}
	_, err = c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String("media"), Key: aws.String("nope")})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("HeadObject(missing) error = %v, want NotFound (404)", err)
	}
}

func TestMultipartAndRangedDownload(t *testing.T) {
	bothSchemes(t, func(t *testing.T, e *env) {
		c := e.client(fullKey, fullSecret)
		data := randomBytes(20<<20+12345, 7)
		up := manager.NewUploader(c, func(u *manager.Uploader) {
			u.PartSize = 5 << 20
			u.Concurrency = 4
		})
		if _, err := up.Upload(ctx(t), &s3.PutObjectInput{
			Bucket: aws.String("media"), Key: aws.String("big/video.mp4"), Body: bytes.NewReader(data),
			StorageClass: types.StorageClassStandard,
		}); err != nil {
			t.Fatalf("multipart upload: %v", err)
		}
		dl := manager.NewDownloader(c, func(d *manager.Downloader) { d.PartSize = 4 << 20; d.Concurrency = 4 })
		buf := manager.NewWriteAtBuffer(make([]byte, 0, len(data)))
		n, err := dl.Download(ctx(t), buf, &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("big/video.mp4")})
		if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("ranged download: n=%d err=%v equal=%v", n, err, bytes.Equal(buf.Bytes(), data))
		}
		if got := e.up.Requests("UploadPart"); got != 5 {
			t.Errorf("upstream UploadPart = %d, want 5", got)
		}
		if n := e.up.ChunkedRequests(); n != 0 {
			t.Errorf("upstream got %d aws-chunked requests, want 0", n)
		}
		e.spoolEmpty()
	})
}

func TestRangesAndConditionals(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(fullKey, fullSecret)
	data := randomBytes(1000, 3)
	put, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("r"), Body: bytes.NewReader(data)})
	if err != nil {
		t.Fatal(err)
	}
	etag := aws.ToString(put.ETag)
	for _, tt := range []struct {
		rng        string
		start, end int
	}{{"bytes=0-99", 0, 100}, {"bytes=900-", 900, 1000}, {"bytes=-10", 990, 1000}, {"bytes=990-5000", 990, 1000}} {
		got, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("r"), Range: aws.String(tt.rng), IfMatch: aws.String(etag)})
		if err != nil {
			t.Fatalf("range %s: %v", tt.rng, err)
		}
		b, _ := io.ReadAll(got.Body)
		want := fmt.Sprintf("bytes %d-%d/1000", tt.start, tt.end-1)
		if !bytes.Equal(b, data[tt.start:tt.end]) || aws.ToString(got.ContentRange) != want {
			t.Errorf("range %s: %d bytes, Content-Range %q, want %q", tt.rng, len(b), aws.ToString(got.ContentRange), want)
		}
	}
	_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("r"), Range: aws.String("bytes=1000-")})
	if apiCode(err) != "InvalidRange" {
		t.Errorf("unsatisfiable range: %v, want InvalidRange", err)
	}
	_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("r"), IfMatch: aws.String(`"nope"`)})
	if apiCode(err) != "PreconditionFailed" {
		t.Errorf("If-Match mismatch: %v, want PreconditionFailed", err)
	}
	_, err = c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("r"), IfNoneMatch: aws.String(etag)})
	if apiCode(err) != "NotModified" {
		t.Errorf("If-None-Match hit: %v, want NotModified", err)
	}
	got, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("r"),
		ResponseContentType: aws.String("text/plain"), ResponseContentDisposition: aws.String("attachment")})
	if err != nil || aws.ToString(got.ContentType) != "text/plain" || aws.ToString(got.ContentDisposition) != "attachment" {
		t.Errorf("response overrides: %v, %v", got, err)
	}
}

func TestListings(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(fullKey, fullSecret)
	keys := []string{"a/1", "a/2", "b/1", "c", "local_thumbnails/x/1", "local_thumbnails/y/1", "sp ace/k&<>"}
	for _, k := range keys {
		if _, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	// Another tenant's object in the same upstream bucket stays invisible.
	if _, err := e.client(otherKey, otherSecret).PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media2"), Key: aws.String("a/secret"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}

	var all []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("media"), MaxKeys: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, o := range page.Contents {
			all = append(all, aws.ToString(o.Key))
		}
	}
	want := slices.Sorted(slices.Values(keys))
	if !slices.Equal(all, want) || pages != 4 {
		t.Errorf("ListObjectsV2 pages=%d keys=%q, want 4 pages of %q", pages, all, want)
	}

	// Delimiter, with pagination that resumes after a common prefix.
	var got []string
	p = s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String("media"), Delimiter: aws.String("/"), MaxKeys: aws.Int32(1)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, cp := range page.CommonPrefixes {
			got = append(got, aws.ToString(cp.Prefix))
		}
		for _, o := range page.Contents {
			got = append(got, aws.ToString(o.Key))
		}
	}
	if w := []string{"a/", "b/", "c", "local_thumbnails/", "sp ace/"}; !slices.Equal(got, w) {
		t.Errorf("delimited listing = %q, want %q", got, w)
	}

	// V1 with markers, and url encoding.
	var v1 []string
	var marker *string
	for range 10 {
		page, err := c.ListObjects(ctx(t), &s3.ListObjectsInput{Bucket: aws.String("media"), Prefix: aws.String("a"), Marker: marker, MaxKeys: aws.Int32(1), EncodingType: types.EncodingTypeUrl})
		if err != nil {
			t.Fatal(err)
		}
		// With encoding-type=url keys and markers come back encoded; the Go
		// SDK leaves decoding to the caller.
		for _, o := range page.Contents {
			k, err := url.QueryUnescape(aws.ToString(o.Key))
			if err != nil {
				t.Fatal(err)
			}
			v1 = append(v1, k)
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		m, err := url.QueryUnescape(aws.ToString(page.NextMarker))
		if err != nil {
			t.Fatal(err)
		}
		marker = &m
	}
	if !slices.Equal(v1, []string{"a/1", "a/2"}) {
		t.Errorf("ListObjects V1 = %q", v1)
	}

	// A restricted key sees only its prefix.
	tc := e.client(thumbKey, thumbSecret)
	page, err := tc.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String("media")})
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for _, o := range page.Contents {
		seen = append(seen, aws.ToString(o.Key))
	}
	if !slices.Equal(seen, []string{"local_thumbnails/x/1", "local_thumbnails/y/1"}) {
		t.Errorf("restricted listing = %q", seen)
	}
	if _, err := tc.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("c")}); apiCode(err) != "AccessDenied" {
		t.Errorf("restricted GetObject outside prefix: %v, want AccessDenied", err)
	}
	buckets, err := c.ListBuckets(ctx(t), &s3.ListBucketsInput{})
	if err != nil || len(buckets.Buckets) != 1 || aws.ToString(buckets.Buckets[0].Name) != "media" {
		t.Errorf("ListBuckets = %+v, %v; want just media", buckets, err)
	}
	// The other tenant sees only its own key.
	page, err = e.client(otherKey, otherSecret).ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String("media2")})
	if err != nil || len(page.Contents) != 1 || aws.ToString(page.Contents[0].Key) != "a/secret" {
		t.Errorf("media2 listing = %+v, %v", page, err)
	}
}

func TestCopyAndDelete(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(fullKey, fullSecret)
	if _, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("src key"), Body: strings.NewReader("hello"), ContentType: aws.String("text/plain")}); err != nil {
		t.Fatal(err)
	}
	cp, err := c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String("media"), Key: aws.String("dst"), CopySource: aws.String("media/src%20key")})
	if err != nil || cp.CopyObjectResult == nil || aws.ToString(cp.CopyObjectResult.ETag) == "" {
		t.Fatalf("CopyObject = %+v, %v", cp, err)
	}
	got, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(got.Body); string(b) != "hello" {
		t.Errorf("copied body = %q", b)
	}
	// Copying from a bucket the key has no grant on is refused.
	if _, err := c.CopyObject(ctx(t), &s3.CopyObjectInput{Bucket: aws.String("media"), Key: aws.String("stolen"), CopySource: aws.String("media2/a")}); apiCode(err) != "AccessDenied" {
		t.Errorf("copy from media2: %v, want AccessDenied", err)
	}
	if _, err := c.DeleteObject(ctx(t), &s3.DeleteObjectInput{Bucket: aws.String("media"), Key: aws.String("dst")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HeadObject(ctx(t), &s3.HeadObjectInput{Bucket: aws.String("media"), Key: aws.String("dst")}); err == nil {
		t.Error("deleted object still there")
	}
	for _, k := range []string{"d1", "d2", "d3"} {
		if _, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
			t.Fatal(err)
		}
	}
	del, err := c.DeleteObjects(ctx(t), &s3.DeleteObjectsInput{Bucket: aws.String("media"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("d1")}, {Key: aws.String("d2")}},
	}})
	if err != nil || len(del.Deleted) != 2 || len(del.Errors) != 0 {
		t.Fatalf("DeleteObjects = %+v, %v", del, err)
	}
	del, err = c.DeleteObjects(ctx(t), &s3.DeleteObjectsInput{Bucket: aws.String("media"), Delete: &types.Delete{
		Objects: []types.ObjectIdentifier{{Key: aws.String("d3")}}, Quiet: aws.Bool(true),
	}})
	if err != nil || len(del.Deleted) != 0 || len(del.Errors) != 0 {
		t.Fatalf("quiet DeleteObjects = %+v, %v", del, err)
	}
	page, err := c.ListObjectsV2(ctx(t), &s3.ListObjectsV2Input{Bucket: aws.String("media"), Prefix: aws.String("d")})
	if err != nil || len(page.Contents) != 0 {
		t.Errorf("after deletes: %+v, %v", page.Contents, err)
	}
	// A read-only key gets per-key AccessDenied in a batch.
	tc := e.client(thumbKey, thumbSecret)
	if _, err := tc.DeleteObjects(ctx(t), &s3.DeleteObjectsInput{Bucket: aws.String("media"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("src key")}}}}); apiCode(err) != "AccessDenied" {
		t.Errorf("DeleteObjects without a delete grant: %v, want AccessDenied", err)
	}
}

func TestPresignedAndAnonymous(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(fullKey, fullSecret)
	for _, k := range []string{"public/p", "private/p"} {
		if _, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(k), Body: strings.NewReader("body of " + k)}); err != nil {
			t.Fatal(err)
		}
	}
	ps := s3.NewPresignClient(c)
	req, err := ps.PresignGetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("private/p")}, s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.httpClient().Get(req.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(b) != "body of private/p" {
		t.Errorf("presigned GET = %d %q", res.StatusCode, b)
	}
	for _, tt := range []struct {
		path   string
		status int
	}{{"/media/public/p", 200}, {"/media/private/p", 403}, {"/media", 403}, {"/", 403}} {
		res, err := e.httpClient().Get(e.srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.status {
			t.Errorf("anonymous GET %s = %d, want %d", tt.path, res.StatusCode, tt.status)
		}
	}
}

func TestSDKChecksumModes(t *testing.T) {
	bothSchemes(t, func(t *testing.T, e *env) {
		for _, mode := range []aws.RequestChecksumCalculation{aws.RequestChecksumCalculationWhenSupported, aws.RequestChecksumCalculationWhenRequired} {
			for _, alg := range []types.ChecksumAlgorithm{"", types.ChecksumAlgorithmCrc32, types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmSha1, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmCrc64nvme} {
				c := e.client(fullKey, fullSecret, func(o *s3.Options) { o.RequestChecksumCalculation = mode })
				data := randomBytes(70<<10, 11)
				key := fmt.Sprintf("ck/%d/%s", mode, alg)
				// An io.Reader that is not seekable makes the SDK stream with
				// aws-chunked and a trailer; it does that only over TLS.
				bodies := []io.Reader{bytes.NewReader(data)}
				if e.srv.TLS != nil {
					bodies = append(bodies, struct{ io.Reader }{bytes.NewReader(data)})
				}
				for _, body := range bodies {
					_, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(key), Body: body, ChecksumAlgorithm: alg, ContentLength: aws.Int64(int64(len(data)))})
					if err != nil {
						t.Fatalf("PutObject mode %v alg %q body %T: %v", mode, alg, body, err)
					}
					raw, _, err := e.upstreamObject("hs1/" + key)
					if err != nil || !bytes.Equal(raw, data) {
						t.Fatalf("upstream bytes differ for mode %v alg %q body %T: %v", mode, alg, body, err)
					}
				}
			}
		}
		if n := e.up.ChunkedRequests(); n != 0 {
			t.Errorf("upstream got %d aws-chunked requests", n)
		}
		e.spoolEmpty()
	})
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func md5B64(b []byte) string    { s := md5.Sum(b); return base64.StdEncoding.EncodeToString(s[:]) }

// Keep net/http imported for helpers in other files of this package.
var _ = http.MethodGet

func putInput(bucket, key string, data []byte) *s3.PutObjectInput {
	return &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)}
}
