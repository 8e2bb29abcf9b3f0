package proxy_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/s3edge/s3edge/upstream"
)

// partsUpstream answers GET and HEAD of one multipart object as S3 does,
// partNumber included (gofakes3 ignores it): a part is a 206 with its
// Content-Range and x-amz-mp-parts-count.
func partsUpstream(t *testing.T, parts [][]byte) upstream.Upstream {
	t.Helper()
	whole := bytes.Join(parts, nil)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("ETag", `"0123456789abcdef0123456789abcdef-`+strconv.Itoa(len(parts))+`"`)
		h.Set("Last-Modified", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat))
		h.Set("Content-Type", "application/octet-stream")
		body := whole
		status := http.StatusOK
		if pn := r.URL.Query().Get("partNumber"); pn != "" {
			n, _ := strconv.Atoi(pn)
			if n < 1 || n > len(parts) {
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
			start := len(bytes.Join(parts[:n-1], nil))
			body = parts[n-1]
			status = http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+len(body)-1, len(whole)))
			h.Set("X-Amz-Mp-Parts-Count", strconv.Itoa(len(parts)))
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	}))
	t.Cleanup(ts.Close)
	c, err := upstream.New(upstream.Config{Endpoint: ts.URL, AccessKeyID: "AKID", SecretAccessKey: "SECRET", PathStyle: true, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPartNumberReadsAreRelayed: GET and HEAD with partNumber (how
// aws-sdk-go-v2's transfer manager downloads a multipart object) answer
// 206 with the part's range and length and the object's part count, as S3
// does.
func TestPartNumberReadsAreRelayed(t *testing.T) {
	parts := [][]byte{randomBytes(1000, 1), randomBytes(700, 2), randomBytes(300, 3)}
	e := newEnv(t, envOptions{upstream: partsUpstream(t, parts)})
	for _, method := range []string{"HEAD", "GET"} {
		r := e.signed(method, "/media/mp?partNumber=2", nil, fullKey, fullSecret, time.Now(), "", nil)
		res, err := e.httpClient().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		h := res.Header
		if res.StatusCode != http.StatusPartialContent || h.Get("Content-Range") != "bytes 1000-1699/2000" ||
			h.Get("Content-Length") != "700" || h.Get("X-Amz-Mp-Parts-Count") != "3" {
			t.Errorf("%s partNumber=2: %d, Content-Range %q, Content-Length %q, parts count %q",
				method, res.StatusCode, h.Get("Content-Range"), h.Get("Content-Length"), h.Get("X-Amz-Mp-Parts-Count"))
		}
		if method == "GET" && !bytes.Equal(body, parts[1]) {
			t.Errorf("GET partNumber=2: %d bytes, not the part", len(body))
		}
	}
	// Without partNumber: the whole object, and no part count.
	r := e.signed("HEAD", "/media/mp", nil, fullKey, fullSecret, time.Now(), "", nil)
	res, err := e.httpClient().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Length") != "2000" || res.Header.Get("X-Amz-Mp-Parts-Count") != "" {
		t.Errorf("HEAD: %d, Content-Length %q, parts count %q", res.StatusCode, res.Header.Get("Content-Length"), res.Header.Get("X-Amz-Mp-Parts-Count"))
	}
}
