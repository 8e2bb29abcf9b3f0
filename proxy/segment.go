package proxy

import (
	"context"
	"net"
	"net/http"
	"syscall"
)

// ConnContext is meant for http.Server.ConnContext. It lets the proxy reach
// the TCP connection under a request, to send a cached response's header
// and body in one TCP segment (see cork). Without it, responses are
// correct, just sent in more segments.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return ctx // TLS: records are framed anyway
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, corkerKey{}, newCorker(raw))
}

type corkerKey struct{}

// corker sets TCP_CORK on one connection. Its Control callbacks are bound
// once per connection: a closure made per call escapes through the
// RawConn interface, two allocations a call, four a hit. net/http serves
// one request of a connection at a time, so err needs no lock.
type corker struct {
	raw     syscall.RawConn
	on, off func(fd uintptr)
	err     error
}

func newCorker(raw syscall.RawConn) *corker {
	c := &corker{raw: raw}
	c.on = func(fd uintptr) { c.err = setCork(fd, true) }
	c.off = func(fd uintptr) { c.err = setCork(fd, false) }
	return c
}

// set reports whether the cork is now on (or off).
func (c *corker) set(on bool) bool {
	f := c.off
	if on {
		f = c.on
	}
	if err := c.raw.Control(f); err != nil {
		return false
	}
	return c.err == nil
}

// corkMax is the largest body corked: header and body then fit one segment
// on loopback (MSS 64 KiB), where Synapse and s3edge usually meet. Above
// it the segments are full anyway, and the cork cost 8% of the hit rate at
// 64 KiB and a third with sendfile at 256 KiB (bench: wrk workload,
// --hot-sizes).
const corkMax = 60 << 10

// cork holds back the response's segments until uncork, so that the header
// and the first body bytes of a cached object leave together. net/http
// writes the header when its 4 KiB buffer fills and the rest of the body
// separately: two segments for a 4 KiB object, each waking the client. It
// returns nil where corking is not available, and for bodies above corkMax.
func cork(r *http.Request, n int64) *corker {
	if n > corkMax {
		return nil
	}
	c, _ := r.Context().Value(corkerKey{}).(*corker)
	if c == nil || !c.set(true) {
		return nil
	}
	return c
}

// uncork flushes the response after a successful send and releases what
// cork held; err is the send's.
func uncork(c *corker, rq *request, err error) error {
	if c == nil {
		return err
	}
	if err == nil && rq.rc.Flush() != nil {
		err = errClientGone
	}
	c.set(false)
	return err
}
