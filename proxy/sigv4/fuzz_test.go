package sigv4

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var fuzzTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// sdkAuthorizations returns Authorization headers produced by aws-sdk-go-v2.
func sdkAuthorizations(t testing.TB) []string {
	var out []string
	for _, c := range keyCases {
		r := c.request(t, "127.0.0.1:9000")
		sdkSign(t, r, hexSHA256(c.body), fuzzTime)
		out = append(out, r.Header.Get("Authorization"))
	}
	return out
}

func FuzzParseAuthorization(f *testing.F) {
	for _, a := range sdkAuthorizations(f) {
		f.Add(a)
	}
	f.Add("AWS " + testAKID + ":frJIUN8DYpKDtOLCwo//yllqDzg=")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=, Signature=")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			if !errors.Is(err, ErrMalformedAuth) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		c := a.cred
		if c.scope != c.date+"/"+c.region+"/"+c.service+"/"+scopeTerminal || c.accessKeyID == "" {
			t.Fatalf("inconsistent credential %+v", c)
		}
		// A parsed header re-serialises to one that parses the same.
		again := "AWS4-HMAC-SHA256 Credential=" + c.accessKeyID + "/" + c.scope + ",SignedHeaders=" + a.signedHeaders +
			",Signature=" + hexString(a.signature[:])
		b, err := parseAuthorization(again)
		if err != nil || b != a {
			t.Fatalf("round trip: %+v, %v; want %+v", b, err, a)
		}
		// And the whole verifier copes with it.
		r := newRequest(t, "GET", "h", "/b/k", "", "", nil)
		r.Header.Set("Authorization", h)
		r.Header.Set("X-Amz-Date", c.date+"T000000Z")
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		if _, err := newTestVerifier(fuzzTime).Verify(r); err == nil {
			t.Fatal("a fuzzed signature verified")
		}
	})
}

func FuzzParsePresigned(f *testing.F) {
	for _, c := range keyCases {
		r := c.request(f, "s3.example.com")
		u, _ := url.Parse(sdkPresign(f, r, time.Hour, fuzzTime))
		f.Add(u.RawQuery)
	}
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=%2B5&X-Amz-Expires=5")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw, nil)
		if err != nil {
			return
		}
		p, err := parsePresigned(q, DefaultMaxPresignExpiry)
		if err == nil && (p.expires <= 0 || p.expires > DefaultMaxPresignExpiry || p.date.Format(iso8601Basic) != p.amzDate) {
			t.Fatalf("accepted %+v", p)
		}
		r := newRequest(t, "GET", "s3.example.com", "/b/k", "", raw, nil)
		_, verr := newTestVerifier(fuzzTime.Add(time.Minute)).Verify(r)
		if verr == nil && !strings.Contains(raw, "X-Amz-Signature=") {
			t.Fatal("verified without a signature")
		}
	})
}

func FuzzCanonicalRequest(f *testing.F) {
	f.Add("GET", "/b/a%20b/%5Bx%5D", "list-type=2&prefix=a%2Fb&delimiter=%2F", "x-amz-meta-a", " v  w ")
	f.Add("PUT", "/b/k", "partNumber=1&uploadId=x&uploads", "range", "bytes=0-9")
	f.Add("POST", "/", "a=1&a=%zz", "content-length", "7")
	f.Fuzz(func(t *testing.T, method, rawPath, rawQuery, name, value string) {
		u, err := url.ParseRequestURI(rawPath)
		if err != nil {
			return
		}
		u.RawQuery = rawQuery
		r := &http.Request{Method: method, URL: u, Host: "h", Header: http.Header{}, ContentLength: 7}
		r.Header.Add(name, value)
		q, err := parseQuery(rawQuery, nil)
		if err != nil {
			if !errors.Is(err, ErrMalformedAuth) {
				t.Fatal(err)
			}
			return
		}
		signed := []string{"host", strings.ToLower(name)}
		build := func() string {
			query := appendCanonicalQuery(nil, slices.Clone(q), false)
			in := canonicalInput{method: method, path: appendCanonicalPath(nil, u.Path), query: query,
				signedHeaders: signed, signedRaw: "host;x", payload: unsignedPayload}
			return string(appendCanonicalRequest(nil, r, &in))
		}
		if a, b := build(), build(); a != b {
			t.Fatalf("not deterministic:\n%q\n%q", a, b)
		}
		// The canonical query and path are fixed points of canonicalisation.
		cq := string(appendCanonicalQuery(nil, q, false))
		q2, err := parseQuery(cq, nil)
		if err != nil || string(appendCanonicalQuery(nil, q2, false)) != cq {
			t.Fatalf("query %q: canonical %q is not stable (%v)", rawQuery, cq, err)
		}
		cp := string(appendCanonicalPath(nil, u.Path))
		if d, err := url.PathUnescape(cp); err != nil || string(appendCanonicalPath(nil, d)) != cp {
			t.Fatalf("path %q: canonical %q is not stable", u.Path, cp)
		}
		if !isCanonicalEncoded(cp, true) {
			t.Fatalf("canonical path %q not recognised as canonical", cp)
		}
	})
}

