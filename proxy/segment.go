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
	return context.WithValue(ctx, rawConnKey{}, raw)
}

type rawConnKey struct{}

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
func cork(r *http.Request, n int64) syscall.RawConn {
	if n > corkMax {
		return nil
	}
	raw, _ := r.Context().Value(rawConnKey{}).(syscall.RawConn)
	if raw == nil || !setCork(raw, true) {
		return nil
	}
	return raw
}

// uncork flushes the response after a successful send and releases what
// cork held; err is the send's.
func uncork(raw syscall.RawConn, rq *request, err error) error {
	if raw == nil {
		return err
	}
	if err == nil && rq.rc.Flush() != nil {
		err = errClientGone
	}
	setCork(raw, false)
	return err
}
