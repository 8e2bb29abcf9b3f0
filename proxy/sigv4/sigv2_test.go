package sigv4

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// v2HostBucket resolves the virtual-host names of S3's V2 examples: a
// bucket before ".s3.us-west-1.amazonaws.com", or their CNAME.
func v2HostBucket(host string) (string, bool) {
	host, _, _ = strings.Cut(host, ":")
	if b, ok := strings.CutSuffix(host, ".s3.us-west-1.amazonaws.com"); ok {
		return b, true
	}
	if host == "static.johnsmith.net" {
		return host, true // a CNAME names its bucket
	}
	return "", false
}

func v2Verifier(now time.Time) *Verifier {
	v := newTestVerifier(now)
	v.HostBucket = v2HostBucket
	return v
}

func v2Request(t testing.TB, method, target, host string, header [][2]string) *http.Request {
	t.Helper()
	var wire strings.Builder
	wire.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + host + "\r\n")
	for _, kv := range header {
		wire.WriteString(kv[0] + ": " + kv[1] + "\r\n")
	}
	wire.WriteString("\r\n")
	return parseWire(t, wire.String())
}

// TestV2DocumentationVectors checks the examples of S3's "Signing and
// Authenticating REST Requests" (signature version 2) page. The page now
// says "awsexamplebucket1" but kept the signatures computed for its
// original bucket, "johnsmith".
func TestV2DocumentationVectors(t *testing.T) {
	auth := func(sig string) [2]string { return [2]string{"Authorization", "AWS " + testAKID + ":" + sig} }
	const bucketHost = "johnsmith.s3.us-west-1.amazonaws.com"
	cases := []struct {
		name, method, target, host, date string
		header                           [][2]string
	}{
		{"object get", "GET", "/photos/puppy.jpg", bucketHost, "Tue, 27 Mar 2007 19:36:42 +0000",
			[][2]string{auth("bWq2s1WEIj+Ydj0vQ697zp+IXMU=")}},
		{"object put", "PUT", "/photos/puppy.jpg", bucketHost, "Tue, 27 Mar 2007 21:15:45 +0000",
			[][2]string{{"Content-Type", "image/jpeg"}, {"Content-Length", "94328"}, auth("MyyxeRY7whkBe+bq8fHCL/2kKUg=")}},
		{"list", "GET", "/?prefix=photos&max-keys=50&marker=puppy", bucketHost, "Tue, 27 Mar 2007 19:42:41 +0000",
			[][2]string{{"User-Agent", "Mozilla/5.0"}, auth("htDYFYduRNen8P9ZfE/s9SuKy0U=")}},
		{"acl subresource", "GET", "/?acl", bucketHost, "Tue, 27 Mar 2007 19:44:46 +0000",
			[][2]string{auth("c2WLPFtWHVgbEmeEG93a4cG37dM=")}},
		{"upload with repeated x-amz headers", "PUT", "/db-backup.dat.gz", "static.johnsmith.net:8080", "Tue, 27 Mar 2007 21:06:08 +0000",
			[][2]string{
				{"User-Agent", "curl/7.15.5"}, {"x-amz-acl", "public-read"}, {"content-type", "application/x-download"},
				{"Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="},
				{"X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"}, {"X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"},
				{"X-Amz-Meta-FileChecksum", "0x02661779"}, {"X-Amz-Meta-ChecksumAlgorithm", "crc32"},
				{"Content-Disposition", "attachment; filename=database.dat"}, {"Content-Encoding", "gzip"},
				{"Content-Length", "5913339"}, auth("ilyl83RwaSoYIEdixDQcA4OnAnc="),
			}},
		{"list all buckets", "GET", "/", "s3.us-west-1.amazonaws.com", "Wed, 28 Mar 2007 01:29:59 +0000",
			[][2]string{auth("qGdzdERIC03wnaRNKh6OqZehG9s=")}},
		{"unicode keys, path style, encoding kept literally", "GET", "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re", "s3.us-west-1.amazonaws.com", "Wed, 28 Mar 2007 01:49:49 +0000",
			[][2]string{auth("DNEZGsoieTZ92F3bUfSPQcbGmlM=")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at, err := time.Parse(time.RFC1123Z, c.date)
			if err != nil {
				t.Fatal(err)
			}
			r := v2Request(t, c.method, c.target, c.host, append(c.header, [2]string{"Date", c.date}))
			a, err := v2Verifier(at.Add(time.Minute)).Verify(r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if a.AccessKeyID != testAKID || a.Payload != PayloadUnsigned || a.Presigned || !a.Date.Equal(at) || a.DecodedLength != -1 {
				t.Fatalf("Auth = %+v", a)
			}
			// Any other time, host or method changes the string to sign.
			r.Method = "DELETE"
			if _, err := v2Verifier(at).Verify(r); !errors.Is(err, ErrSignatureMismatch) {
				t.Fatalf("changed method: %v, want a mismatch", err)
			}
		})
	}

	t.Run("query string", func(t *testing.T) {
		r := v2Request(t, "GET", "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620", bucketHost, nil)
		expires := time.Unix(1175139620, 0)
		a, err := v2Verifier(expires.Add(-time.Hour)).Verify(r)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if !a.Presigned || a.AccessKeyID != testAKID {
			t.Fatalf("Auth = %+v", a)
		}
		if _, err := v2Verifier(expires).Verify(r); !errors.Is(err, ErrExpired) {
			t.Fatalf("at expiry: %v, want ErrExpired", err)
		}
		if _, err := v2Verifier(expires.Add(-8 * 24 * time.Hour)).Verify(r); !errors.Is(err, ErrMalformedAuth) {
			t.Fatalf("8 days before expiry: %v, want ErrMalformedAuth (longer than MaxPresignExpiry)", err)
		}
	})
}

// signV2 signs the way botocore's HmacV1Auth does (Date set, "/bucket/" for
// a bucket alone), independently of the verifier's code.
func signV2(r *http.Request, stringToSign string) {
	r.Header.Set("Authorization", "AWS "+testAKID+":"+hmacSHA1Base64(testSecret, stringToSign))
}

func TestV2Header(t *testing.T) {
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	date := at.Format(http.TimeFormat)
	v := v2Verifier(at)
	newReq := func(method, target string) *http.Request {
		r := v2Request(t, method, target, "127.0.0.1:9000", [][2]string{{"Date", date}})
		return r
	}

	t.Run("bucket with and without trailing slash", func(t *testing.T) {
		for _, sts := range []string{"GET\n\n\n" + date + "\n/media/", "GET\n\n\n" + date + "\n/media"} {
			r := newReq("GET", "/media?prefix=up%2F&encoding-type=url")
			signV2(r, sts)
			if _, err := v.Verify(r); err != nil {
				t.Fatalf("%q: %v", sts, err)
			}
		}
	})
	t.Run("subresources sorted and decoded, other parameters unsigned", func(t *testing.T) {
		r := newReq("GET", "/media/k?x-id=GetObject&response-content-type=text%2Fplain&versionId=v%201&uploads")
		signV2(r, "GET\n\n\n"+date+"\n/media/k?response-content-type=text/plain&uploads&versionId=v 1")
		if _, err := v.Verify(r); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("x-amz-date replaces Date", func(t *testing.T) {
		r := newReq("DELETE", "/media/k")
		r.Header.Set("Date", "Thu, 01 Jan 1970 00:00:00 GMT") // ignored
		r.Header.Set("X-Amz-Date", date)
		signV2(r, "DELETE\n\n\n\nx-amz-date:"+date+"\n/media/k")
		if _, err := v.Verify(r); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("signed payload hash is enforced", func(t *testing.T) {
		r := newReq("PUT", "/media/k")
		r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		signV2(r, "PUT\n\n\n"+date+"\nx-amz-content-sha256:"+emptySHA256+"\n/media/k")
		a, err := v.Verify(r)
		if err != nil {
			t.Fatal(err)
		}
		body, err := a.Body(strings.NewReader("not empty"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(body); !errors.Is(err, ErrContentSHA256Mismatch) {
			t.Fatalf("body not matching the signed hash: %v", err)
		}
	})

	bad := []struct {
		name   string
		change func(r *http.Request)
		want   error
	}{
		{"added x-amz header", func(r *http.Request) { r.Header.Set("X-Amz-Meta-A", "b") }, ErrSignatureMismatch},
		{"other content type", func(r *http.Request) { r.Header.Set("Content-Type", "text/html") }, ErrSignatureMismatch},
		{"other key", func(r *http.Request) { r.URL.Path, r.RequestURI = "/media/l", "/media/l" }, ErrSignatureMismatch},
		{"skewed", func(r *http.Request) { r.Header.Set("Date", at.Add(-time.Hour).Format(http.TimeFormat)) }, ErrTimeSkewed},
		{"no date", func(r *http.Request) { r.Header.Del("Date") }, ErrMalformedAuth},
		{"unknown key", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), testAKID, "AKIDOTHER", 1))
		}, errUnknownKey},
		{"short signature", func(r *http.Request) { r.Header.Set("Authorization", "AWS "+testAKID+":AAAA") }, ErrMalformedAuth},
		{"no colon", func(r *http.Request) { r.Header.Set("Authorization", "AWS "+testAKID) }, ErrMalformedAuth},
		{"also presigned", func(r *http.Request) { r.URL.RawQuery = "AWSAccessKeyId=a&Signature=b&Expires=1" }, ErrMalformedAuth},
		{"streaming payload", func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", streamingSigned) }, ErrUnsupported},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			r := newReq("GET", "/media/k")
			signV2(r, "GET\n\n\n"+date+"\n/media/k")
			if _, err := v.Verify(r); err != nil {
				t.Fatalf("unchanged: %v", err)
			}
			c.change(r)
			_, err := v.Verify(r)
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error %q holds the secret", err)
			}
		})
	}
}

func TestV2QueryErrors(t *testing.T) {
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	exp := "1795752000" // 2026-11-27T03:20:00Z
	sig := url.QueryEscape(hmacSHA1Base64(testSecret, "GET\n\n\n"+exp+"\n/media/k"))
	for _, c := range []struct {
		query string
		want  error
	}{
		{"AWSAccessKeyId=" + testAKID + "&Expires=" + exp + "&Signature=" + sig, nil},
		{"AWSAccessKeyId=" + testAKID + "&Expires=" + exp + "&Signature=" + strings.ReplaceAll(sig, "%2B", "+"), nil}, // '+' left raw
		{"AWSAccessKeyId=" + testAKID + "&Expires=1795752001&Signature=" + sig, ErrSignatureMismatch},
		{"AWSAccessKeyId=" + testAKID + "&Expires=-1&Signature=" + sig, ErrMalformedAuth},
		{"AWSAccessKeyId=" + testAKID + "&Expires=soon&Signature=" + sig, ErrMalformedAuth},
		{"AWSAccessKeyId=" + testAKID + "&Signature=" + sig, ErrMalformedAuth},
		{"AWSAccessKeyId=" + testAKID + "&Expires=" + exp + "&Expires=" + exp + "&Signature=" + sig, ErrMalformedAuth},
		{"AWSAccessKeyId=&Expires=" + exp + "&Signature=" + sig, ErrMalformedAuth},
		{"AWSAccessKeyId=" + testAKID + "&Expires=" + exp + "&Signature=%zz", ErrMalformedAuth},
		{"AWSAccessKeyId=" + testAKID + "&Expires=" + exp, ErrMissingAuth}, // no signature: anonymous
	} {
		r := v2Request(t, "GET", "/media/k?"+c.query, "127.0.0.1:9000", nil)
		_, err := v2Verifier(at).Verify(r)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.query, err, c.want)
		}
	}
}

