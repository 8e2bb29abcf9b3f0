// Package upstreamtest runs an in-process S3 provider for tests and
// benchmarks, as net/http/httptest runs an HTTP server: gofakes3 over an
// in-memory backend, behind a real loopback listener, wrapped in a
// middleware that shapes the responses (first-byte delay, jitter, bandwidth
// cap), injects faults (5xx answers, connection resets before the headers or
// mid-body, short bodies) and counts what passes (requests per S3
// operation, response body bytes, aws-chunked uploads).
//
// gofakes3 v1.2.0, as this package runs it, differs from S3 in ways tests
// must know:
//   - signatures are not verified: any credentials work;
//   - GET and HEAD honour If-None-Match (exact ETag only) and
//     If-Modified-Since, and ignore If-Match and If-Unmodified-Since; PUT
//     honours If-Match and If-None-Match: *;
//   - only Content-Type, Content-Disposition, Content-Encoding and X-Amz-*
//     headers are stored with an object: Cache-Control, Content-Language
//     and Expires are dropped; every X-Amz-* request header is stored and
//     replayed, SSE-C headers included (SSE-C is not implemented: objects
//     are stored in plaintext);
//   - a PUT of an existing key keeps the old object's metadata where the
//     new request has none; CopyObject merges the source's metadata under
//     the request's whatever the metadata directive;
//   - single byte ranges only (a multi-range request is NotImplemented);
//   - multipart parts are held in memory; ListParts numbers parts wrongly
//     after a part-number marker; ListMultipartUploads answers
//     NoSuchUpload for a bucket that never had an upload;
//   - a ListObjectsV2 page cut inside a common prefix may repeat that
//     prefix on the next page;
//   - aws-chunked bodies other than STREAMING-AWS4-HMAC-SHA256-PAYLOAD are
//     stored with their framing: see ChunkedRequests.
package upstreamtest

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/s3edge/s3edge/upstream"
)

// Test credentials of Client and Config; gofakes3 accepts any.
const (
	AccessKeyID     = "AKIDUPSTREAMTEST"
	SecretAccessKey = "upstreamtest-secret"
	Region          = "us-east-1"
)

// Server is a shaped, counting, in-memory S3 provider on 127.0.0.1.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:port", for path-style
	// requests.
	URL string

	ts      *httptest.Server
	backend *s3mem.Backend
	faker   http.Handler
	shape   atomic.Pointer[Shape]
	observe atomic.Pointer[func(op string, r *http.Request)]

	bytesSent atomic.Int64
	chunked   atomic.Int64

	// mu guards the following.
	mu       sync.Mutex
	requests map[string]int64
}

// NewServer starts a server with the given shape and buckets. The caller
// must Close it (t.Cleanup(srv.Close)).
func NewServer(shape Shape, buckets ...string) *Server {
	s := &Server{backend: s3mem.New(), requests: make(map[string]int64)}
	for _, b := range buckets {
		if err := s.backend.CreateBucket(b); err != nil {
			panic(fmt.Sprintf("upstreamtest: create bucket %q: %v", b, err))
		}
	}
	s.faker = gofakes3.New(s.backend).Server()
	s.shape.Store(&shape)
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.ts.URL
	return s
}

// Close shuts the server down and waits for the requests in flight.
func (s *Server) Close() { s.ts.Close() }

// SetShape replaces the shape for the requests that start from now on.
func (s *Server) SetShape(shape Shape) { s.shape.Store(&shape) }

// Observe calls fn with every request, and its operation, before any
// fault or shaping; nil stops observing. fn must not read the body.
func (s *Server) Observe(fn func(op string, r *http.Request)) {
	if fn == nil {
		s.observe.Store(nil)
		return
	}
	s.observe.Store(&fn)
}

// Config returns a client configuration for this server: path style,
// static test credentials, short backoff.
func (s *Server) Config() upstream.Config {
	return upstream.Config{
		Endpoint:        s.URL,
		Region:          Region,
		AccessKeyID:     AccessKeyID,
		SecretAccessKey: SecretAccessKey,
		PathStyle:       true,
		MaxBackoff:      50 * time.Millisecond,
	}
}

