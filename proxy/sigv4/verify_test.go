package sigv4

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// signedCase is one request for the SDK round-trip tables.
type signedCase struct {
	name, method, path, rawPath, query string
	header                             map[string]string
	body                               []byte
	unsigned                           bool // UNSIGNED-PAYLOAD instead of the body hash
}

var keyCases = []signedCase{
	{name: "plain", method: "GET", path: "/bucket/key.txt"},
	{name: "root", method: "GET", path: "/"},
	{name: "space", method: "GET", path: "/bucket/a b/c d.txt", rawPath: "/bucket/a%20b/c%20d.txt"},
	{name: "unicode", method: "GET", path: "/bucket/日本語/ü.png", rawPath: "/bucket/%E6%97%A5%E6%9C%AC%E8%AA%9E/%C3%BC.png"},
	{name: "synapse remote media", method: "GET", path: "/media/remote_content/[2001:db8::1]:8448/ab/cd",
		rawPath: "/media/remote_content/%5B2001%3Adb8%3A%3A1%5D%3A8448/ab/cd"},
	{name: "brackets raw", method: "GET", path: "/b/[x]", rawPath: "/b/%5Bx%5D"},
	{name: "plus", method: "GET", path: "/b/a+b", rawPath: "/b/a%2Bb"},
	{name: "equals and colon", method: "GET", path: "/b/k=v:w", rawPath: "/b/k%3Dv%3Aw"},
	{name: "literal percent", method: "GET", path: "/b/100%25/a%2Fb", rawPath: "/b/100%2525/a%252Fb"},
	{name: "slash in key encoded", method: "GET", path: "/b/dir/file", rawPath: "/b/dir%2Ffile"},
	{name: "sub-delims", method: "GET", path: "/b/!$&'()*,;@", rawPath: "/b/%21%24%26%27%28%29%2A%2C%3B%40"},
	{name: "unreserved", method: "GET", path: "/b/A-Z_a.z~09"},
	{name: "no normalisation", method: "GET", path: "/b//x/./y/../z"},
	{name: "hash and question", method: "GET", path: "/b/a#b?c", rawPath: "/b/a%23b%3Fc"},
	{name: "uploads", method: "POST", path: "/b/big.bin", query: "uploads"},
	{name: "list v2", method: "GET", path: "/b", query: "list-type=2&prefix=a%2Fb&delimiter=%2F"},
	{name: "upload part", method: "PUT", path: "/b/big.bin", query: "partNumber=1&uploadId=x", body: []byte("part one")},
	{name: "query needs sorting", method: "GET", path: "/b", query: "z=1&a=2&a=1&m=&encoded%20key=%7Ev"},
	{name: "query slash vs dash", method: "GET", path: "/b", query: "p=a%2Fb&p=a-b"},
	{name: "query space", method: "GET", path: "/b", query: "prefix=a%20b&marker=c%2Bd"},
	{name: "response overrides", method: "GET", path: "/b/k",
		query: "response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22&versionId=3%2FL4kqtJl"},
	{name: "put signed payload", method: "PUT", path: "/b/k", body: []byte("Welcome to Amazon S3."),
		header: map[string]string{"X-Amz-Storage-Class": "STANDARD", "Content-Type": "text/plain", "Expect": "100-continue"}},
	{name: "put unsigned payload", method: "PUT", path: "/b/k", body: []byte("hello"), unsigned: true},
	{name: "put empty", method: "PUT", path: "/b/empty", body: []byte{}},
	{name: "ranged get with if-match", method: "GET", path: "/b/k",
		header: map[string]string{"Range": "bytes=0-8388607", "If-Match": `"abc"`}},
	{name: "header spaces", method: "GET", path: "/b/k",
		header: map[string]string{"X-Amz-Meta-Note": "  two  spaces   here  ", "X-Amz-Meta-Tab": "a\tb"}},
	{name: "sse-c", method: "GET", path: "/b/k", header: map[string]string{
		"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256",
		"X-Amz-Server-Side-Encryption-Customer-Key":       "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   "Fn9j4vBjAvcHLbh8DSYYSQ==",
	}},
	{name: "host with port", method: "HEAD", path: "/b/k"},
}

func (c signedCase) request(t testing.TB, host string) *http.Request {
	r := newRequest(t, c.method, host, c.path, c.rawPath, c.query, c.body)
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	return r
}

