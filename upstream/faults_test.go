package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/s3edge/s3edge/upstream"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

func TestMissing(t *testing.T) {
	_, c := newServer(t, upstreamtest.Shape{})
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"get missing key", func() error { _, err := c.Get(ctx, bucket, "nope", upstream.GetOptions{}); return err }, upstream.ErrNotFound},
		{"head missing key", func() error { _, err := c.Head(ctx, bucket, "nope", upstream.GetOptions{}); return err }, upstream.ErrNotFound},
		{"get missing bucket", func() error { _, err := c.Get(ctx, "nobucket", "k", upstream.GetOptions{}); return err }, upstream.ErrNoSuchBucket},
		// A HEAD answer has no body: S3 cannot say which is missing.
		{"head missing bucket", func() error { _, err := c.Head(ctx, "nobucket", "k", upstream.GetOptions{}); return err }, upstream.ErrNotFound},
		{"list missing bucket", func() error { _, err := c.List(ctx, upstream.ListInput{Bucket: "nobucket"}); return err }, upstream.ErrNoSuchBucket},
		{"put missing bucket", func() error {
			_, err := c.Put(ctx, upstream.PutInput{Bucket: "nobucket", Key: "k"})
			return err
		}, upstream.ErrNoSuchBucket},
		{"delete objects missing bucket", func() error { _, err := c.DeleteObjects(ctx, "nobucket", []string{"k"}); return err }, upstream.ErrNoSuchBucket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// stub answers every request with status and, but for HEAD and 304, an S3
// error body with code.
func stub(t *testing.T, status int, code string) *upstream.S3 {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method == http.MethodHead || status == http.StatusNotModified {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>stub says %s</Message><RequestId>1</RequestId></Error>`, code, code)
	}))
	t.Cleanup(ts.Close)
	c, err := upstream.New(upstream.Config{Endpoint: ts.URL, AccessKeyID: "AKID", SecretAccessKey: "SECRET", PathStyle: true, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTranslateAnswers(t *testing.T) {
	get := func(c *upstream.S3) error {
		_, err := c.Get(t.Context(), "b", "k", upstream.GetOptions{IfMatch: `"x"`})
		return err
	}
	head := func(c *upstream.S3) error { _, err := c.Head(t.Context(), "b", "k", upstream.GetOptions{}); return err }
	abort := func(c *upstream.S3) error { return c.AbortMultipart(t.Context(), "b", "k", "id") }
	list := func(c *upstream.S3) error { _, err := c.List(t.Context(), upstream.ListInput{Bucket: "b"}); return err }

	tests := []struct {
		name   string
		status int
		code   string
		call   func(*upstream.S3) error
		want   error // a sentinel, or nil for an *APIError with status and code
	}{
		{"get 412", 412, "PreconditionFailed", get, upstream.ErrPreconditionFailed},
		{"head 412", 412, "", head, upstream.ErrPreconditionFailed},
		{"get 304", 304, "", get, upstream.ErrNotModified},
		{"head 304", 304, "", head, upstream.ErrNotModified},
		{"get 416", 416, "InvalidRange", get, upstream.ErrInvalidRange},
		{"head 416", 416, "", head, upstream.ErrInvalidRange},
		{"head 404", 404, "", head, upstream.ErrNotFound},
		{"get 404 NoSuchKey", 404, "NoSuchKey", get, upstream.ErrNotFound},
		{"list 404 NoSuchBucket", 404, "NoSuchBucket", list, upstream.ErrNoSuchBucket},
		{"abort 404 NoSuchUpload", 404, "NoSuchUpload", abort, upstream.ErrNoSuchUpload},
		{"get 404 NoSuchVersion", 404, "NoSuchVersion", get, nil},
		{"get 403", 403, "AccessDenied", get, nil},
		{"head 403", 403, "", head, nil},
		{"get 503 SlowDown", 503, "SlowDown", get, nil},
		{"list 500", 500, "InternalError", list, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(stub(t, tt.status, tt.code))
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Errorf("got %v, want %v", err, tt.want)
				}
				return
			}
			var apiErr *upstream.APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("got %v (%T), want *APIError", err, err)
			}
			wantCode := tt.code
			if wantCode == "" {
				wantCode = "Forbidden" // the SDK derives it from the status text
			}
			if apiErr.Status != tt.status || apiErr.Code != wantCode {
				t.Errorf("APIError = %d %s, want %d %s", apiErr.Status, apiErr.Code, tt.status, wantCode)
			}
			if got, want := errors.Is(err, upstream.ErrUnavailable), tt.status >= 500; got != want {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %t, want %t", err, got, want)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	srv, c := newServer(t, upstreamtest.Shape{})
	data := make([]byte, 256<<10)
	for i := range data {
		data[i] = byte(i)
	}
	srv.PutObject(bucket, "k", data)
	get := func(ctx context.Context) (*upstream.Object, error) {
		return c.Get(ctx, bucket, "k", upstream.GetOptions{})
	}

	t.Run("500 after retries", func(t *testing.T) {
		srv.Reset()
		srv.SetShape(upstreamtest.Shape{Fail: upstreamtest.FailFirst(100, "GetObject", upstreamtest.Status(500))})
		_, err := get(t.Context())
		var apiErr *upstream.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 500 || apiErr.Code != "InternalError" || !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("Get = %v, want *APIError 500 InternalError matching ErrUnavailable", err)
		}
		if n := srv.Requests("GetObject"); n != 3 {
			t.Errorf("attempts = %d, want 3", n)
		}
	})
	t.Run("503 then success", func(t *testing.T) {
		srv.Reset()
		srv.SetShape(upstreamtest.Shape{Fail: upstreamtest.FailFirst(2, "GetObject", upstreamtest.Status(503))})
		obj, err := get(t.Context())
		if err != nil {
			t.Fatalf("Get = %v, want success on the third attempt", err)
		}
		readAll(t, obj)
		if n := srv.Requests("GetObject"); n != 3 {
			t.Errorf("attempts = %d, want 3", n)
		}
	})
	t.Run("reset before headers", func(t *testing.T) {
		srv.Reset()
		srv.SetShape(upstreamtest.Shape{Fail: upstreamtest.FailFirst(100, "", upstreamtest.ResetBeforeHeaders())})
		_, err := get(t.Context())
		if !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("Get = %v, want ErrUnavailable", err)
		}
		// net/http retries a GET once by itself when a reused connection
		// dies before answering, so the SDK's 3 attempts may be 4 requests.
		if n := srv.Requests("GetObject"); n < 3 || n > 4 {
			t.Errorf("requests = %d, want 3 attempts", n)
		}
		srv.SetShape(upstreamtest.Shape{Fail: upstreamtest.FailFirst(1, "", upstreamtest.ResetBeforeHeaders())})
		obj, err := get(t.Context())
		if err != nil {
			t.Fatalf("Get after one reset = %v, want a retried success", err)
		}
		readAll(t, obj)
	})
	for _, f := range []upstreamtest.Fault{upstreamtest.ResetAfter(100_000), upstreamtest.ShortBody(100_000)} {
		t.Run(f.String(), func(t *testing.T) {
			srv.SetShape(upstreamtest.Shape{Fail: upstreamtest.FailFirst(1, "GetObject", f)})
			obj, err := get(t.Context())
			if err != nil {
				t.Fatalf("Get = %v; the fault comes after the headers", err)
			}
			defer obj.Body.Close()
			got, err := io.ReadAll(obj.Body)
			if err == nil || errors.Is(err, io.EOF) || !errors.Is(err, upstream.ErrUnavailable) {
				t.Errorf("reading the body = %v, want an error matching ErrUnavailable, not EOF", err)
			}
			if len(got) != 100_000 {
				t.Errorf("read %d bytes before the fault, want 100000", len(got))
			}
		})
	}
	t.Run("deadline", func(t *testing.T) {
		srv.SetShape(upstreamtest.Shape{FirstByte: time.Minute})
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := get(ctx)
		if !errors.Is(err, upstream.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Get = %v, want ErrUnavailable and DeadlineExceeded", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		srv.SetShape(upstreamtest.Shape{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := get(ctx)
		if !errors.Is(err, context.Canceled) || errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("Get = %v, want context.Canceled only", err)
		}
	})
	t.Run("response header timeout", func(t *testing.T) {
		srv.SetShape(upstreamtest.Shape{FirstByte: time.Minute})
		cfg := srv.Config()
		cfg.ResponseHeaderTimeout = 50 * time.Millisecond
		cfg.MaxAttempts = 1
		slow, err := upstream.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = slow.Head(t.Context(), bucket, "k", upstream.GetOptions{})
		if !errors.Is(err, upstream.ErrUnavailable) {
			t.Errorf("Head = %v, want ErrUnavailable", err)
		}
	})
	srv.SetShape(upstreamtest.Shape{})
}

// TestPutRetryRewinds fails the first attempts of a PUT, once with a 500
// after the body was read and once with a reset before any answer: the
// retried attempt must send the whole body again.
func TestPutRetryRewinds(t *testing.T) {
	for _, f := range []upstreamtest.Fault{upstreamtest.Status(500), upstreamtest.ResetBeforeHeaders()} {
		t.Run(f.String(), func(t *testing.T) {
			srv, c := newServer(t, upstreamtest.Shape{Fail: upstreamtest.FailFirst(1, "PutObject", f)})
			data := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB: Expect: 100-continue
			if _, err := c.Put(t.Context(), upstream.PutInput{Bucket: bucket, Key: "k", Body: bytes.NewReader(data), Size: int64(len(data))}); err != nil {
				t.Fatalf("Put = %v", err)
			}
			if n := srv.Requests("PutObject"); n != 2 {
				t.Errorf("PutObject requests = %d, want 2", n)
			}
			if got, ok := srv.Object(bucket, "k"); !ok || !bytes.Equal(got, data) {
				t.Errorf("stored %d bytes, want %d", len(got), len(data))
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := upstream.New(upstream.Config{Endpoint: "http://" + addr, AccessKeyID: "AKID", SecretAccessKey: "SECRET", PathStyle: true, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(t.Context(), "b", "k", upstream.GetOptions{})
	if !errors.Is(err, upstream.ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Get = %v, want ErrUnavailable and ECONNREFUSED", err)
	}
}
