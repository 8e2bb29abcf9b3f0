package sigv4

// Client-side helpers for the tests: requests are signed by real signers
// (aws-sdk-go-v2, minio-go) wherever possible, so the verifier is checked
// against independent code. encodeChunked is this package's only signer; it
// uses crypto/hmac and is itself checked against AWS's published vectors.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testAKID   = "AKIAIOSFODNN7EXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	testRegion = "us-east-1"
)

// exampleTime is the request time of every AWS documentation example.
var exampleTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

var errUnknownKey = errors.New("unknown access key")

// newTestVerifier accepts testAKID/testSecret at a fixed clock.
func newTestVerifier(now time.Time) *Verifier {
	return &Verifier{
		Secret: func(akid string) (string, error) {
			if akid == testAKID {
				return testSecret, nil
			}
			return "", errUnknownKey
		},
		Now: func() time.Time { return now },
	}
}

var testCreds = aws.Credentials{AccessKeyID: testAKID, SecretAccessKey: testSecret}

// s3Signer signs like the S3 client: the path is escaped once, by the
// caller's URL, and not again by the signer.
func s3Signer() *v4.Signer {
	return v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
}

// sdkSign signs r with aws-sdk-go-v2 for s3/us-east-1, setting
// X-Amz-Content-Sha256 to payload as the S3 client does.
func sdkSign(t testing.TB, r *http.Request, payload string, at time.Time) {
	t.Helper()
	r.Header.Set("X-Amz-Content-Sha256", payload)
	if err := s3Signer().SignHTTP(context.Background(), testCreds, r, payload, "s3", testRegion, at); err != nil {
		t.Fatal(err)
	}
}

// sdkPresign presigns r with aws-sdk-go-v2 and returns the signed URL.
func sdkPresign(t testing.TB, r *http.Request, expires time.Duration, at time.Time) string {
	t.Helper()
	q := r.URL.Query()
	q.Set("X-Amz-Expires", fmt.Sprint(int(expires/time.Second)))
	r.URL.RawQuery = q.Encode()
	u, _, err := s3Signer().PresignHTTP(context.Background(), testCreds, r, unsignedPayload, "s3", testRegion, at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// newRequest builds a client request; rawPath, when set, is the exact
// escaped path to send (it must decode to path).
func newRequest(t testing.TB, method, host, path, rawPath, rawQuery string, body []byte) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://"+host+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.URL.Path, r.URL.RawPath, r.URL.RawQuery = path, rawPath, rawQuery
	if body == nil {
		r.Body, r.ContentLength = http.NoBody, 0
	}
	return r
}

// toServer sends r through the HTTP/1.1 wire format and parses it back the
// way net/http's server does (Host, Content-Length and Transfer-Encoding
// leave the header map; RequestURI is the request target as sent).
func toServer(t testing.TB, r *http.Request) *http.Request {
	t.Helper()
	var wire bytes.Buffer
	if err := r.Write(&wire); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&wire))
	if err != nil {
		t.Fatalf("parse %q: %v", wire.String(), err)
	}
	return sr
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func testHMAC(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// testSigningKey derives the signing key with crypto/hmac.
func testSigningKey(secret, date, region string) []byte {
	k := testHMAC([]byte("AWS4"+secret), date)
	k = testHMAC(k, region)
	k = testHMAC(k, "s3")
	return testHMAC(k, "aws4_request")
}

// chunkSpec describes an aws-chunked body for encodeChunked.
type chunkSpec struct {
	signed    bool     // chunk-signature extensions and a signed trailer
	sizes     []int    // chunk sizes; the remainder goes in one more chunk
	trailers  []string // "name:value" lines
	seed      string   // hex request signature
	key       []byte   // signing key
	amzDate   string
	scope     string
	lfTrailer bool // minio-go's "name:value\n" + CRLF trailer form
}

// encodeChunked frames data as aws-chunked, signing chunks and trailer.
func encodeChunked(data []byte, s chunkSpec) []byte {
	var out bytes.Buffer
	prev := s.seed
	sign := func(kind, tail string) string {
		sts := "AWS4-HMAC-SHA256-" + kind + "\n" + s.amzDate + "\n" + s.scope + "\n" + prev + "\n" + tail
		prev = hex.EncodeToString(testHMAC(s.key, sts))
		return prev
	}
	chunk := func(p []byte) {
		fmt.Fprintf(&out, "%x", len(p))
		if s.signed {
			fmt.Fprintf(&out, ";chunk-signature=%s", sign("PAYLOAD", emptySHA256+"\n"+hexSHA256(p)))
		}
		out.WriteString("\r\n")
		out.Write(p)
	}
	rest := data
	for _, n := range s.sizes {
		n = min(n, len(rest))
		if n == 0 {
			break
		}
		chunk(rest[:n])
		out.WriteString("\r\n")
		rest = rest[n:]
	}
	if len(rest) > 0 {
		chunk(rest)
		out.WriteString("\r\n")
	}
	chunk(nil)
	if s.trailers == nil {
		out.WriteString("\r\n")
		return out.Bytes()
	}
	var canon strings.Builder
	for _, tr := range s.trailers {
		canon.WriteString(tr + "\n")
		if s.lfTrailer {
			out.WriteString(tr + "\n")
		} else {
			out.WriteString(tr + "\r\n")
		}
	}
	if s.lfTrailer {
		out.WriteString("\r\n")
	}
	if s.signed {
		fmt.Fprintf(&out, "x-amz-trailer-signature:%s\r\n", sign("TRAILER", hexSHA256([]byte(canon.String()))))
	}
	out.WriteString("\r\n")
	return out.Bytes()
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// sha256Hasher adapts crypto/sha256 to minio-go's md5simd.Hasher.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// readAllSmall reads r in reads of n bytes, to exercise partial reads.
func readAllSmall(r io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := r.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}
