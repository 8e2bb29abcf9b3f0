package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/s3edge/s3edge/proxy"
)

// These tests send the same bytes, at the same times, to the hit path and
// to a plain net/http server with the same limits, and want the same
// answers: where the hit path reads a request itself, it must time and
// frame it as net/http would.

// netHTTPRef starts a plain net/http server with the given limits and a
// trivial handler: GET answers 200 "ok", anything else 403 with a length.
func netHTTPRef(t *testing.T, readHeader, idle time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ref := &http.Server{ReadHeaderTimeout: readHeader, IdleTimeout: idle, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method != http.MethodGet {
			w.Header().Set("Content-Length", "6")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, "denied")
			return
		}
		w.Header().Set("Content-Length", "2")
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = ref.Serve(ln) }()
	t.Cleanup(func() { ref.Close() })
	return ln.Addr().String()
}

// parity runs play against net/http and then against the hit path, each
// on a fresh connection; path is the stored object's path on the proxy
// (net/http answers any path).
func parity(t *testing.T, e *env, refAddr, path string, play func(t *testing.T, h *hpConn, addr, path string)) {
	t.Helper()
	for _, side := range []struct{ name, addr string }{
		{"net/http", refAddr},
		{"hit path", e.srv.Listener.Addr().String()},
	} {
		t.Run(side.name, func(t *testing.T) {
			c, err := net.Dial("tcp", side.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			play(t, &hpConn{t: t, c: c, br: bufio.NewReader(c)}, side.addr, path)
		})
	}
}

// TestHitPathNoIdleTimeout: with a ReadHeaderTimeout and no IdleTimeout
// (none, as in net/http), a connection sending a whole request every
// ReadHeaderTimeout/2 is kept. The first request's header deadline once
// stayed in force and cut it.
func TestHitPathNoIdleTimeout(t *testing.T) {
	const d = time.Second
	e, _, _, _ := hpServer(t, proxy.HitOptions{ReadHeaderTimeout: d})
	e.stored("public/hp/parity-idle0", randomBytes(4<<10, 7001))
	parity(t, e, netHTTPRef(t, d, 0), "/media/public/hp/parity-idle0", func(t *testing.T, h *hpConn, addr, path string) {
		start := time.Now()
		for i := range 4 { // the last two past the first request's header deadline
			h.sendRaw(fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, addr))
			res, _, err := h.tryRecv(hpRaw("GET"))
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("request #%d, %v after the connection opened: %v", i, time.Since(start).Round(10*time.Millisecond), err)
			}
			time.Sleep(d / 2)
		}
	})
}

// TestHitPathCRLFAfterPOST: net/http skips the CR and LF bytes after a
// POST (RFC 9112 section 2.2); so does the hit path after net/http gave a
// connection back from answering a POST.
func TestHitPathCRLFAfterPOST(t *testing.T) {
	e, _, _, _ := hpServer(t, proxy.HitOptions{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second})
	e.stored("public/hp/parity-crlf", randomBytes(2<<10, 7002))
	for _, gap := range []string{"\r\n", "\n", "\r\n\r\n"} {
		t.Run(fmt.Sprintf("%q", gap), func(t *testing.T) {
			parity(t, e, netHTTPRef(t, 10*time.Second, 10*time.Second), "/media/public/hp/parity-crlf", func(t *testing.T, h *hpConn, addr, path string) {
				h.sendRaw(fmt.Appendf(nil, "POST %[1]s HTTP/1.1\r\nHost: %[2]s\r\nContent-Length: 0\r\n\r\n"+gap+
					"GET %[1]s HTTP/1.1\r\nHost: %[2]s\r\n\r\n", path, addr))
				res, _, err := h.tryRecv(hpRaw("POST"))
				if err != nil || res.StatusCode < 401 || res.StatusCode > 499 {
					t.Fatalf("POST: %v, %v; want a refusal of the POST itself", res, err)
				}
				res, _, err = h.tryRecv(hpRaw("GET"))
				if err != nil || res.StatusCode != 200 {
					t.Fatalf("GET after the POST and %q: %v, %v; want 200", gap, res, err)
				}
			})
		})
	}
}

