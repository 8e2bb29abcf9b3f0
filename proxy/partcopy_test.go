package proxy_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// TestUploadPartCopy: parts copied from ranges of existing objects, one in
// another virtual bucket, and a part uploaded plainly complete into the
// exact bytes; bad ranges, failed preconditions, missing or forbidden
// sources and an upstream that fails mid-copy get S3's errors and upload
// nothing; no spool file is left.
func TestUploadPartCopy(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(fullKey, fullSecret)
	a := randomBytes(7<<20+11, 41)
	b := randomBytes(5<<20, 42)
	tail := randomBytes(1000, 43)
	e.up.PutObject(upstreamBucket, "hs1/src/a", a)
	e.up.PutObject(upstreamBucket, "hs1/src/b", b)
	sum := md5.Sum(a)
	etagA := `"` + hex.EncodeToString(sum[:]) + `"`

	mp, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String("media"), Key: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	id := mp.UploadId
	copyPart := func(n int32, src, rng string, mutate func(*s3.UploadPartCopyInput)) (*s3.UploadPartCopyOutput, error) {
		in := &s3.UploadPartCopyInput{Bucket: aws.String("media"), Key: aws.String("dst"), UploadId: id,
			PartNumber: aws.Int32(n), CopySource: aws.String(src)}
		if rng != "" {
			in.CopySourceRange = aws.String(rng)
		}
		if mutate != nil {
			mutate(in)
		}
		return c.UploadPartCopy(ctx(t), in)
	}

	// Bad input first: none of it may upload a part.
	for _, tt := range []struct {
		name, src, rng string
		mutate         func(*s3.UploadPartCopyInput)
		code           string
	}{
		{"open range", "media/src/a", "bytes=5-", nil, "InvalidArgument"},
		{"suffix range", "media/src/a", "bytes=-5", nil, "InvalidArgument"},
		{"reversed range", "media/src/a", "bytes=9-5", nil, "InvalidArgument"},
		{"range past the end", "media/src/a", "bytes=99999999-100000000", nil, "InvalidRange"},
		{"range ending past the end", "media/src/a", "bytes=0-99999999", nil, "InvalidArgument"},
		{"missing source", "media/src/none", "", nil, "NoSuchKey"},
		{"unknown bucket", "nope/src/a", "", nil, "NoSuchBucket"},
		{"no bucket", "src", "", nil, "InvalidArgument"},
		{"if-match fails", "media/src/a", "", func(in *s3.UploadPartCopyInput) { in.CopySourceIfMatch = aws.String(`"0123"`) }, "PreconditionFailed"},
		{"if-none-match fails", "media/src/a", "", func(in *s3.UploadPartCopyInput) { in.CopySourceIfNoneMatch = aws.String(etagA) }, "PreconditionFailed"},
		{"if-modified-since fails", "media/src/a", "", func(in *s3.UploadPartCopyInput) {
			in.CopySourceIfModifiedSince = aws.Time(time.Now().Add(time.Hour))
		}, "PreconditionFailed"},
		{"if-unmodified-since fails", "media/src/a", "", func(in *s3.UploadPartCopyInput) {
			in.CopySourceIfUnmodifiedSince = aws.Time(time.Now().Add(-time.Hour))
		}, "PreconditionFailed"},
	} {
		if _, err := copyPart(1, tt.src, tt.rng, tt.mutate); apiCode(err) != tt.code {
			t.Errorf("%s: err = %v, want %s", tt.name, err, tt.code)
		}
	}
	// A key that may not read the source may not copy it.
	other := e.client(otherKey, otherSecret)
	mp2, err := other.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String("media2"), Key: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.UploadPartCopy(ctx(t), &s3.UploadPartCopyInput{Bucket: aws.String("media2"), Key: aws.String("dst"),
		UploadId: mp2.UploadId, PartNumber: aws.Int32(1), CopySource: aws.String("media/src/a")}); apiCode(err) != "AccessDenied" {
		t.Errorf("copy from a bucket the key may not read: %v, want AccessDenied", err)
	}
	// The upstream failing in the middle of the source uploads nothing
	// (and the client, told to retry, does not here).
	e.up.SetShape(upstreamtest.Shape{Fail: upstreamtest.FailFirst(1, "GetObject", upstreamtest.ResetAfter(100<<10))})
	if _, err := e.client(fullKey, fullSecret, func(o *s3.Options) { o.Retryer = aws.NopRetryer{} }).UploadPartCopy(ctx(t), &s3.UploadPartCopyInput{
		Bucket: aws.String("media"), Key: aws.String("dst"), UploadId: id, PartNumber: aws.Int32(1),
		CopySource: aws.String("media/src/a")}); apiCode(err) != "ServiceUnavailable" {
		t.Errorf("source reset mid-body: %v, want ServiceUnavailable", err)
	}
	e.up.SetShape(upstreamtest.Shape{})
	if n := e.up.Requests("UploadPart"); n != 0 {
		t.Fatalf("bad copies uploaded %d parts", n)
	}

	// Part 1: a range of a, under a condition that holds; part 2: all of
	// b; part 3: plain bytes.
	p1, err := copyPart(1, "/media/src/a", "bytes=1000-5243879", func(in *s3.UploadPartCopyInput) { in.CopySourceIfMatch = aws.String(etagA) })
	if err != nil {
		t.Fatal(err)
	}
	p2, err := copyPart(2, "media/src/b", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	p3, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String("media"), Key: aws.String("dst"), UploadId: id,
		PartNumber: aws.Int32(3), Body: bytes.NewReader(tail)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String("media"), Key: aws.String("dst"), UploadId: id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: p1.CopyPartResult.ETag},
			{PartNumber: aws.Int32(2), ETag: p2.CopyPartResult.ETag},
			{PartNumber: aws.Int32(3), ETag: p3.ETag},
		}}}); err != nil {
		t.Fatal(err)
	}
	want := append(append(bytes.Clone(a[1000:5243880]), b...), tail...)
	got, err := c.GetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("dst")})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(got.Body)
	got.Body.Close()
	if err != nil || !bytes.Equal(body, want) {
		t.Fatalf("completed object: %d bytes, err %v; want the copied ranges and the plain part (%d bytes)", len(body), err, len(want))
	}
	if p1.CopyPartResult.LastModified == nil || aws.ToString(p1.CopyPartResult.ETag) == "" {
		t.Errorf("CopyPartResult = %+v, want an ETag and LastModified", p1.CopyPartResult)
	}
	// The emulated copies send their bytes upstream as uploads do.
	if got, want := e.counter("s3edge_upload_bytes_total", map[string]string{"bucket": "media"}), float64(len(want)); got != want {
		t.Errorf("s3edge_upload_bytes_total{bucket=media} = %v, want %v", got, want)
	}
	e.spoolEmpty()
}