func TestVerifySDKHeaderAuth(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	v := newTestVerifier(at.Add(3 * time.Minute))
	for _, c := range keyCases {
		t.Run(c.name, func(t *testing.T) {
			r := c.request(t, "127.0.0.1:9000")
			payload := hexSHA256(c.body)
			if c.unsigned {
				payload = unsignedPayload
			}
			sdkSign(t, r, payload, at)
			sr := toServer(t, r)
			a, err := v.Verify(sr)
			if err != nil {
				t.Fatalf("Verify: %v\nAuthorization: %s", err, r.Header.Get("Authorization"))
			}
			if a.AccessKeyID != testAKID || a.Region != testRegion || a.Service != "s3" || !a.Date.Equal(at) || a.Presigned {
				t.Errorf("got auth %+v", a)
			}
			wantMode := PayloadSigned
			if c.unsigned {
				wantMode = PayloadUnsigned
			}
			if a.Payload != wantMode || a.DecodedLength != -1 {
				t.Errorf("payload %v decoded %d, want %v -1", a.Payload, a.DecodedLength, wantMode)
			}
			body, err := a.Body(sr.Body)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(body)
			if err != nil || !bytes.Equal(got, c.body) {
				t.Errorf("body %q, %v; want %q", got, err, c.body)
			}
		})
	}
}

func TestVerifySDKPresigned(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	v := newTestVerifier(at.Add(10 * time.Minute))
	for _, c := range keyCases {
		if c.body != nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			r := c.request(t, "s3.example.com")
			u := sdkPresign(t, r, time.Hour, at)
			sr, err := http.NewRequest(c.method, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, vals := range r.Header {
				sr.Header[k] = vals
			}
			a, err := v.Verify(toServer(t, sr))
			if err != nil {
				t.Fatalf("Verify %s: %v", u, err)
			}
			if !a.Presigned || a.Payload != PayloadUnsigned {
				t.Errorf("presigned %v payload %v", a.Presigned, a.Payload)
			}
		})
	}
}