func FuzzChunkedDecoder(f *testing.F) {
	f.Add([]byte("hello world"), uint16(5), uint8(0), []byte("5\r\nhello\r\n0\r\n\r\n"), uint32(0))
	f.Add(bytes.Repeat([]byte("a"), 300), uint16(64), uint8(1), []byte("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), uint32(100))
	f.Add([]byte{}, uint16(0), uint8(2), []byte("0;chunk-signature="+exampleChunkSigs[2]+"\r\n\r\n"), uint32(7))
	// Small seeds: the fuzzer minimises interesting inputs, which for a
	// 66 KiB AWS example body takes longer than a 10 s run.
	f.Add(exampleData[:100], uint16(1000), uint8(1),
		encodeChunked(exampleData[:100], testSpec(true, []int{64}, "x-amz-checksum-crc32:AAAAAA==")), uint32(66000))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16, mode uint8, wire []byte, flip uint32) {
		m := []PayloadMode{StreamingUnsignedTrailer, StreamingSignedTrailer, StreamingSigned}[mode%3]
		names := []string{"x-amz-checksum-crc32"}
		var trailers []string
		if m != StreamingSigned {
			trailers = []string{"x-amz-checksum-crc32:AAAAAA=="}
		} else {
			names = nil
		}
		// Arbitrary input: terminates with an error or a clean EOF.
		body, _ := testAuth(m, -1, names...).Body(bytes.NewReader(wire))
		if _, err := readAllSmall(body, 1+int(chunk%5000)); err == nil && m != StreamingUnsignedTrailer && !bytes.Contains(wire, []byte("chunk-signature")) {
			t.Fatal("signed body without signatures accepted")
		}
		// A valid encoding round-trips.
		sizes := []int{1 + int(chunk)}
		enc := encodeChunked(data, testSpec(m != StreamingUnsignedTrailer, sizes, trailers...))
		body, _ = testAuth(m, int64(len(data)), names...).Body(bytes.NewReader(enc))
		got, err := readAllSmall(body, 1+int(flip%70000))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("round trip: %d of %d bytes, %v", len(got), len(data), err)
		}
		// In the signed modes any flipped byte is detected, except a
		// change of case of a hex letter in a chunk size.
		if m == StreamingUnsignedTrailer || len(enc) == 0 {
			return
		}
		i := int(flip) % len(enc)
		x := byte(flip>>8) | 1
		c := enc[i] ^ x
		if isHexLetterCaseFlip(enc[i], c) {
			return
		}
		enc[i] = c
		body, _ = testAuth(m, int64(len(data)), names...).Body(bytes.NewReader(enc))
		if got, err := io.ReadAll(body); err == nil {
			t.Fatalf("flipped byte %d (%q→%q) accepted, decoded %q", i, enc[i]^x, c, got)
		}
	})
}