// Client returns a new upstream.S3 for this server, configured by Config.
func (s *Server) Client() *upstream.S3 {
	c, err := upstream.New(s.Config())
	if err != nil {
		panic("upstreamtest: " + err.Error())
	}
	return c
}

// Requests returns how many requests of operation op (see Operation)
// arrived since the start or the last Reset, faulted ones included; ""
// counts all operations.
func (s *Server) Requests(op string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op != "" {
		return s.requests[op]
	}
	var n int64
	for _, c := range s.requests {
		n += c
	}
	return n
}

// BytesSent returns how many response body bytes were written since the
// start or the last Reset: the egress a provider would bill.
func (s *Server) BytesSent() int64 { return s.bytesSent.Load() }

// ChunkedRequests returns how many requests carried an aws-chunked body
// (Content-Encoding aws-chunked, x-amz-content-sha256 STREAMING-*, or
// x-amz-decoded-content-length). The proxy must never send one: tests
// assert that this stays 0.
func (s *Server) ChunkedRequests() int64 { return s.chunked.Load() }

// Reset zeroes the counters.
func (s *Server) Reset() {
	s.mu.Lock()
	clear(s.requests)
	s.mu.Unlock()
	s.bytesSent.Store(0)
	s.chunked.Store(0)
}

// PutObject stores data under bucket/key directly in the backend, with no
// request counted, no shaping and no fault. It panics if the bucket does
// not exist.
func (s *Server) PutObject(bucket, key string, data []byte) {
	meta := map[string]string{
		"Content-Type":  "application/octet-stream",
		"Last-Modified": time.Now().UTC().Format(http.TimeFormat),
	}
	if _, err := s.backend.PutObject(bucket, key, meta, bytes.NewReader(data), int64(len(data)), nil); err != nil {
		panic(fmt.Sprintf("upstreamtest: put %s/%s: %v", bucket, key, err))
	}
}

// Object returns the bytes stored under bucket/key, read directly from the
// backend, and whether the object exists.
func (s *Server) Object(bucket, key string) ([]byte, bool) {
	obj, err := s.backend.GetObject(bucket, key, nil)
	if err != nil {
		return nil, false
	}
	defer obj.Contents.Close()
	data, err := io.ReadAll(obj.Contents)
	if err != nil {
		return nil, false
	}
	return data, true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op := Operation(r)
	s.mu.Lock()
	s.requests[op]++
	s.mu.Unlock()
	if isChunked(r) {
		s.chunked.Add(1)
	}
	if fn := s.observe.Load(); fn != nil {
		(*fn)(op, r)
	}

	shape := *s.shape.Load()
	var fault Fault
	if shape.Fail != nil {
		fault = shape.Fail(r)
	}
	sw := &shapedWriter{rw: w, ctx: r.Context(), shape: shape, fault: fault, sent: &s.bytesSent}
	switch fault.Kind {
	case FaultResetBeforeHeaders:
		sw.cut(false)
		return
	case FaultStatus:
		writeError(sw, r, fault)
		return
	}
	s.faker.ServeHTTP(sw, r)
	sw.finish()
}

// writeError answers an S3 XML error, without a body for HEAD.
func writeError(w http.ResponseWriter, r *http.Request, f Fault) {
	type errorBody struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string   `xml:"Code"`
		Message   string   `xml:"Message"`
		Resource  string   `xml:"Resource"`
		RequestID string   `xml:"RequestId"`
	}
	out, _ := xml.Marshal(errorBody{Code: f.code(), Message: "upstreamtest: injected " + f.String(), Resource: r.URL.Path, RequestID: "upstreamtest"})
	w.Header().Set("Content-Type", "application/xml")
	if r.Method == http.MethodHead {
		w.WriteHeader(f.status())
		return
	}
	body := append([]byte(xml.Header), out...)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(f.status())
	_, _ = w.Write(body)
}
