package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/policy"
)

// TestSmallHitOneSegment: a small cached response, header and body, reaches
// the client as one TCP segment (loopback's MSS is 64 KiB). net/http alone
// writes a 4 KiB body in two: its buffer fills and is flushed before the
// body's tail; and a body sent by sendfile (40 KiB) after its header,
// written on its own. Counted by the client's kernel (TCP_INFO data
// segments in), over two requests on one connection. Under TLS, with no
// sendfile, the header's and the body's records leave in one write too.
func TestSmallHitOneSegment(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) { testSmallHitOneSegment(t, useTLS) })
	}
}

func testSmallHitOneSegment(t *testing.T, useTLS bool) {
	e := newEnv(t, envOptions{tls: useTLS, cache: &cache.Options{MaxBytes: 256 << 20, SliceSize: 1 << 20}, rule: policy.CacheRule{}})
	sizes := []int{4 << 10, 20 << 10, 40 << 10}
	for i, n := range sizes {
		e.stored(fmt.Sprintf("o%d", i), randomBytes(n, uint64(i)))
	}
	tcp, c := e.dial(&net.Dialer{})
	br := bufio.NewReader(c)
	segsIn := func() uint32 {
		raw, err := tcp.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var info *unix.TCPInfo
		var gerr error
		if err := raw.Control(func(fd uintptr) { info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) }); err != nil || gerr != nil {
			t.Fatal(err, gerr)
		}
		return info.Data_segs_in
	}
	// Round 0 is not counted: under TLS 1.3 the server's session tickets
	// may still be arriving after the handshake.
	for round := range 3 {
		for i, n := range sizes {
			r := e.signed("GET", fmt.Sprintf("/media/o%d", i), nil, fullKey, fullSecret, time.Now(), "", nil)
			before := segsIn()
			if err := r.Write(c); err != nil {
				t.Fatal(err)
			}
			res, err := http.ReadResponse(br, r)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 || !bytes.Equal(b, randomBytes(n, uint64(i))) || res.Header.Get("X-Cache") != "HIT" {
				t.Fatalf("o%d: status %d, %d of %d bytes, X-Cache %q, %v", i, res.StatusCode, len(b), n, res.Header.Get("X-Cache"), err)
			}
			if segs := segsIn() - before; round > 0 && segs != 1 {
				t.Errorf("round %d: a %d-byte hit arrived in %d segments, want 1", round, n, segs)
			}
		}
	}
}
