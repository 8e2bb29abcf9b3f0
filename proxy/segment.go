package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
)

// Listener wraps the listener the proxy is served on, so that a small
// cached response leaves in one write: net/http writes the header when its
// 4 KiB buffer fills and the rest of the body separately, two system calls
// and two segments for a 4 KiB object, each waking the client. Without it
// (or without ConnContext) responses are correct, just sent in more writes.
// Under TLS, wrap the TCP listener: the records of one response then go
// out together too.
func Listener(ln net.Listener) net.Listener { return listener{ln} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		return &conn{TCPConn: tc}, nil
	}
	return c, err
}

// ConnContext is meant for http.Server.ConnContext: it lets a handler
// reach the connection Listener made, through TLS if need be.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	switch hc := c.(type) {
	case *conn:
		return context.WithValue(ctx, connKey{}, hc)
	case *replayConn: // from a HitListener
		return context.WithValue(context.WithValue(ctx, connKey{}, hc.conn), replayKey{}, hc)
	}
	return ctx
}

type connKey struct{}

// replayKey is the context key of a connection a HitListener handed to
// net/http, to be given back.
type replayKey struct{}

// conn holds back what is written to it between hold and release and sends
// it in one write. The methods of *net.TCPConn stay reachable, CloseWrite
// among them, which net/http looks for; ReadFrom (sendfile) sends what is
// held first.
//
// Writes come from the handler's goroutine while it holds; the lock is
// for anything else that writes at the same time (tls.Conn's close_notify
// from Server.Close).
type conn struct {
	*net.TCPConn
	mu   sync.Mutex
	held *[]byte // non-nil between hold and release
}

// holdBufs are the buffers of held responses: a header and a body of up to
// smallBody, as a rule.
var holdBufs = sync.Pool{New: func() any { b := make([]byte, 0, smallBody+4<<10); return &b }}

// holdMax bounds what a connection holds: past it, the held bytes go out
// with the write that overflowed, and holding ends, whatever the caller
// meant to hold.
const holdMax = 64 << 10

func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.held == nil {
		c.mu.Unlock()
		return c.TCPConn.Write(p)
	}
	defer c.mu.Unlock()
	if len(*c.held)+len(p) <= holdMax {
		*c.held = append(*c.held, p...)
		return len(p), nil
	}
	// Over the limit: what is held and p leave in one writev.
	b := c.held
	c.held = nil
	held := len(*b)
	bufs := net.Buffers{*b, p}
	n, err := bufs.WriteTo(c.TCPConn)
	*b = (*b)[:0]
	holdBufs.Put(b)
	return max(int(n)-held, 0), err
}

// ReadFrom is net/http's way to sendfile a body. What is held (the header)
// goes out first, flagged as having more to come, so that it leaves in the
// body's first segment; holding ends there.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	c.mu.Lock()
	err := c.flushLocked(true)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return c.TCPConn.ReadFrom(r)
}

// flushLocked writes what is held, if anything, and ends holding; more
// asks the kernel to wait for the next write before sending a segment.
func (c *conn) flushLocked(more bool) error {
	b := c.held
	if b == nil {
		return nil
	}
	c.held = nil
	var err error
	if len(*b) > 0 {
		if more {
			err = sendMore(c.TCPConn, *b)
		} else {
			_, err = c.TCPConn.Write(*b)
		}
	}
	*b = (*b)[:0]
	holdBufs.Put(b)
	return err
}

// hold returns the connection under r, holding its writes from now on, or
// nil where there is none to hold (HTTP/2 writes from its own goroutine,
// and the proxy does not serve it).
func hold(r *http.Request) *conn {
	c, _ := r.Context().Value(connKey{}).(*conn)
	if c == nil || r.ProtoMajor != 1 {
		return nil
	}
	c.mu.Lock()
	if c.held == nil {
		c.held = holdBufs.Get().(*[]byte)
	}
	c.mu.Unlock()
	return c
}

// release flushes the response into c's held bytes, after a successful
// send, and writes them; err is the send's.
func release(c *conn, rq *request, err error) error {
	if c == nil {
		return err
	}
	if err == nil && rq.rc.Flush() != nil {
		err = errClientGone
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Held bytes were acknowledged to net/http: they go out even after a
	// failed send, which has aborted (or will abort) the connection anyway.
	if werr := c.flushLocked(false); werr != nil && err == nil {
		err = errClientGone
	}
	return err
}