// TestAWSDocumentationVectors checks the examples of the S3 SigV4 pages.
func TestAWSDocumentationVectors(t *testing.T) {
	const emptyHash = emptySHA256
	auth := func(signed, sig string) string {
		return "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=" +
			signed + ",Signature=" + sig
	}
	cases := []struct {
		name, method, target, host string
		header                     map[string]string
	}{
		{"get object", "GET", "/test.txt", "examplebucket.s3.amazonaws.com", map[string]string{
			"Range": "bytes=0-9", "X-Amz-Content-Sha256": emptyHash, "X-Amz-Date": "20130524T000000Z",
			"Authorization": auth("host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
		}},
		{"put object with date", "PUT", "/test%24file.text", "examplebucket.s3.amazonaws.com", map[string]string{
			"Date": "Fri, 24 May 2013 00:00:00 GMT", "X-Amz-Date": "20130524T000000Z", "X-Amz-Storage-Class": "REDUCED_REDUNDANCY",
			"X-Amz-Content-Sha256": "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
			"Authorization":        auth("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
		}},
		{"put object unencoded dollar", "PUT", "/test$file.text", "examplebucket.s3.amazonaws.com", map[string]string{
			"Date": "Fri, 24 May 2013 00:00:00 GMT", "X-Amz-Date": "20130524T000000Z", "X-Amz-Storage-Class": "REDUCED_REDUNDANCY",
			"X-Amz-Content-Sha256": "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
			"Authorization":        auth("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
		}},
		{"get lifecycle", "GET", "/?lifecycle", "examplebucket.s3.amazonaws.com", map[string]string{
			"X-Amz-Content-Sha256": emptyHash, "X-Amz-Date": "20130524T000000Z",
			"Authorization": auth("host;x-amz-content-sha256;x-amz-date", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
		}},
		{"list objects", "GET", "/?max-keys=2&prefix=J", "examplebucket.s3.amazonaws.com", map[string]string{
			"X-Amz-Content-Sha256": emptyHash, "X-Amz-Date": "20130524T000000Z",
			"Authorization": auth("host;x-amz-content-sha256;x-amz-date", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
		}},
		{"presigned get", "GET", "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
			"examplebucket.s3.amazonaws.com", nil},
		{"streaming seed", "PUT", "/examplebucket/chunkObject.txt", "s3.amazonaws.com", map[string]string{
			"X-Amz-Date": "20130524T000000Z", "X-Amz-Storage-Class": "REDUCED_REDUNDANCY",
			"X-Amz-Content-Sha256": streamingSigned, "Content-Encoding": "aws-chunked",
			"X-Amz-Decoded-Content-Length": "66560", "Content-Length": "66824",
			"Authorization": auth("content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
				"4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"),
		}},
	}
	v := newTestVerifier(exampleTime.Add(time.Minute))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var wire strings.Builder
			wire.WriteString(c.method + " " + c.target + " HTTP/1.1\r\nHost: " + c.host + "\r\n")
			for k, val := range c.header {
				wire.WriteString(k + ": " + val + "\r\n")
			}
			wire.WriteString("\r\n")
			r := parseWire(t, wire.String())
			if _, err := v.Verify(r); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func parseWire(t testing.TB, s string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufioReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVerifyPresignedTimes(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	presigned := func(t *testing.T, expires time.Duration) *http.Request {
		r := newRequest(t, "GET", "s3.example.com", "/b/k", "", "", nil)
		u := sdkPresign(t, r, expires, at)
		sr, err := http.NewRequest("GET", u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return toServer(t, sr)
	}
	cases := []struct {
		name    string
		expires time.Duration
		now     time.Time
		want    error
	}{
		{"fresh", time.Hour, at, nil},
		{"just before expiry", time.Hour, at.Add(time.Hour), nil},
		{"expired", time.Hour, at.Add(time.Hour + time.Second), ErrExpired},
		{"signed in the near future", time.Hour, at.Add(-14 * time.Minute), nil},
		{"not valid yet", time.Hour, at.Add(-16 * time.Minute), ErrTimeSkewed},
		{"seven days", 7 * 24 * time.Hour, at.Add(6 * 24 * time.Hour), nil},
		{"over seven days", 7*24*time.Hour + time.Second, at, ErrMalformedAuth},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := newTestVerifier(c.now).Verify(presigned(t, c.expires))
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestVerifyClockSkew(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, c := range []struct {
		offset time.Duration
		ok     bool
	}{{0, true}, {14 * time.Minute, true}, {-14 * time.Minute, true}, {16 * time.Minute, false}, {-16 * time.Minute, false}} {
		r := newRequest(t, "GET", "h", "/b/k", "", "", nil)
		sdkSign(t, r, emptySHA256, at)
		_, err := newTestVerifier(at.Add(c.offset)).Verify(toServer(t, r))
		if c.ok != (err == nil) || !c.ok && !errors.Is(err, ErrTimeSkewed) {
			t.Errorf("offset %v: got %v", c.offset, err)
		}
	}
}

func TestSignatureRotationAndCache(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	secret := testSecret
	v := newTestVerifier(at)
	v.Secret = func(string) (string, error) { return secret, nil }
	r := newRequest(t, "GET", "h", "/b/k", "", "", nil)
	sdkSign(t, r, emptySHA256, at)
	for i := range 2 { // the second run hits the cache
		if _, err := v.Verify(toServer(t, r)); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	secret = "rotated"
	if _, err := v.Verify(toServer(t, r)); !errors.Is(err, ErrSignatureMismatch) {
		t.Fatalf("after rotation: got %v, want mismatch (stale cached key?)", err)
	}
	for i := range keyCacheSize + 10 {
		v.keys.store(scopeKey{accessKeyID: "k", date: "d", region: string(rune('a' + i))}, "s", [32]byte{})
	}
	if n := len(v.keys.m); n > keyCacheSize {
		t.Errorf("cache holds %d entries, bound %d", n, keyCacheSize)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	v := newTestVerifier(at)
	var reqs []*http.Request
	for i := range 8 {
		r := newRequest(t, "GET", "h", "/b/k"+string(rune('0'+i)), "", "", nil)
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		region := []string{"us-east-1", "eu-central-003", "auto", "local"}[i%4]
		if err := s3Signer().SignHTTP(t.Context(), testCreds, r, emptySHA256, "s3", region, at); err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, toServer(t, r))
	}
	done := make(chan error)
	for _, r := range reqs {
		go func() {
			var err error
			for range 50 {
				if _, err = v.Verify(r); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range reqs {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