func isHexLetterCaseFlip(a, b byte) bool {
	return a^b == 0x20 && strings.IndexByte("abcdefABCDEF", a) >= 0
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// mutationBase builds one of the correctly signed requests FuzzVerifyMutation
// mutates, as a client holds it (signed, body set).
func mutationBase(t *testing.T, which uint8) *http.Request {
	switch which % 4 {
	case 0: // header auth, signed payload, query
		body := []byte("hello world")
		r := newRequest(t, "PUT", "127.0.0.1:9000", "/b/a b[1]", "", "partNumber=1&uploadId=abc", body)
		r.Header.Set("X-Amz-Meta-A", "some value")
		sdkSign(t, r, hexSHA256(body), fuzzTime)
		return r
	case 1: // presigned GET
		r := newRequest(t, "GET", "s3.example.com", "/media/remote_content/[2001:db8::1]:8448/x", "", "response-content-type=text%2Fplain", nil)
		u := sdkPresign(t, r, time.Hour, fuzzTime)
		pr, err := http.NewRequest("GET", u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	// streaming, signed chunks, with or without a signed trailer
	trailer := which%4 == 3
	data := bytes.Repeat([]byte("0123456789"), 700)
	payload := streamingSigned
	var trailers []string
	if trailer {
		payload, trailers = streamingSignedTrailer, []string{"x-amz-checksum-crc32:AAAAAA=="}
	}
	spec := chunkSpec{signed: true, sizes: []int{4096}, trailers: trailers, seed: strings.Repeat("0", 64),
		amzDate: fuzzTime.Format(iso8601Basic), scope: "20260304/us-east-1/s3/aws4_request",
		key: testSigningKey(testSecret, "20260304", testRegion)}
	r := newRequest(t, "PUT", "127.0.0.1:9000", "/b/stream", "", "", encodeChunked(data, spec))
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(data)))
	if trailer {
		r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	}
	sdkSign(t, r, payload, fuzzTime)
	a := r.Header.Get("Authorization")
	spec.seed = a[len(a)-64:]
	body := encodeChunked(data, spec)
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	return r
}

// FuzzVerifyMutation changes one byte of the method, path, query, a signed
// header, the Authorization header or the body of a correctly signed request
// and checks that verification (of the request or of its body) fails.
func FuzzVerifyMutation(f *testing.F) {
	for which := range uint8(4) {
		for part := range uint8(6) {
			f.Add(which, part, uint16(3), byte(0))
			f.Add(which, part, uint16(100), byte(1))
			f.Add(which, part, uint16(7), byte(0x20))
		}
	}
	f.Fuzz(func(t *testing.T, which, part uint8, pos uint16, x byte) {
		r := mutationBase(t, which)
		if x != 0 && !mutate(r, part, int(pos), x) {
			return
		}
		var wire bytes.Buffer
		if err := r.Write(&wire); err != nil {
			return // the mutation made the request unwritable
		}
		sr, err := http.ReadRequest(bufioReader(wire.String()))
		if err != nil {
			return // or unparsable: it never reaches Verify
		}
		a, err := newTestVerifier(fuzzTime).Verify(sr)
		if err == nil {
			var body io.Reader
			if body, err = a.Body(sr.Body); err == nil {
				_, err = io.ReadAll(body)
			}
		}
		if x == 0 && err != nil {
			t.Fatalf("unmutated request %d failed: %v", which, err)
		}
		if x != 0 && err == nil {
			t.Fatalf("mutation part=%d pos=%d x=%#x accepted:\n%s", part, pos, x, wire.String()[:min(wire.Len(), 2000)])
		}
	})
}

// mutate xors one byte of one part of r; it reports false when the part is
// empty or the change would not change what the request means.
func mutate(r *http.Request, part uint8, pos int, x byte) bool {
	flip := func(s string) (string, bool) {
		if s == "" {
			return s, false
		}
		b := []byte(s)
		b[pos%len(b)] ^= x
		// CR and LF change the wire format, not a value (header folding).
		return string(b), !bytes.ContainsAny(b, "\r\n")
	}
	var ok bool
	switch part % 6 {
	case 0:
		r.Method, ok = flip(r.Method)
	case 1:
		r.URL.RawPath = ""
		r.URL.Path, ok = flip(r.URL.Path)
	case 2:
		q := r.URL.Query()
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range q {
				if !yield(k) {
					return
				}
			}
		})
		if len(keys) == 0 {
			return false
		}
		k := keys[pos%len(keys)]
		q[k][0], ok = flip(q[k][0])
		r.URL.RawQuery = q.Encode()
	case 3:
		a := r.Header.Get("Authorization")
		names := []string{"host"}
		if i := strings.Index(a, "SignedHeaders="); i >= 0 {
			names = strings.Split(strings.SplitN(a[i+len("SignedHeaders="):], ",", 2)[0], ";")
		}
		name := names[pos%len(names)]
		switch name {
		case "host":
			r.Host, ok = flip(r.Host)
		case "content-length":
			return false // the body length: net/http itself rejects a mismatch
		default:
			var v string
			v, ok = flip(r.Header.Get(name))
			r.Header.Set(name, v)
		}
	case 4:
		if r.Header.Get("Authorization") == "" {
			return false
		}
		var v string
		v, ok = flip(r.Header.Get("Authorization"))
		r.Header.Set("Authorization", v)
	case 5:
		if r.Body == nil || r.ContentLength <= 0 {
			return false
		}
		b, _ := io.ReadAll(r.Body)
		i := pos % len(b)
		if isHexLetterCaseFlip(b[i], b[i]^x) {
			return false
		}
		b[i] ^= x
		r.Body, ok = io.NopCloser(bytes.NewReader(b)), true
	}
	return ok
}

// FuzzParseBasic checks the hand-written date parsers against time.Parse:
// whatever they accept, time.Parse accepts as the same instant, and every
// strictly formed date time.Parse accepts, they accept.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{
		"20130524T000000Z", "20240229T235959Z", "20230229T120000Z", "20231301T000000Z",
		"20230100T000000Z", "20230131T240000Z", "20230131T236000Z", "20230131T235960Z",
		"00000101T000000Z", "99991231T235959Z", "2023013lT000000Z", "20230131 000000Z",
		"20230131T000000", "20230131T0000000Z", "+0230131T000000Z", "20230131T-10000Z",
	} {
		f.Add(s)
	}
	strict := func(s string, n int) bool {
		if len(s) != n {
			return false
		}
		for i := 0; i < n; i++ {
			if i == 8 || i == 15 {
				continue
			}
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return true
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseBasic(s)
		want, err := time.Parse(iso8601Basic, s)
		if ok && (err != nil || !got.Equal(want)) {
			t.Fatalf("parseBasic(%q) = %v; time.Parse = %v, %v", s, got, want, err)
		}
		if !ok && err == nil && strict(s, 16) {
			t.Fatalf("parseBasic(%q) refused what time.Parse reads as %v", s, want)
		}
		d := s[:min(len(s), 8)]
		_, derr := time.Parse(yyyymmdd, d)
		if validYMD(d) && derr != nil {
			t.Fatalf("validYMD(%q) accepted what time.Parse refuses: %v", d, derr)
		}
		if !validYMD(d) && derr == nil && strict(d, 8) {
			t.Fatalf("validYMD(%q) refused a date time.Parse accepts", d)
		}
	})
}
