package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

func newControlServer(t *testing.T) *httptest.Server {
	t.Helper()
	shape := upstreamtest.Shape{FirstByte: time.Millisecond}
	srv := upstreamtest.NewServer(shape, benchBucket)
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(upstreamHandler(srv, shape))
	t.Cleanup(hs.Close)
	return hs
}

func TestUpstreamControlPaths(t *testing.T) {
	hs := newControlServer(t)
	ctx := t.Context()
	o, err := dialRemoteOrigin(ctx, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.put(ctx, "a/b", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if st, _ := o.stats(ctx); st.requests != 0 || st.bytes != 0 {
		t.Errorf("a control put was counted: %+v", st)
	}
	resp, err := http.Get(hs.URL + "/" + benchBucket + "/a/b")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Fatalf("GET through the upstream = %q", body)
	}
	st, err := o.stats(ctx)
	if err != nil || st.gets != 1 || st.requests != 1 || st.bytes != 5 {
		t.Errorf("stats = %+v, %v; want 1 GET of 5 bytes", st, err)
	}
	if err := o.reset(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := o.stats(ctx); st.requests != 0 || st.bytes != 0 {
		t.Errorf("after reset: %+v", st)
	}
}

// TestRemoteUpstreamRun plays a tiny hot workload against an upstream in
// "another process" (a control server here), the --upstream path.
func TestRemoteUpstreamRun(t *testing.T) {
	hs := newControlServer(t)
	cfg := quickConfig(t, "--participants", "direct", "--upstream", hs.URL, "--duration", "100ms")
	cfg.HotSizes = cfg.HotSizes[:1]
	var stdout, stderr bytes.Buffer
	if err := runSuite(t.Context(), cfg, "test", &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "| direct | ") || strings.Contains(stdout.String(), "failed") {
		t.Errorf("no direct row:\n%s", stdout.String())
	}
}

func TestUpstreamMainStops(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	done := make(chan error, 1)
	pr, pw := io.Pipe()
	go func() {
		done <- upstreamMain(ctx, []string{"--addr", "127.0.0.1:0", "--first-byte", "1ms"}, pw, io.Discard)
		pw.Close()
	}()
	// The first line names the address; then cancel, as SIGINT would.
	buf := make([]byte, 512)
	n, _ := pr.Read(buf)
	out.Write(buf[:n])
	if !strings.HasPrefix(out.String(), "upstream listening on http://127.0.0.1:") {
		t.Errorf("first line = %q", out.String())
	}
	cancel()
	go io.Copy(io.Discard, pr)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("upstreamMain = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("upstreamMain did not stop")
	}
}
