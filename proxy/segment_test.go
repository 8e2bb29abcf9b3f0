package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/policy"
)

// TestCacheHitsOverTLS: under TLS the proxy's connection holds TLS records,
// not plain bytes, and a body has no sendfile path: the held header and
// body records must still arrive whole and in order, below and above what
// a connection holds (64 KiB), and on one reused connection.
func TestCacheHitsOverTLS(t *testing.T) {
	e := newEnv(t, envOptions{tls: true, cache: &cache.Options{MaxBytes: 256 << 20, SliceSize: 1 << 20}, rule: policy.CacheRule{}})
	sizes := []int{0, 4 << 10, 40 << 10, 100 << 10, 3 << 20}
	for i, n := range sizes {
		e.up.PutObject(upstreamBucket, fmt.Sprintf("hs1/t%d", i), randomBytes(n, uint64(i)))
	}
	for round, want := range []string{"MISS", "HIT", "HIT"} {
		for i, n := range sizes {
			key := fmt.Sprintf("t%d", i)
			res, body, err := e.get(key, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 200 || !bytes.Equal(body, randomBytes(n, uint64(i))) {
				t.Fatalf("round %d, %d bytes: status %d, %d bytes, content differs", round, n, res.StatusCode, len(body))
			}
			if got := res.Header.Get("X-Cache"); got != want {
				t.Errorf("round %d, %d bytes: X-Cache %q, want %q", round, n, got, want)
			}
			if round == 0 {
				e.settled(key, n)
			}
		}
	}
}

// TestStalledReaderOfHitsIsCutOff: a client that pipelines requests for
// cached objects and stops reading is cut off after the stall timeout,
// whichever way the body goes out: held and written by release (under TLS
// a body below the hold limit), or sendfile and TLS records past it. The
// responses (10 MB and more) exceed what the socket buffers absorb.
func TestStalledReaderOfHitsIsCutOff(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		for _, n := range []int{40 << 10, 200 << 10} {
			t.Run(fmt.Sprintf("tls=%v/%d", useTLS, n), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, envOptions{tls: useTLS, stall: 200 * time.Millisecond, cache: &cache.Options{MaxBytes: 64 << 20}})
				e.stored("s", randomBytes(n, 1))
				d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
					return rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
				}}
				_, c := e.dial(&d)
				r := e.signed("GET", "/media/s", nil, fullKey, fullSecret, time.Now(), "", nil)
				const pipelined = 250
				go func() {
					for range pipelined {
						if r.Write(c) != nil {
							return
						}
					}
				}()
				time.Sleep(1500 * time.Millisecond) // stalled: reads nothing
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				complete := 0
				for ; complete < pipelined; complete++ {
					res, err := http.ReadResponse(br, r)
					if err != nil {
						break
					}
					m, err := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if err != nil || m != int64(n) {
						break
					}
				}
				if complete == pipelined {
					t.Errorf("all %d responses of %d bytes arrived after a 1.5 s stall: the 200 ms stall timeout did not cut the client off", pipelined, n)
				}
			})
		}
	}
}

// TestContinueAfterAHitOnOneConnection: a hit's write deadline is left in
// force after the handler (it bounds net/http's final flush). An upload on
// the same connection after it passed, with Expect: 100-continue, must
// still get its 100 Continue (written when the body is first read, before
// the upload's own deadline) and its answer: net/http clears a response's
// write deadline once the response is flushed.
func TestContinueAfterAHitOnOneConnection(t *testing.T) {
	const stall = 200 * time.Millisecond
	e := newEnv(t, envOptions{stall: stall, cache: &cache.Options{MaxBytes: 64 << 20}})
	e.stored("s", randomBytes(4<<10, 1))
	_, c := e.dial(&net.Dialer{})
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	get := e.signed("GET", "/media/s", nil, fullKey, fullSecret, time.Now(), "", nil)
	if err := get.Write(c); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, get)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != 200 || res.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("GET: %d, X-Cache %q", res.StatusCode, res.Header.Get("X-Cache"))
	}
	time.Sleep(3 * stall) // the hit's deadline passes; the connection idles on

	body := randomBytes(1000, 2)
	put := e.signed("PUT", "/media/up", body, fullKey, fullSecret, time.Now(), "", func(r *http.Request) {
		r.Header.Set("Expect", "100-continue")
	})
	var head bytes.Buffer
	fmt.Fprintf(&head, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", put.URL.RequestURI(), put.Host, len(body))
	_ = put.Header.Write(&head)
	head.WriteString("\r\n")
	if _, err := c.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	cont, err := http.ReadResponse(br, put)
	if err != nil || cont.StatusCode != http.StatusContinue {
		t.Fatalf("waiting for 100 Continue: %v, %v", cont, err)
	}
	if _, err := c.Write(body); err != nil {
		t.Fatal(err)
	}
	res, err = http.ReadResponse(br, put)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("PUT after 100 Continue: %v, %v", res, err)
	}
	if got, _, _ := e.upstreamObject("hs1/up"); !bytes.Equal(got, body) {
		t.Errorf("upstream holds %d bytes, want the %d sent", len(got), len(body))
	}
}
