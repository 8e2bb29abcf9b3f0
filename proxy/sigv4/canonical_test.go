package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHMACMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		key := make([]byte, rng.IntN(200))
		msg := make([]byte, rng.IntN(800))
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		for i := range msg {
			msg[i] = byte(rng.Uint32())
		}
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		if got := hmacSHA256(key, msg); !bytes.Equal(got[:], m.Sum(nil)) {
			t.Fatalf("key %d bytes, msg %d bytes: mismatch", len(key), len(msg))
		}
	}
	long := strings.Repeat("s", 100) // "AWS4"+secret longer than a block
	got := deriveSigningKey(long, "20130524", "r", "s3")
	if want := testSigningKey(long, "20130524", "r"); !bytes.Equal(got[:], want) {
		t.Error("signing key with a long secret differs")
	}
}

func TestURIEncode(t *testing.T) {
	for _, c := range []struct{ in, path, query string }{
		{"", "", ""},
		{"abcXYZ019-._~", "abcXYZ019-._~", "abcXYZ019-._~"},
		{"a/b c", "a/b%20c", "a%2Fb%20c"},
		{"+=&?#%", "%2B%3D%26%3F%23%25", "%2B%3D%26%3F%23%25"},
		{"ü", "%C3%BC", "%C3%BC"},
		{"\x00\xff", "%00%FF", "%00%FF"},
	} {
		if got := string(appendURIEncode(nil, c.in, true)); got != c.path {
			t.Errorf("path %q: got %q, want %q", c.in, got, c.path)
		}
		if got := string(appendURIEncode(nil, c.in, false)); got != c.query {
			t.Errorf("query %q: got %q, want %q", c.in, got, c.query)
		}
	}
}

func TestIsCanonicalEncoded(t *testing.T) {
	for in, want := range map[string]bool{
		"": true, "abc": true, "a%2Fb": true, "a%20b": true,
		"a%2fb": false, "a%41": false, "a+b": false, "a b": false, "a%2": false, "a%": false, "a/b": false,
	} {
		if got := isCanonicalEncoded(in, false); got != want {
			t.Errorf("isCanonicalEncoded(%q) = %v", in, got)
		}
	}
	if !isCanonicalEncoded("/a/b%20c", true) || isCanonicalEncoded("/a%2F", true) {
		t.Error("path form")
	}
}

func TestCanonicalQuery(t *testing.T) {
	for _, c := range []struct{ raw, want string }{
		{"", ""},
		{"uploads", "uploads="},
		{"b=2&a=1&a=0", "a=0&a=1&b=2"},
		{"p=a-b&p=a%2Fb", "p=a%2Fb&p=a-b"}, // sorted after encoding: '%' < '-'
		{"p=a/b&p=a-b", "p=a%2Fb&p=a-b"},
		{"a=x+y&b=x%2By&c=%7e", "a=x%20y&b=x%2By&c=~"},
		{"a&&b=&", "a=&b="},
		{"k;v=1", "k%3Bv=1"},
		{"X-Amz-Signature=s&a=1", "X-Amz-Signature=s&a=1"},
	} {
		q, err := parseQuery(c.raw, nil)
		if err != nil {
			t.Fatalf("%q: %v", c.raw, err)
		}
		if got := string(appendCanonicalQuery(nil, q, false)); got != c.want {
			t.Errorf("%q: got %q, want %q", c.raw, got, c.want)
		}
	}
	q, _ := parseQuery("X-Amz-Signature=s&a=1", nil)
	if got := string(appendCanonicalQuery(nil, q, true)); got != "a=1" {
		t.Errorf("presigned: got %q", got)
	}
}