func hmacSHA1Base64(secret, s string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// FuzzVerifyV2: whatever a V2 Authorization header, Date and query hold,
// Verify fails with one of the documented errors or accepts the test key.
func FuzzVerifyV2(f *testing.F) {
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	date := at.Format(http.TimeFormat)
	f.Add("AWS "+testAKID+":"+hmacSHA1Base64(testSecret, "GET\n\n\n"+date+"\n/media/k?acl"), date, "acl")
	f.Add("", "", "AWSAccessKeyId="+testAKID+"&Expires=1795752000&Signature="+url.QueryEscape(hmacSHA1Base64(testSecret, "GET\n\n\n1795752000\n/media/k")))
	f.Add("AWS :", "Thu, 01 Jan 1970 00:00:00 +0000", "AWSAccessKeyId=&Signature=&Expires=99999999999999999999")
	f.Fuzz(func(t *testing.T, authz, date, query string) {
		r, err := http.NewRequest("GET", "http://127.0.0.1:9000/media/k", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.URL.RawQuery = query
		r.RequestURI = "/media/k"
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		r.Header.Set("Date", date)
		a, err := v2Verifier(at).Verify(r)
		if err == nil {
			if a.AccessKeyID != testAKID {
				t.Fatalf("accepted %q", a.AccessKeyID)
			}
			return
		}
		for _, e := range []error{ErrMalformedAuth, ErrUnsupported, ErrSignatureMismatch, ErrTimeSkewed, ErrExpired, ErrMissingAuth, ErrHeadersNotSigned, errUnknownKey} {
			if errors.Is(err, e) {
				return
			}
		}
		t.Fatalf("undocumented error %v", err)
	})
}

// TestV2OneSpellingPerSignature: base64 with non-zero padding bits decodes
// to the same bytes; only the canonical spelling is accepted.
func TestV2OneSpellingPerSignature(t *testing.T) {
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	date := at.Format(http.TimeFormat)
	good := hmacSHA1Base64(testSecret, "GET\n\n\n"+date+"\n/media/k")
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	idx := strings.IndexByte(alphabet, good[26])
	accepted := 0
	for d := range 4 {
		s := good[:26] + string(alphabet[idx&^3|d]) + "="
		r := v2Request(t, "GET", "/media/k", "127.0.0.1:9000", [][2]string{{"Date", date}, {"Authorization", "AWS " + testAKID + ":" + s}})
		if _, err := v2Verifier(at).Verify(r); err == nil {
			accepted++
		}
	}
	if accepted != 1 {
		t.Errorf("%d spellings of one signature accepted, want 1", accepted)
	}
}

// TestV2SignsWhatHandlersRead: names and values are signed decoded as the
// handlers decode them ('+' is a space), and an unsigned parameter that
// could pick an operation is refused.
func TestV2SignsWhatHandlersRead(t *testing.T) {
	at := time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)
	date := at.Format(http.TimeFormat)
	for _, c := range []struct {
		target, signed string
		want           error
	}{
		{"/media/k?versionId=a%2Bb", "/media/k?versionId=a+b", nil},
		{"/media/k?versionId=a+b", "/media/k?versionId=a+b", ErrSignatureMismatch}, // the handler reads "a b"
		{"/media/k?versionI%64=v", "/media/k?versionId=v", nil},
		{"/media/k?versionI%64=v", "/media/k", ErrSignatureMismatch},
		{"/media/k?attributes", "/media/k", ErrUnsupported},
		{"/media/k?x-id=GetObject&prefix=a&x-amz-meta-a=b", "/media/k", nil},
		{"/media/k?versionId=%zz", "/media/k", ErrMalformedAuth},
	} {
		r := v2Request(t, "GET", c.target, "127.0.0.1:9000", [][2]string{{"Date", date}})
		signV2(r, "GET\n\n\n"+date+"\n"+c.signed)
		_, err := v2Verifier(at).Verify(r)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s signed as %s: %v, want %v", c.target, c.signed, err, c.want)
		}
	}
	// aws-chunked framing has nothing to check it under V2.
	for _, h := range [][2]string{{"Content-Encoding", "aws-chunked"}, {"X-Amz-Decoded-Content-Length", "5"}, {"X-Amz-Trailer", "x-amz-checksum-crc32"}} {
		r := v2Request(t, "PUT", "/media/k", "127.0.0.1:9000", [][2]string{{"Date", date}, h})
		signV2(r, "PUT\n\n\n"+date+"\n"+strings.ToLower(h[0])+":"+h[1]+"\n/media/k")
		if _, err := v2Verifier(at).Verify(r); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s under V2: %v, want ErrUnsupported", h[0], err)
		}
	}
}
