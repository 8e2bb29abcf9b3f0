package sigv4

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// seen is what the test server recorded about one request.
type seen struct {
	method, path string
	mode         PayloadMode
	body         []byte
	trailer      http.Header
	err          error
}

// recorder is an S3 endpoint that verifies every request with a Verifier
// and decodes its body, the way the proxy will.
type recorder struct {
	v  *Verifier
	mu sync.Mutex
	// mu guards reqs.
	reqs []seen
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := seen{method: r.Method, path: r.URL.EscapedPath()}
	a, err := rec.v.Verify(r)
	if err == nil {
		s.mode = a.Payload
		var body io.Reader
		if body, err = a.Body(r.Body); err == nil {
			s.body, err = io.ReadAll(body)
			if cr, ok := body.(*ChunkedReader); ok {
				s.trailer = cr.Trailer()
			}
		}
	}
	s.err = err
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, s)
	rec.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	w.Header().Set("ETag", `"0123"`)
	if r.Method == http.MethodGet {
		w.Write([]byte("<ListBucketResult></ListBucketResult>"))
	}
}

func (rec *recorder) last(t *testing.T) seen {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("no request reached the server")
	}
	s := rec.reqs[len(rec.reqs)-1]
	rec.reqs = nil
	return s
}

// TestS3ClientEndToEnd drives the real aws-sdk-go-v2 S3 client (default
// checksum settings) against a Verifier, over http (signed payload and a
// CRC32 header) and https (aws-chunked with a CRC32 trailer).
func TestS3ClientEndToEnd(t *testing.T) {
	data := bytes.Repeat([]byte("payload "), 20_000)
	keys := []string{"plain.bin", "a b/[2001:db8::1]:8448/ü+=&$.txt", "dir/with%percent", "~tilde/'quote'/(x)"}
	for _, tls := range []bool{false, true} {
		rec := &recorder{v: newTestVerifier(time.Now())}
		var srv *httptest.Server
		if tls {
			srv = httptest.NewTLSServer(rec)
		} else {
			srv = httptest.NewServer(rec)
		}
		t.Cleanup(srv.Close)
		client := s3.New(s3.Options{
			BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Region: testRegion,
			Credentials:      credentials.NewStaticCredentialsProvider(testAKID, testSecret, ""),
			HTTPClient:       srv.Client(),
			RetryMaxAttempts: 1,
		})
		ctx := context.Background()
		for _, key := range keys {
			_, err := client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String("media"), Key: aws.String(key), Body: bytes.NewReader(data),
				ChecksumAlgorithm: types.ChecksumAlgorithmCrc32, StorageClass: types.StorageClassStandard,
			})
			s := rec.last(t)
			if err != nil || s.err != nil {
				t.Fatalf("tls=%v put %q: client %v, server %v", tls, key, err, s.err)
			}
			if !bytes.Equal(s.body, data) {
				t.Fatalf("tls=%v put %q: server decoded %d bytes", tls, key, len(s.body))
			}
			// What SDK v1.114 does by default (WhenSupported); if an SDK
			// upgrade changes it, the streaming path needs another driver.
			if want := map[bool]PayloadMode{false: PayloadSigned, true: StreamingUnsignedTrailer}[tls]; s.mode != want {
				t.Errorf("tls=%v put: payload mode %v, want %v", tls, s.mode, want)
			}
			if s.mode == StreamingUnsignedTrailer {
				var crc [4]byte
				binary.BigEndian.PutUint32(crc[:], crc32.ChecksumIEEE(data))
				if got := s.trailer.Get("X-Amz-Checksum-Crc32"); got != base64.StdEncoding.EncodeToString(crc[:]) {
					t.Errorf("trailer crc32 %q", got)
				}
			}
		}
		_, err := client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String("media"), Key: aws.String(keys[1]), UploadId: aws.String("2~abc/def=="),
			PartNumber: aws.Int32(3), Body: bytes.NewReader(data[:1000]),
		})
		if s := rec.last(t); err != nil || s.err != nil || !bytes.Equal(s.body, data[:1000]) {
			t.Fatalf("upload part: client %v, server %v", err, s.err)
		}
		_, _ = client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket: aws.String("media"), Prefix: aws.String("a b/c+d"), Delimiter: aws.String("/"),
			StartAfter: aws.String("x=y&z"),
		})
		if s := rec.last(t); s.err != nil {
			t.Fatalf("list: server %v", s.err)
		}
		_, _ = client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String(keys[1]), Range: aws.String("bytes=0-9")})
		if s := rec.last(t); s.err != nil {
			t.Fatalf("get: server %v", s.err)
		}
		pre, err := s3.NewPresignClient(client).PresignGetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String("media"), Key: aws.String(keys[1]),
			ResponseContentDisposition: aws.String(`attachment; filename="a b.txt"`),
		}, s3.WithPresignExpires(10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Get(pre.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if s := rec.last(t); s.err != nil || resp.StatusCode != 200 || !strings.Contains(pre.URL, "X-Amz-Signature=") {
			t.Fatalf("presigned get %s: %d, server %v", pre.URL, resp.StatusCode, s.err)
		}
	}
}
