package proxy_test

import (
	"bytes"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// TestUploadsSurviveALostSpoolDirectory: when the spool directory cannot
// take files, uploads that fit limits.memory_spool wait in memory and reach
// the upstream whole (PUT, multipart part); a body larger than that gets 503
// and uploads nothing. (With a cache, a cacheable PUT is staged in the
// cache's own directory and does not need the spool.)
func TestUploadsSurviveALostSpoolDirectory(t *testing.T) {
	e := newEnv(t, envOptions{memorySpool: 8 << 20})
	// The spool directory turns into a file: every create in it fails.
	if err := os.RemoveAll(e.spoolDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.spoolDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := e.client(fullKey, fullSecret)

	small := randomBytes(3<<20, 61)
	if _, err := c.PutObject(ctx(t), putInput("media", "spool/put", small)); err != nil {
		t.Fatalf("PUT with no spool directory: %v", err)
	}
	if got, ok := e.up.Object(upstreamBucket, "hs1/spool/put"); !ok || !bytes.Equal(got, small) {
		t.Errorf("upstream holds %d bytes, want the %d uploaded", len(got), len(small))
	}

	part := randomBytes(5<<20, 62)
	mp, err := c.CreateMultipartUpload(ctx(t), &s3.CreateMultipartUploadInput{Bucket: aws.String("media"), Key: aws.String("spool/mp")})
	if err != nil {
		t.Fatal(err)
	}
	p1, err := c.UploadPart(ctx(t), &s3.UploadPartInput{Bucket: aws.String("media"), Key: aws.String("spool/mp"), UploadId: mp.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(part)})
	if err != nil {
		t.Fatalf("UploadPart with no spool directory: %v", err)
	}
	if _, err := c.CompleteMultipartUpload(ctx(t), &s3.CompleteMultipartUploadInput{Bucket: aws.String("media"), Key: aws.String("spool/mp"), UploadId: mp.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: p1.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.up.Object(upstreamBucket, "hs1/spool/mp"); !bytes.Equal(got, part) {
		t.Errorf("multipart object: %d bytes, want %d", len(got), len(part))
	}

	before := e.writes()
	big := randomBytes(9<<20, 63)
	r := e.signed("PUT", "/media/spool/big", big, fullKey, fullSecret, time.Now(), "", nil)
	if st, code := e.do(r); st != 503 || code != "ServiceUnavailable" {
		t.Errorf("PUT above memory_spool = %d %s, want 503 ServiceUnavailable", st, code)
	}
	if n := e.writes() - before; n != 0 {
		t.Errorf("a refused upload made %d upstream writes", n)
	}
}
