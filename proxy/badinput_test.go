package proxy_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/xml"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// signed builds a request signed like an SDK would sign it, at a given time,
// with the payload hash the caller chooses (the real one unless a test lies).
func (e *env) signed(method, path string, body []byte, key, secret string, when time.Time, payloadHash string, mutate func(*http.Request)) *http.Request {
	e.t.Helper()
	r, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if payloadHash == "" {
		payloadHash = sha256Hex(body)
	}
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if mutate != nil {
		mutate(r)
	}
	creds := aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(e.t.Context(), creds, r, payloadHash, "s3", "us-east-1", when); err != nil {
		e.t.Fatal(err)
	}
	return r
}

type s3Error struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// do sends r and returns the status and S3 error code of the answer.
func (e *env) do(r *http.Request) (int, string) {
	e.t.Helper()
	res, err := e.httpClient().Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var se s3Error
	_ = xml.Unmarshal(b, &se)
	if strings.Contains(string(b), fullSecret) {
		e.t.Errorf("response leaks the secret: %s", b)
	}
	return res.StatusCode, se.Code
}

// writes counts the upstream requests that could store something.
func (e *env) writes() int64 {
	var n int64
	for _, op := range []string{"PutObject", "UploadPart", "CompleteMultipartUpload", "CreateMultipartUpload", "CopyObject", "DeleteObject", "DeleteObjects"} {
		n += e.up.Requests(op)
	}
	return n
}

func TestBadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(fullKey, fullSecret)
	if _, err := c.PutObject(ctx(t), putInput("media", "exists", []byte("0123456789"))); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	body := []byte("payload")
	longKey := "/media/" + strings.Repeat("k", 1025)
	tests := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		{"no auth on put", func() *http.Request {
			r, _ := http.NewRequest("PUT", e.srv.URL+"/media/k", bytes.NewReader(body))
			return r
		}, 403, "AccessDenied"},
		{"malformed auth", func() *http.Request {
			r := e.signed("PUT", "/media/k", body, fullKey, fullSecret, now, "", nil)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=garbage")
			return r
		}, 400, "AuthorizationHeaderMalformed"},
		{"unknown access key", func() *http.Request {
			return e.signed("PUT", "/media/k", body, "nobody", fullSecret, now, "", nil)
		}, 403, "InvalidAccessKeyId"},
		{"wrong secret", func() *http.Request {
			return e.signed("PUT", "/media/k", body, fullKey, "wrong-secret-000000", now, "", nil)
		}, 403, "SignatureDoesNotMatch"},
		{"tampered header", func() *http.Request {
			r := e.signed("PUT", "/media/k", body, fullKey, fullSecret, now, "", func(r *http.Request) { r.Header.Set("X-Amz-Meta-A", "1") })
			r.Header.Set("X-Amz-Meta-A", "2")
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"skewed clock", func() *http.Request {
			return e.signed("PUT", "/media/k", body, fullKey, fullSecret, now.Add(-20*time.Minute), "", nil)
		}, 403, "RequestTimeTooSkewed"},
		{"expired presigned", func() *http.Request {
			r, _ := http.NewRequest("GET", e.srv.URL+"/media/exists", nil)
			r.Header.Set("X-Amz-Expires", "60")
			q := r.URL.Query()
			q.Set("X-Amz-Expires", "60")
			r.URL.RawQuery = q.Encode()
			u, _, err := v4.NewSigner().PresignHTTP(t.Context(), aws.Credentials{AccessKeyID: fullKey, SecretAccessKey: fullSecret}, r, "UNSIGNED-PAYLOAD", "s3", "us-east-1", now.Add(-2*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			r2, _ := http.NewRequest("GET", u, nil)
			return r2
		}, 403, "AccessDenied"},
		{"payload hash mismatch", func() *http.Request {
			return e.signed("PUT", "/media/k", body, fullKey, fullSecret, now, sha256Hex([]byte("other")), nil)
		}, 400, "XAmzContentSHA256Mismatch"},
		{"bad content-md5", func() *http.Request {
			return e.signed("PUT", "/media/k", body, fullKey, fullSecret, now, "", func(r *http.Request) { r.Header.Set("Content-MD5", md5B64([]byte("other"))) })
		}, 400, "BadDigest"},
		{"bad crc32 checksum", func() *http.Request {
			return e.signed("PUT", "/media/k", body, fullKey, fullSecret, now, "UNSIGNED-PAYLOAD", func(r *http.Request) { r.Header.Set("X-Amz-Checksum-Crc32", "AAAAAA==") })
		}, 400, "BadDigest"},
		{"bad chunk signature", func() *http.Request {
			data := randomBytes(100<<10, 5)
			r, _ := http.NewRequest("PUT", e.srv.URL+"/media/k", bytes.NewReader(data))
			r = signer.StreamingSignV4(r, fullKey, fullSecret, "", "us-east-1", int64(len(data)), time.Now().UTC(), sha256Hasher{sha256.New()})
			r.Body = io.NopCloser(&flipReader{r: r.Body, at: 300})
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"key too long", func() *http.Request {
			return e.signed("PUT", longKey, body, fullKey, fullSecret, now, "", nil)
		}, 400, "KeyTooLongError"},
		{"malformed DeleteObjects", func() *http.Request {
			b := []byte("<Delete><Object><Key>k</Key>")
			return e.signed("POST", "/media?delete", b, fullKey, fullSecret, now, "", func(r *http.Request) { r.Header.Set("Content-MD5", md5B64(b)) })
		}, 400, "MalformedXML"},
		{"malformed CompleteMultipartUpload", func() *http.Request {
			return e.signed("POST", "/media/k?uploadId=x", []byte("<<<"), fullKey, fullSecret, now, "", nil)
		}, 400, "MalformedXML"},
		{"unsatisfiable range", func() *http.Request {
			return e.signed("GET", "/media/exists", nil, fullKey, fullSecret, now, "", func(r *http.Request) { r.Header.Set("Range", "bytes=100-200") })
		}, 416, "InvalidRange"},
		{"unknown bucket", func() *http.Request {
			return e.signed("PUT", "/nosuchbucket/k", body, fullKey, fullSecret, now, "", nil)
		}, 404, "NoSuchBucket"},
		{"no grant", func() *http.Request {
			return e.signed("PUT", "/media2/k", body, fullKey, fullSecret, now, "", nil)
		}, 403, "AccessDenied"},
		{"read-only grant writes", func() *http.Request {
			return e.signed("PUT", "/media/local_thumbnails/k", body, thumbKey, thumbSecret, now, "", nil)
		}, 403, "AccessDenied"},
		{"oversized headers", func() *http.Request {
			return e.signed("PUT", "/media/k", body, fullKey, fullSecret, now, "", func(r *http.Request) {
				for i := range 40 {
					r.Header.Set(fmt.Sprintf("X-Pad-%d", i), strings.Repeat("p", 2000))
				}
			})
		}, 400, "RequestHeaderSectionTooLarge"},
		{"too much metadata", func() *http.Request {
			return e.signed("PUT", "/media/k", body, fullKey, fullSecret, now, "", func(r *http.Request) { r.Header.Set("X-Amz-Meta-Big", strings.Repeat("m", 3000)) })
		}, 400, "MetadataTooLarge"},
		{"unsupported operation", func() *http.Request {
			return e.signed("PUT", "/media?policy", []byte("{}"), fullKey, fullSecret, now, "", nil)
		}, 501, "NotImplemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.writes()
			status, code := e.do(tt.req())
			if status != tt.status || code != tt.code {
				t.Errorf("got %d %s, want %d %s", status, code, tt.status, tt.code)
			}
			if after := e.writes(); after != before {
				t.Errorf("upstream saw %d write requests", after-before)
			}
			if _, _, err := e.upstreamObject("hs1/k"); err == nil {
				t.Error("an object was stored upstream")
			}
			e.spoolEmpty()
		})
	}
}

// TestClientDisconnectMidUpload: a client that goes away mid-body leaves
// nothing upstream and nothing in the spool.
func TestClientDisconnectMidUpload(t *testing.T) {
	e := newEnv(t, envOptions{})
	data := randomBytes(1<<20, 9)
	r := e.signed("PUT", "/media/partial", data, fullKey, fullSecret, time.Now(), "", nil)
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "PUT /media/partial HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", r.Host, len(data))
	for k, vs := range r.Header {
		fmt.Fprintf(&head, "%s: %s\r\n", k, vs[0])
	}
	head.WriteString("\r\n")
	conn.Write(head.Bytes())
	conn.Write(data[:300<<10])
	conn.Close()
	// The handler notices the close on its next read; wait for it to clean
	// up, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ents, _ := os.ReadDir(e.spoolDir)
		if len(ents) == 0 && e.up.Requests("PutObject") == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool still has %d files, upstream puts %d", len(ents), e.up.Requests("PutObject"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, _, err := e.upstreamObject("hs1/partial"); err == nil {
		t.Error("a partial upload reached the upstream")
	}
}

// flipReader corrupts one byte of a stream at a given offset.
type flipReader struct {
	r   io.Reader
	at  int64
	off int64
}

func (f *flipReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.off && f.at < f.off+int64(n) {
		p[f.at-f.off] ^= 0x01
	}
	f.off += int64(n)
	return n, err
}

// sha256Hasher adapts hash.Hash to the hasher minio-go's signer takes.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}
