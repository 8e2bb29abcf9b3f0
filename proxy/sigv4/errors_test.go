package sigv4

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestVerifyErrors(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	base := func(t *testing.T, edit func(*http.Request)) *http.Request {
		r := newRequest(t, "PUT", "127.0.0.1:9000", "/b/k", "", "", []byte("data"))
		r.Header.Set("X-Amz-Meta-A", "1")
		if edit != nil {
			edit(r)
		}
		sdkSign(t, r, hexSHA256([]byte("data")), at)
		return toServer(t, r)
	}
	setAuth := func(f func(string) string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", f(r.Header.Get("Authorization"))) }
	}
	replace := func(old, new string) func(*http.Request) {
		return setAuth(func(a string) string { return strings.Replace(a, old, new, 1) })
	}
	cases := []struct {
		name   string
		before func(*http.Request) // edits before signing
		after  func(*http.Request) // edits of the server request
		region string
		want   error
	}{
		{name: "no auth", after: func(r *http.Request) { r.Header.Del("Authorization") }, want: ErrMissingAuth},
		{name: "empty authorization", after: setAuth(func(string) string { return "" }), want: ErrMalformedAuth},
		{name: "sigv2 header", after: setAuth(func(string) string { return "AWS " + testAKID + ":frJIUN8DYpKDtOLCwo//yllqDzg=" }), want: ErrSignatureMismatch},
		{name: "sigv4a header", after: replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"), want: ErrUnsupported},
		{name: "bearer", after: setAuth(func(string) string { return "Bearer abc" }), want: ErrMalformedAuth},
		{name: "no signed headers", after: replace("SignedHeaders=", "Signed="), want: ErrMalformedAuth},
		{name: "duplicate component", after: setAuth(func(a string) string { return a + ", Signature=" + strings.Repeat("0", 64) }), want: ErrMalformedAuth},
		{name: "credential too short", after: replace(testAKID+"/", ""), want: ErrMalformedAuth},
		{name: "credential terminal", after: replace("aws4_request", "aws5_request"), want: ErrMalformedAuth},
		{name: "credential date", after: replace("/20260304/", "/20260305/"), want: ErrMalformedAuth},
		{name: "credential bad date", after: replace("/20260304/", "/2026030x/"), want: ErrMalformedAuth},
		{name: "service", after: replace("/s3/", "/ec2/"), want: ErrMalformedAuth},
		{name: "region not configured", region: "eu-west-1", want: ErrMalformedAuth},
		{name: "host not signed", after: replace("host;", ""), want: ErrMalformedAuth},
		{name: "upper-case signed header", after: replace("host;", "Host;"), want: ErrMalformedAuth},
		{name: "upper-case signature", after: setAuth(func(a string) string {
			i := strings.Index(a, "Signature=") + len("Signature=")
			return a[:i] + strings.ToUpper(a[i:])
		}), want: ErrMalformedAuth},
		{name: "short signature", after: setAuth(func(a string) string { return a[:len(a)-1] }), want: ErrMalformedAuth},
		{name: "wrong signature", after: setAuth(func(a string) string { return a[:len(a)-64] + strings.Repeat("0", 64) }), want: ErrSignatureMismatch},
		{name: "unknown key", after: replace(testAKID, "AKIAOTHER"), want: errUnknownKey},
		{name: "missing date", after: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, want: ErrMalformedAuth},
		{name: "bad date", after: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2026-03-04T05:06:07Z") }, want: ErrMalformedAuth},
		{name: "missing content sha256", after: func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") }, want: ErrMalformedAuth},
		{name: "two content sha256", after: func(r *http.Request) { r.Header.Add("X-Amz-Content-Sha256", unsignedPayload) }, want: ErrMalformedAuth},
		{name: "invalid content sha256", before: func(r *http.Request) {}, after: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "abc") }, want: ErrMalformedAuth},
		{name: "sigv4a payload", after: func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", streamingECDSA) }, want: ErrUnsupported},
		{name: "unsigned amz header", after: func(r *http.Request) { r.Header.Set("X-Amz-Acl", "public-read") }, want: ErrHeadersNotSigned},
		{name: "changed signed header", after: func(r *http.Request) { r.Header.Set("X-Amz-Meta-A", "2") }, want: ErrSignatureMismatch},
		{name: "changed method", after: func(r *http.Request) { r.Method = "POST" }, want: ErrSignatureMismatch},
		{name: "added query", after: func(r *http.Request) { r.URL.RawQuery = "acl" }, want: ErrSignatureMismatch},
		{name: "changed host", after: func(r *http.Request) { r.Host = "127.0.0.1:9001" }, want: ErrSignatureMismatch},
		{name: "trailer with signed payload", before: func(r *http.Request) { r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32") }, want: ErrMalformedAuth},
		{name: "bad decoded length", before: func(r *http.Request) { r.Header.Set("X-Amz-Decoded-Content-Length", "-1") }, want: ErrMalformedAuth},
		{name: "header and presign", after: func(r *http.Request) { r.URL.RawQuery = "X-Amz-Signature=" + strings.Repeat("0", 64) }, want: ErrMalformedAuth},
		{name: "sigv2 presigned", after: func(r *http.Request) {
			r.Header.Del("Authorization")
			r.URL.RawQuery = "AWSAccessKeyId=" + testAKID + "&Expires=1141889120&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D"
		}, want: ErrExpired},
		{name: "presign missing signature", after: func(r *http.Request) {
			r.Header.Del("Authorization")
			r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + testAKID + "%2F20260304%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260304T050607Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
		}, want: ErrMalformedAuth},
		{name: "presign sigv4a", after: func(r *http.Request) {
			r.Header.Del("Authorization")
			r.URL.RawQuery = "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=" + testAKID + "%2F20260304%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260304T050607Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("0", 64)
		}, want: ErrUnsupported},
		{name: "presign zero expiry", after: func(r *http.Request) {
			r.Header.Del("Authorization")
			r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + testAKID + "%2F20260304%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260304T050607Z&X-Amz-Expires=0&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("0", 64)
		}, want: ErrMalformedAuth},
		{name: "bad query escape", after: func(r *http.Request) { r.URL.RawQuery = "a=%zz" }, want: ErrMalformedAuth},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base(t, c.before)
			good := r.Header.Get("Authorization")
			goodSig := good[len(good)-64:]
			if c.after != nil {
				c.after(r)
			}
			v := newTestVerifier(at)
			v.Region = c.region
			a, err := v.Verify(r)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v (auth %+v), want %v", err, a, c.want)
			}
			if a != nil {
				t.Errorf("auth %+v returned with error", a)
			}
			msg := err.Error()
			var se *SignatureError
			if errors.As(err, &se) {
				msg += se.CanonicalRequest + se.StringToSign
				if !strings.Contains(se.CanonicalRequest+se.StringToSign, "/b/k") { // V2 has no canonical request
					t.Errorf("canonical request %q and string to sign %q lack the path", se.CanonicalRequest, se.StringToSign)
				}
			}
			if strings.Contains(msg, testSecret) || strings.Contains(msg, goodSig) {
				t.Errorf("error text leaks the secret or a computed signature: %s", msg)
			}
		})
	}
}

func TestParseAuthorizationForms(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	cred := "Credential=AKID/20130524/us-east-1/s3/aws4_request"
	for _, h := range []string{
		"AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host,Signature=" + sig,
		"AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host, Signature=" + sig,
		"AWS4-HMAC-SHA256 Signature=" + sig + ",  SignedHeaders=host , " + cred,
		"AWS4-HMAC-SHA256  " + cred + ",SignedHeaders=host,Signature=" + sig,
	} {
		a, err := parseAuthorization(h)
		if err != nil {
			t.Errorf("%q: %v", h, err)
			continue
		}
		if a.cred.accessKeyID != "AKID" || a.cred.scope != "20130524/us-east-1/s3/aws4_request" ||
			a.signedHeaders != "host" || hex.EncodeToString(a.signature[:]) != sig {
			t.Errorf("%q: got %+v", h, a)
		}
	}
	for _, h := range []string{
		"AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host",
		"AWS4-HMAC-SHA256 " + cred + ",SignedHeaders=host,Signature=" + sig + ",Extra=1",
		"AWS4-HMAC-SHA256 " + cred + ";SignedHeaders=host;Signature=" + sig,
		"AWS4-HMAC-SHA256",
		"aws4-hmac-sha256 " + cred + ",SignedHeaders=host,Signature=" + sig,
	} {
		if _, err := parseAuthorization(h); !errors.Is(err, ErrMalformedAuth) {
			t.Errorf("%q: got %v, want ErrMalformedAuth", h, err)
		}
	}
}

func TestParseCredential(t *testing.T) {
	for _, c := range []struct {
		in, akid string
		ok       bool
	}{
		{"AKID/20130524/us-east-1/s3/aws4_request", "AKID", true},
		{"AK/ID/20130524/us-east-1/s3/aws4_request", "AK/ID", true},
		{"/20130524/us-east-1/s3/aws4_request", "", false},
		{"AKID/20130524//s3/aws4_request", "", false},
		{"AKID/2013052/us-east-1/s3/aws4_request", "", false},
		{"AKID/20131324/us-east-1/s3/aws4_request", "", false},
		{"AKID/20130524/us-east-1/s3/aws4_request/", "", false},
		{"20130524/us-east-1/s3/aws4_request", "", false},
	} {
		got, err := parseCredential(c.in)
		if c.ok != (err == nil) || c.ok && got.accessKeyID != c.akid {
			t.Errorf("parseCredential(%q) = %+v, %v", c.in, got, err)
		}
	}
}

func TestPayloadModeString(t *testing.T) {
	for m, want := range map[PayloadMode]string{
		PayloadSigned: "signed", PayloadUnsigned: "unsigned", StreamingSigned: "streaming-signed",
		StreamingUnsignedTrailer: "streaming-unsigned-trailer", StreamingSignedTrailer: "streaming-signed-trailer",
		0: "PayloadMode(0)",
	} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(m), got, want)
		}
	}
}

func TestAuthDoesNotPrintKey(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	r := newRequest(t, "GET", "h", "/b/k", "", "", nil)
	sdkSign(t, r, emptySHA256, at)
	a, err := newTestVerifier(at).Verify(toServer(t, r))
	if err != nil {
		t.Fatal(err)
	}
	key := deriveSigningKey(testSecret, "20260304", testRegion, "s3")
	for _, s := range []string{fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", *a), fmt.Sprintf("%v", *a)} {
		if strings.Contains(s, hex.EncodeToString(key[:])) || strings.Contains(s, fmt.Sprintf("%v", key[:4])) {
			t.Errorf("printing Auth shows the signing key: %s", s)
		}
	}
}
