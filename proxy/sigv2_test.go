package proxy_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// v2URL presigns path with Signature V2 for fullKey, signing the given
// sub-resource string (as a signer would, "" for none), valid 5 minutes.
func (e *env) v2URL(method, path, signedSub, query string) string {
	exp := strconv.FormatInt(time.Now().Add(5*time.Minute).Unix(), 10)
	m := hmac.New(sha1.New, []byte(fullSecret))
	m.Write([]byte(method + "\n\n\n" + exp + "\n" + path + signedSub))
	sig := url.QueryEscape(base64.StdEncoding.EncodeToString(m.Sum(nil)))
	if query != "" {
		query += "&"
	}
	return e.srv.URL + path + "?" + query + "AWSAccessKeyId=" + fullKey + "&Expires=" + exp + "&Signature=" + sig
}

func (e *env) fetch(method, u string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := e.httpClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// TestV2QueryTampering: what a handler reads from the query is what a V2
// signature covers. A parameter name or value spelled differently (percent
// encoded, '+', a raw ';') cannot slip past the signature into a handler:
// the response overrides, the operation and the version stay as signed.
func TestV2QueryTampering(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(fullKey, fullSecret)
	if _, err := c.PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String("k"),
		Body: strings.NewReader("<script>alert(1)</script>"), ContentType: aws.String("text/html")}); err != nil {
		t.Fatal(err)
	}
	plain := e.v2URL("GET", "/media/k", "", "")
	if res, _ := e.fetch("GET", plain); res.StatusCode != 200 {
		t.Fatalf("untampered V2 URL: %d", res.StatusCode)
	}
	typed := e.v2URL("GET", "/media/k", "?response-content-type=text/plain;charset=x", "response-content-type=text%2Fplain%3Bcharset%3Dx")
	if res, _ := e.fetch("GET", typed); res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/plain;charset=x" {
		t.Fatalf("signed override: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for _, tc := range []struct{ name, url string }{
		{"unsigned override, name percent-encoded", plain + "&response-content-typ%65=text%2Fhtml"},
		{"duplicate override before the signed one", strings.Replace(typed, "?", "?response-content-typ%65=text%2Fhtml&", 1)},
		{"operation switched by an encoded name", plain + "&ac%6C"},
		{"ListParts by an encoded name", plain + "&uploadI%64=x"},
		{"an operation V2 does not sign", plain + "&attributes"},
		{"version by an encoded name", plain + "&versionI%64=v"},
	} {
		res, body := e.fetch("GET", tc.url)
		if res.StatusCode == 200 {
			t.Errorf("%s: 200 (Content-Type %q, %.80q), want a refusal", tc.name, res.Header.Get("Content-Type"), body)
		}
	}
	// A raw ';' where the signer sent %3B is the same byte to the verifier
	// and to the handler: the signed override still applies.
	if res, _ := e.fetch("GET", strings.Replace(typed, "%3B", ";", 1)); res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/plain;charset=x" {
		t.Errorf("raw ';': %d, served %q; want 200 with the signed override", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// The same for SigV4: the SDK's presigned URL with a ';' in a value.
	ps, err := s3.NewPresignClient(c).PresignGetObject(ctx(t), &s3.GetObjectInput{Bucket: aws.String("media"), Key: aws.String("k"),
		ResponseContentType: aws.String("text/plain;charset=x")}, s3.WithPresignExpires(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{ps.URL, strings.Replace(ps.URL, "%3B", ";", 1)} {
		if res, _ := e.fetch("GET", u); res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/plain;charset=x" {
			t.Errorf("SigV4 %s: %d, served %q; want 200 with the signed override", u, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	// V2 presign parameters are not a bucket subresource: a presigned
	// PUT /media is CreateBucket (answered for a configured bucket).
	if res, body := e.fetch("PUT", e.v2URL("PUT", "/media", "", "")); res.StatusCode != 200 {
		t.Errorf("V2 presigned PUT /media: %d %.200s", res.StatusCode, body)
	}
}