// TestHitPathHeaderTimeout: a new connection's first header section is
// due ReadHeaderTimeout after the accept, however it arrives: its first
// byte late, or so long that the hit path hands it to net/http midway
// (which must not start the bound over). A later request's section is due
// ReadHeaderTimeout after its first four bytes.
func TestHitPathHeaderTimeout(t *testing.T) {
	// Margins of 600 ms or more around every due time: a sleep under -race
	// beside other packages' tests once woke 300 ms late.
	const d = 2 * time.Second
	e, _, _, _ := hpServer(t, proxy.HitOptions{ReadHeaderTimeout: d, IdleTimeout: 10 * d})
	e.stored("public/hp/parity-rht", randomBytes(2<<10, 7003))
	refAddr := netHTTPRef(t, d, 10*d)
	pad := "X-Pad: " + strings.Repeat("0", 5000) + "\r\n" // over the hit path's 4 KiB buffer

	// Each step writes the request's bytes [from, to) (negative: from
	// the end) at step.at × d after the connection opened, or after the
	// answer to a first request (after).
	type step struct {
		at       float64
		from, to int
	}
	cases := []struct {
		name  string
		pad   string
		after bool
		steps []step
		ok    bool
	}{
		{"first byte late, rest on time", "", false, []step{{0.5, 0, 1}, {0.7, 1, -1}}, true},
		{"first byte late, rest late", "", false, []step{{0.5, 0, 1}, {1.4, 1, -1}}, false},
		{"long section handed off, end on time", pad, false, []step{{0.3, 0, -5}, {0.7, -5, -1}}, true},
		{"long section handed off, end late", pad, false, []step{{0.6, 0, -5}, {1.3, -5, -1}}, false},
		{"later request, idle then on time", "", true, []step{{1.5, 0, 4}, {2.1, 4, -1}}, true},
		{"later request, idle then late", "", true, []step{{1.5, 0, 4}, {2.8, 4, -1}}, false},
		// net/http's idle wait lasts until four bytes have come.
		{"later request, three bytes idle", "", true, []step{{1.5, 0, 3}, {2.8, 3, -1}}, true},
		{"later long section handed off, end late", pad, true, []step{{1.5, 0, 4}, {2.1, 4, -5}, {2.8, -5, -1}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each mostly waits
			parity(t, e, refAddr, "/media/public/hp/parity-rht", func(t *testing.T, h *hpConn, addr, path string) {
				req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n" + tc.pad + "\r\n"
				start := time.Now()
				if tc.after {
					h.sendRaw([]byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"))
					if res, _, err := h.tryRecv(hpRaw("GET")); err != nil || res.StatusCode != 200 {
						t.Fatalf("first request: %v, %v", res, err)
					}
					start = time.Now()
				}
				at := func(i int) int {
					if i < 0 {
						return len(req) + 1 + i
					}
					return i
				}
				for _, s := range tc.steps {
					time.Sleep(time.Until(start.Add(time.Duration(s.at * float64(d)))))
					_, _ = h.c.Write([]byte(req[at(s.from):at(s.to)]))
				}
				res, _, err := h.tryRecv(hpRaw("GET"))
				answered := err == nil && res.StatusCode == 200
				if answered != tc.ok {
					t.Errorf("section whole after %v (ReadHeaderTimeout %v): answered %v (%v, %v), want %v",
						time.Since(start).Round(10*time.Millisecond), d, answered, res, err, tc.ok)
				}
			})
		})
	}
}

// TestHitPathCutHeader: a header section the client ends its side of the
// connection in the middle of gets net/http's 400, on a new connection and
// after a hit.
func TestHitPathCutHeader(t *testing.T) {
	e, _, _, _ := hpServer(t, proxy.HitOptions{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Second})
	e.stored("public/hp/parity-cut", randomBytes(2<<10, 7004))
	refAddr := netHTTPRef(t, 10*time.Second, 10*time.Second)
	for _, after := range []bool{false, true} {
		t.Run(fmt.Sprint("after a hit ", after), func(t *testing.T) {
			parity(t, e, refAddr, "/media/public/hp/parity-cut", func(t *testing.T, h *hpConn, addr, path string) {
				if after {
					h.sendRaw([]byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n"))
					if res, _, err := h.tryRecv(hpRaw("GET")); err != nil || res.StatusCode != 200 {
						t.Fatalf("first request: %v, %v", res, err)
					}
				}
				h.sendRaw([]byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nX-A: b\r\n"))
				if err := h.c.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				res, _, err := h.tryRecv(hpRaw("GET"))
				if err != nil || res.StatusCode != 400 {
					t.Fatalf("section cut short: %v, %v; want 400", res, err)
				}
			})
		})
	}
}