func TestAppendTrimmed(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "  a  ": "a", "a   b  c": "a b c", "a\tb": "a\tb", "\t a \t": "a",
	} {
		if got := string(appendTrimmed(nil, in)); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// simpleAuthorization signs a request with a canonical request written out
// by hand, for cases no SDK produces (Date header, signed transfer-encoding,
// multi-value headers). headers are "name:value" canonical lines, sorted.
func simpleAuthorization(method, uri, query string, headers []string, payload, amzDate string) string {
	var names []string
	for _, h := range headers {
		names = append(names, h[:strings.IndexByte(h, ':')])
	}
	signed := strings.Join(names, ";")
	cr := method + "\n" + uri + "\n" + query + "\n" + strings.Join(headers, "\n") + "\n\n" + signed + "\n" + payload
	scope := amzDate[:8] + "/us-east-1/s3/aws4_request"
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hexSHA256([]byte(cr))
	sig := hex.EncodeToString(testHMAC(testSigningKey(testSecret, amzDate[:8], testRegion), sts))
	return "AWS4-HMAC-SHA256 Credential=" + testAKID + "/" + scope + ",SignedHeaders=" + signed + ",Signature=" + sig
}

func TestVerifyHandSigned(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	const e = emptySHA256
	cases := []struct {
		name, wire string
	}{
		{"date header, http format", "GET /b/k HTTP/1.1\r\nHost: h\r\nDate: Wed, 04 Mar 2026 05:06:07 GMT\r\nX-Amz-Content-Sha256: " + e + "\r\nAuthorization: " +
			simpleAuthorization("GET", "/b/k", "", []string{"date:Wed, 04 Mar 2026 05:06:07 GMT", "host:h", "x-amz-content-sha256:" + e}, e, "20260304T050607Z") + "\r\n\r\n"},
		{"date header, iso format", "GET /b/k HTTP/1.1\r\nHost: h\r\nDate: 20260304T050607Z\r\nX-Amz-Content-Sha256: " + e + "\r\nAuthorization: " +
			simpleAuthorization("GET", "/b/k", "", []string{"date:20260304T050607Z", "host:h", "x-amz-content-sha256:" + e}, e, "20260304T050607Z") + "\r\n\r\n"},
		{"signed transfer-encoding and content-length", "PUT /b/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Amz-Date: 20260304T050607Z\r\nX-Amz-Content-Sha256: UNSIGNED-PAYLOAD\r\nAuthorization: " +
			simpleAuthorization("PUT", "/b/k", "", []string{"host:h", "transfer-encoding:chunked", "x-amz-date:20260304T050607Z"}, unsignedPayload, "20260304T050607Z") + "\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
		{"multi-value header and absent signed header", "GET /b/k HTTP/1.1\r\nHost: h\r\nX-Amz-Meta-M: a\r\nX-Amz-Meta-M:  b  c \r\nX-Amz-Date: 20260304T050607Z\r\nX-Amz-Content-Sha256: " + e + "\r\nAuthorization: " +
			simpleAuthorization("GET", "/b/k", "", []string{"host:h", "if-none-match:", "x-amz-date:20260304T050607Z", "x-amz-meta-m:a,b c"}, e, "20260304T050607Z") + "\r\n\r\n"},
		{"path sent with a literal plus", "GET /b/a+b HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20260304T050607Z\r\nX-Amz-Content-Sha256: " + e + "\r\nAuthorization: " +
			simpleAuthorization("GET", "/b/a+b", "", []string{"host:h", "x-amz-date:20260304T050607Z"}, e, "20260304T050607Z") + "\r\n\r\n"},
		{"path with lower-case escapes", "GET /b/a%2fb%c3%bc HTTP/1.1\r\nHost: h\r\nX-Amz-Date: 20260304T050607Z\r\nX-Amz-Content-Sha256: " + e + "\r\nAuthorization: " +
			simpleAuthorization("GET", "/b/a/b%C3%BC", "", []string{"host:h", "x-amz-date:20260304T050607Z"}, e, "20260304T050607Z") + "\r\n\r\n"},
	}
	v := newTestVerifier(at)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := parseWire(t, c.wire)
			if _, err := v.Verify(r); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			io.Copy(io.Discard, r.Body)
		})
	}
}

// TestVerifyClientSideRequest verifies requests as a client holds them:
// Host and Content-Length only in their fields, no RequestURI.
func TestVerifyClientSideRequest(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	v := newTestVerifier(at)
	for _, c := range keyCases {
		r := c.request(t, "127.0.0.1:9000")
		sdkSign(t, r, hexSHA256(c.body), at)
		if _, err := v.Verify(r); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	r, _ := http.NewRequest("PUT", "http://h/b/k", strings.NewReader("abc"))
	sdkSign(t, r, hexSHA256([]byte("abc")), at)
	if !strings.Contains(r.Header.Get("Authorization"), "content-length") {
		t.Fatal("the SDK did not sign content-length")
	}
	if _, err := v.Verify(r); err != nil {
		t.Error(err)
	}
}
