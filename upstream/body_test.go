package upstream_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/s3edge/s3edge/upstream"
)

// sink is a provider that reads and discards request bodies, recording the
// last request's headers and body length, so that what a test measures in
// this process is the client's side only.
type sink struct {
	mu     sync.Mutex
	header http.Header
	n      int64
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	s.header, s.n = r.Header.Clone(), n
	s.mu.Unlock()
	w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
}

func (s *sink) last() (http.Header, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.header, s.n
}

func newSink(t *testing.T, tls bool, cfg upstream.Config) (*sink, *upstream.S3) {
	t.Helper()
	s := &sink{}
	var ts *httptest.Server
	if tls {
		ts = httptest.NewTLSServer(s)
		cfg.HTTPClient = ts.Client()
	} else {
		ts = httptest.NewServer(s)
	}
	t.Cleanup(ts.Close)
	cfg.Endpoint, cfg.PathStyle, cfg.AccessKeyID, cfg.SecretAccessKey = ts.URL, true, "AKID", "SECRET"
	c, err := upstream.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestUploadBody checks what an upload looks like on the wire: with the
// default checksum mode, a plain body with Content-Length, signed over
// http and UNSIGNED-PAYLOAD over https, never aws-chunked nor a checksum
// trailer; the SDK's own default (when_supported) would send aws-chunked
// over https.
func TestUploadBody(t *testing.T) {
	tests := []struct {
		name     string
		tls      bool
		checksum string
		part     bool
		sha      func(string) bool
		chunked  bool
	}{
		{"put http", false, "", false, hexSHA256.MatchString, false},
		{"put https", true, "", false, func(s string) bool { return s == "UNSIGNED-PAYLOAD" }, false},
		{"part http", false, "", true, hexSHA256.MatchString, false},
		{"part https", true, "", true, func(s string) bool { return s == "UNSIGNED-PAYLOAD" }, false},
		{"put https when_supported", true, upstream.ChecksumWhenSupported, false, func(s string) bool { return strings.HasPrefix(s, "STREAMING-") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := newSink(t, tt.tls, upstream.Config{RequestChecksum: tt.checksum})
			body := strings.NewReader(strings.Repeat("x", 100_000))
			var err error
			if tt.part {
				_, err = c.UploadPart(t.Context(), upstream.PartInput{Bucket: "b", Key: "k", UploadID: "u", PartNumber: 1, Body: body, Size: body.Size()})
			} else {
				_, err = c.Put(t.Context(), upstream.PutInput{Bucket: "b", Key: "k", Body: body, Size: body.Size()})
			}
			if err != nil {
				t.Fatalf("upload = %v", err)
			}
			h, n := s.last()
			sha := h.Get("X-Amz-Content-Sha256")
			if !tt.sha(sha) {
				t.Errorf("X-Amz-Content-Sha256 = %q", sha)
			}
			chunked := strings.Contains(h.Get("Content-Encoding"), "aws-chunked") || h.Get("X-Amz-Decoded-Content-Length") != ""
			if chunked != tt.chunked {
				t.Errorf("aws-chunked = %t, want %t (headers %v)", chunked, tt.chunked, h)
			}
			if tt.chunked {
				return
			}
			if n != 100_000 || h.Get("X-Amz-Trailer") != "" {
				t.Errorf("body of %d bytes, X-Amz-Trailer %q; want 100000 plain bytes", n, h.Get("X-Amz-Trailer"))
			}
			for k := range h {
				if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
					t.Errorf("checksum header %s sent", k)
				}
			}
		})
	}
}

// TestPutFileDoesNotBuffer puts a 64 MiB file over http (where the signer
// reads it once more for its SHA-256) and checks that the client allocates
// a small fraction of it: the body is streamed and rewound, not buffered.
func TestPutFileDoesNotBuffer(t *testing.T) {
	const size = 64 << 20
	path := filepath.Join(t.TempDir(), "spool")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil { // sparse: reads as zeros
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, c := newSink(t, false, upstream.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err = c.Put(ctx, upstream.PutInput{Bucket: "b", Key: "k", Body: f, Size: size})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Put = %v", err)
	}
	if _, n := s.last(); n != size {
		t.Errorf("provider received %d bytes, want %d", n, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/16 {
		t.Errorf("Put of a %d MiB file allocated %d KiB, want < %d KiB", size>>20, alloc>>10, size/16>>10)
	} else {
		t.Logf("Put of a %d MiB file allocated %d KiB", size>>20, alloc>>10)
	}
}
