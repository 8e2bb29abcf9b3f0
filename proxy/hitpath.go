package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// HitListener serves cache hits on plain HTTP/1.1 connections itself and
// hands every other connection to the http.Server it is given to.
//
// net/http costs a cached 4 KiB GET more than everything s3edge does for it
// (signature check, cache lookup, pread, headers): a request context and a
// background-read goroutine per request, buffered writers in two layers, a
// sorted header. On the machine of the bench, net/http's own ceiling for a
// 4 KiB answer from memory was 0.64x nginx's rate, and s3edge ran at 0.48x.
// The hit path keeps Go's request parser (http.ReadRequest) and the
// proxy's whole handler, and replaces only the connection loop and the
// ResponseWriter: a hit is parsed, verified, and answered with one write
// (or a header and a sendfile), on the goroutine that read it.
//
// A request the hit path does not serve, because it is not a bodiless
// GET or HEAD (or has anything net/http handles that the hit path does
// not: Expect, Connection: close, HTTP/1.0, a header section over 4 KiB)
// or because answering it needs the upstream, is replayed, byte for byte,
// on the same connection by the http.Server: the connection is returned by
// Accept with the request still unread. The handler declines before it
// writes, counts or fetches anything (Server.serveHit), so the replay is
// the request's only visible run. Once net/http has answered it whole, the
// handler gives the connection back (replayConn.giveBack), so that a
// client's pooled connections do not end up on net/http one miss or upload
// at a time.
//
// Serve it with http.Server.Serve (not ServeTLS: the hit path reads plain
// HTTP). Close stops accepting; Shutdown, after the http.Server's own,
// waits for the connections the hit path still serves.
type HitListener struct {
	ln  net.Listener
	s   *Server
	o   HitOptions
	log *slog.Logger

	handoff chan net.Conn // connections for net/http
	errc    chan error    // accept errors for net/http's Serve loop
	done    chan struct{} // closed by Close
	once    sync.Once
	closing atomic.Bool

	mu    sync.Mutex
	conns map[*hitConn]struct{}
	wg    sync.WaitGroup // the accept loop and every hitConn
}

// HitOptions are the http.Server limits the hit path applies as net/http
// would.
type HitOptions struct {
	// ReadHeaderTimeout bounds the reading of a request's header section
	// (0: none).
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a connection
	// (0: none).
	IdleTimeout time.Duration
}

// HitListener returns a HitListener over ln that serves s's cache hits.
// It starts accepting on ln at once.
func (s *Server) HitListener(ln net.Listener, o HitOptions) *HitListener {
	l := &HitListener{
		ln: ln, s: s, o: o, log: s.log,
		handoff: make(chan net.Conn),
		errc:    make(chan error),
		done:    make(chan struct{}),
		conns:   make(map[*hitConn]struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// acceptLoop accepts connections and starts serving them. Accept errors
// go to net/http's Serve loop, one per Accept call, so that its backoff
// paces retries after a temporary error (too many open files).
func (l *HitListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case l.errc <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		tc, ok := c.(*net.TCPConn)
		if !ok { // a wrapped listener: net/http serves it as it is
			l.giveUp(c)
			continue
		}
		l.adopt(&replayConn{conn: &conn{TCPConn: tc}, l: l}, true)
	}
}

// adopt serves rc on the hit path: a new connection (fresh), whose first
// request is due within ReadHeaderTimeout, or one given back by net/http,
// idle until its next request.
func (l *HitListener) adopt(rc *replayConn, fresh bool) {
	hc := &hitConn{l: l, src: rc, c: rc.conn}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing.Load() {
		rc.Close()
		return
	}
	l.conns[hc] = struct{}{}
	l.wg.Add(1)
	go hc.serve(fresh)
}

// Accept returns the next connection net/http is to serve.
func (l *HitListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// giveUp hands c to net/http, or closes it if the listener is closed.
func (l *HitListener) giveUp(c net.Conn) {
	select {
	case l.handoff <- c:
	case <-l.done:
		c.Close()
	}
}

// Addr is the address of the listener.
func (l *HitListener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting, and ends the hit path's connections as net/http
// ends its own on Shutdown: an idle one at once, a busy one after its
// response.
func (l *HitListener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		l.closing.Store(true)
		for hc := range l.conns {
			if hc.idle.Load() {
				// Wakes the wait for the next request.
				_ = hc.c.SetReadDeadline(aLongTimeAgo)
			}
		}
		l.mu.Unlock()
		close(l.done)
		err = l.ln.Close()
	})
	return err
}

var aLongTimeAgo = time.Unix(1, 0)

// Shutdown closes the listener and waits for the hit path's connections
// to end; when ctx ends first, it closes them and returns ctx's error.
func (l *HitListener) Shutdown(ctx context.Context) error {
	l.Close()
	ended := make(chan struct{})
	go func() { l.wg.Wait(); close(ended) }()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	for hc := range l.conns {
		hc.c.Close()
	}
	l.mu.Unlock()
	<-ended
	return ctx.Err()
}

// hitReaders are the connections' read buffers. A request whose header
// section does not fit goes to net/http.
var hitReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

// hitConn is one connection on the hit path.
type hitConn struct {
	l    *HitListener
	src  *replayConn // reads: what net/http left unread, then the connection
	c    *conn       // writes and deadlines
	idle atomic.Bool // waiting for a request
	// due: when the current request's header section must be whole, if
	// known (zero: not yet, or no ReadHeaderTimeout).
	due time.Time
	// deadline: a read deadline may be in force, from an idle wait (even
	// an earlier one: a pipelined request needs none) or a header read.
	deadline bool
	remote   string
	raw      []byte // the current request's header section, for a replay
}

func (hc *hitConn) serve(fresh bool) {
	l := hc.l
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.conns, hc)
		l.mu.Unlock()
	}()
	br := hitReaders.Get().(*bufio.Reader)
	br.Reset(hc.src)
	defer func() { br.Reset(nil); hitReaders.Put(br) }()
	hc.remote = hc.c.RemoteAddr().String()
	w := &hitWriter{c: hc.c, h: make(http.Header, 16)}
	if d := l.o.ReadHeaderTimeout; fresh && d > 0 {
		// As net/http times a new connection: its first request's header
		// section is due ReadHeaderTimeout after the accept, the wait for
		// its first byte included.
		hc.due = time.Now().Add(d)
		_ = hc.c.SetReadDeadline(hc.due)
		hc.deadline = true
	}
	for idle := !fresh; ; idle = true {
		req, err := hc.next(br, idle)
		switch {
		case err != nil:
			hc.c.Close()
			return
		case req == nil || !servable(req):
			hc.handOff(br)
			return
		}
		req.RemoteAddr = hc.remote
		w.reset(req)
		served, keep := hc.serveOne(w, req)
		if !served {
			hc.handOff(br)
			return
		}
		l.s.metrics.hitPath.Inc()
		if !keep || l.closing.Load() {
			hc.c.Close()
			return
		}
	}
}

// next reads the next request's header section, timed as net/http's
// server times it: the first request of a new connection is due by the
// time serve set, the wait for its first byte included; a later one may
// take IdleTimeout for its first four bytes and ReadHeaderTimeout from
// then. It returns a nil request, and no error, for a request the hit path
// leaves to net/http, unread.
func (hc *hitConn) next(br *bufio.Reader, idle bool) (*http.Request, error) {
	l := hc.l
	need := 1
	if idle {
		need = 4
		hc.due = time.Time{} // set once the section is seen to be still arriving
	}
	if br.Buffered() < need {
		if idle {
			if d := l.o.IdleTimeout; d > 0 {
				_ = hc.c.SetReadDeadline(time.Now().Add(d))
				hc.deadline = true
			} else if hc.deadline {
				_ = hc.c.SetReadDeadline(time.Time{})
				hc.deadline = false
			}
		}
		hc.idle.Store(true)
		if l.closing.Load() { // Close may have missed this connection
			return nil, net.ErrClosed
		}
		_, err := br.Peek(need)
		hc.idle.Store(false)
		if err != nil {
			return nil, err
		}
	}
	if hc.src.afterPOST {
		// net/http skips the CR and LF bytes some clients send after a
		// POST's body (RFC 9112 section 2.2), here the POST it answered
		// before giving the connection back; at most the four bytes the
		// idle wait brought, as net/http.
		hc.src.afterPOST = false
		peek, _ := br.Peek(4)
		_, _ = br.Discard(len(peek) - len(bytes.TrimLeft(peek, "\r\n")))
	}
	hc.raw = hc.raw[:0]
	buf, _ := br.Peek(br.Buffered())
	raw := buf[:headerEnd(buf)]
	if len(raw) == 0 {
		// Still arriving (most requests come whole).
		hc.headerDeadline()
		var err error
		if raw, err = peekHeader(br); raw == nil {
			if err == io.EOF && br.Buffered() > 0 {
				// net/http answers a section cut short 400.
				err = nil
			}
			return nil, err
		}
	}
	// Kept for a replay: the parse consumes the buffered bytes. With the
	// whole section buffered, it reads nothing more.
	hc.raw = append(hc.raw, raw...)
	before := br.Buffered()
	req, err := http.ReadRequest(br)
	if consumed := before - br.Buffered(); consumed != len(raw) {
		// A parse that failed part way: skip the rest of the section,
		// which the replay starts with.
		if _, derr := br.Discard(len(raw) - consumed); derr != nil || err == nil {
			return nil, errors.New("proxy: hit path: request parse out of step")
		}
	}
	if err != nil {
		return nil, nil // net/http answers it
	}
	return req, nil
}

// headerDeadline puts the current request's header due time in force,
// from now if it has none yet.
func (hc *hitConn) headerDeadline() {
	d := hc.l.o.ReadHeaderTimeout
	switch {
	case d <= 0:
		if hc.deadline {
			_ = hc.c.SetReadDeadline(time.Time{})
			hc.deadline = false
		}
	case hc.due.IsZero():
		hc.due = time.Now().Add(d)
		_ = hc.c.SetReadDeadline(hc.due)
		hc.deadline = true
	}
}

// peekHeader returns the header section at the start of br's buffer, up to
// and including the empty line that ends it, reading more as needed. It
// returns nil when the section does not fit in the buffer, and a read
// error, if any, with it.
func peekHeader(br *bufio.Reader) ([]byte, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		if n := headerEnd(buf); n > 0 {
			return buf[:n], nil
		}
		if len(buf) == br.Size() {
			return nil, nil
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return nil, err
		}
	}
}

// headerEnd returns the length of the header section at the start of b,
// empty line included, or 0 if b does not hold all of it. Lines end in
// LF or CRLF, as net/http reads them.
func headerEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		if line := b[i : i+j]; i > 0 && (len(line) == 0 || len(line) == 1 && line[0] == '\r') {
			return i + j + 1
		}
		i += j + 1
	}
}

// servable reports whether the hit path may answer req, parsed by
// http.ReadRequest: a bodiless HTTP/1.1 GET or HEAD for a path, with a
// valid Host and valid headers, that keeps the connection open. The
// checks after parsing are those of net/http's server (conn.readRequest);
// whatever fails them, net/http answers.
func servable(req *http.Request) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead ||
		req.ProtoMajor != 1 || req.ProtoMinor != 1 ||
		req.ContentLength != 0 || len(req.TransferEncoding) > 0 || req.Close ||
		len(req.RequestURI) == 0 || req.RequestURI[0] != '/' {
		return false
	}
	// http.ReadRequest moved the Host header to req.Host (the first
	// one, as net/http's server takes it).
	if req.Host == "" || !httpguts.ValidHostHeader(req.Host) {
		return false
	}
	for k, vs := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return false
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return false
			}
		}
		switch k {
		case "Expect", "Upgrade", "Te", "Trailer":
			return false
		case "Connection": // "close" made req.Close
			for _, v := range vs {
				if !strings.EqualFold(v, "keep-alive") {
					return false
				}
			}
		}
	}
	return true
}

// serveOne runs the handler for req. It reports whether the request was
// served (false: declined, nothing written) and whether the connection
// may carry the next one.
func (hc *hitConn) serveOne(w *hitWriter, req *http.Request) (served, keep bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				buf := make([]byte, 64<<10)
				buf = buf[:runtime.Stack(buf, false)]
				hc.l.log.Error("panic serving a hit", "remote", hc.remote, "panic", fmt.Sprint(v), "stack", string(buf))
			}
			// What was held is dropped with the connection: the client
			// never takes a part of a response for all of it.
			served, keep = true, false
		}
	}()
	if !hc.l.s.serveHit(w, req) {
		return false, false
	}
	return true, w.finish()
}

// handOff gives the connection to net/http with the current request,
// unread, and whatever the client sent after it.
func (hc *hitConn) handOff(br *bufio.Reader) {
	rest, _ := br.Peek(br.Buffered())
	pending := make([]byte, 0, len(hc.raw)+len(rest)+len(hc.src.pending))
	pending = append(append(append(pending, hc.raw...), rest...), hc.src.pending...)
	// net/http sets its read deadlines, but no write deadline without a
	// WriteTimeout: an old one would cut its first answer.
	_ = hc.c.SetDeadline(time.Time{})
	hc.l.s.metrics.handoffs.Inc()
	hc.l.giveUp(&replayConn{conn: hc.c, pending: pending, l: hc.l, headerDue: hc.due})
}

// replayConn is a connection that moves between the hit path and
// net/http: reads return first the bytes one side read and left unserved,
// then the connection's.
type replayConn struct {
	*conn
	pending []byte
	l       *HitListener // the listener to give the connection back to
	// headerDue: when the header section of the request handed to
	// net/http is due, if it was still arriving (else zero).
	headerDue time.Time
	// afterPOST: net/http answered a POST last, before giving it back.
	afterPOST bool
}

// SetReadDeadline keeps the due time of a header section the hit path began
// to read: net/http's first deadline on a connection handed to it is its
// own ReadHeaderTimeout for that section, which would start the bound over.
func (rc *replayConn) SetReadDeadline(t time.Time) error {
	if due := rc.headerDue; !due.IsZero() {
		rc.headerDue = time.Time{}
		if t.IsZero() || due.Before(t) {
			t = due
		}
	}
	return rc.conn.SetReadDeadline(t)
}

func (rc *replayConn) Read(p []byte) (int, error) {
	if len(rc.pending) > 0 {
		n := copy(p, rc.pending)
		rc.pending = rc.pending[n:]
		return n, nil
	}
	return rc.conn.Read(p)
}

// giveBack returns to the hit path a connection it handed to net/http, once
// net/http's request on it is answered whole, so that the next request on
// it is served there again: without it, one miss or upload would leave a
// client's pooled connection on net/http for good. Whatever net/http may
// still have to do on the connection keeps it there: a request body not
// read to its end, a response without a declared length (net/http would
// end it), a Connection: close either way, HTTP/1.0.
//
// The handler calls it last: it hijacks the connection, after which net/http
// forgets it.
func (rc *replayConn) giveBack(w http.ResponseWriter, r *http.Request, rq *request, body *bodyEnd) {
	if r.Close || r.ProtoMajor != 1 || r.ProtoMinor != 1 || !rq.wroteHeader || body != nil && !body.eof {
		return
	}
	h := w.Header()
	if _, ok := h["Connection"]; ok {
		return
	}
	if r.Method != http.MethodHead && bodyAllowedForStatus(rq.status) {
		n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
		if err != nil || n != rq.bytesOut {
			return
		}
	}
	if rq.rc.Flush() != nil {
		return
	}
	_, buf, err := rq.rc.Hijack()
	if err != nil {
		return
	}
	unread, _ := buf.Reader.Peek(buf.Reader.Buffered())
	pending := append(append([]byte(nil), unread...), rc.pending...)
	// Hijack stopped net/http's background read with a deadline in the
	// past.
	_ = rc.conn.SetDeadline(time.Time{})
	rc.l.adopt(&replayConn{conn: rc.conn, pending: pending, l: rc.l, afterPOST: r.Method == http.MethodPost}, false)
}

func bodyAllowedForStatus(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// bodyEnd records whether a request body was read to its end.
type bodyEnd struct {
	io.ReadCloser
	eof bool
}

func (b *bodyEnd) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.eof = b.eof || err == io.EOF
	return n, err
}

// hitWriter is the hit path's http.ResponseWriter. It keeps the response
// until the handler returns, its buffer fills or the body goes out through
// sendfile, so that a hit leaves in one write; Flush therefore sends
// nothing by itself (the hit path never waits on anything after its
// header). Like net/http's, it computes a Content-Length for a body the
// handler left undeclared when the whole body is buffered, and it ends
// the connection after a body shorter than declared.
type hitWriter struct {
	c    *conn
	h    http.Header
	head bool // HEAD: the body is discarded

	status int   // 0 until WriteHeader
	sent   bool  // the header went out
	clen   int64 // declared Content-Length, -1 for none
	n      int64 // body bytes accepted
	close  bool  // end the connection after this response
	err    error // a failed write: the connection is lost

	hdr     []byte
	body    []byte  // held body bytes, in bodyBuf
	bodyBuf *[]byte // from holdBufs while a body is held
}

// hold keeps p for the next write, in a buffer of holdBufs (as conn
// holds net/http's writes, and up to the same holdMax) taken only while a
// response holds a body: an idle connection keeps none.
func (w *hitWriter) hold(p []byte) {
	if w.bodyBuf == nil {
		w.bodyBuf = holdBufs.Get().(*[]byte)
		w.body = (*w.bodyBuf)[:0]
	}
	w.body = append(w.body, p...)
}

// dropBody returns the held body's buffer.
func (w *hitWriter) dropBody() {
	if w.bodyBuf != nil {
		*w.bodyBuf = w.body[:0]
		holdBufs.Put(w.bodyBuf)
		w.bodyBuf, w.body = nil, nil
	}
}

func (w *hitWriter) reset(r *http.Request) {
	clear(w.h)
	w.head = r.Method == http.MethodHead
	w.status, w.sent, w.clen, w.n, w.close, w.err = 0, false, -1, 0, false, nil
	w.dropBody()
	if cap(w.hdr) > 16<<10 { // grown by a held body sent with MSG_MORE
		w.hdr = nil
	}
}

func (w *hitWriter) Header() http.Header { return w.h }

func (w *hitWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if code < 200 || code > 999 {
		// The hit path sends no informational responses; net/http
		// panics on codes outside 100-999.
		panic(fmt.Sprintf("proxy: hit path: status %d", code))
	}
	w.status = code
	w.close = httpguts.HeaderValuesContainsToken(w.h["Connection"], "close")
	if v, ok := w.h["Content-Length"]; ok {
		n, err := strconv.ParseInt(v[0], 10, 64)
		if len(v) != 1 || err != nil || n < 0 {
			delete(w.h, "Content-Length") // as net/http does
		} else {
			w.clen = n
		}
	}
}

// bodyAllowed reports whether the response may carry body bytes.
func (w *hitWriter) bodyAllowed() bool {
	return !w.head && bodyAllowedForStatus(w.status)
}

func (w *hitWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.err != nil:
		return 0, w.err
	case !bodyAllowedForStatus(w.status):
		return 0, http.ErrBodyNotAllowed
	case w.head:
		return len(p), nil
	case w.clen >= 0 && w.n+int64(len(p)) > w.clen:
		return 0, http.ErrContentLength
	}
	w.n += int64(len(p))
	// The body's last bytes (a small hit's only write) leave at once with
	// the header; so does a write that would overflow what is held.
	if (w.clen < 0 || w.n < w.clen) && len(w.hdr)+len(w.body)+len(p) <= holdMax {
		w.hold(p)
		return len(p), nil
	}
	if err := w.emit(p, false, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrom sends a file body through sendfile (net/http's path for it),
// the held header flagged as having more to come so that it leaves in the
// body's first segment.
func (w *hitWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.head || !w.bodyAllowed() || w.err != nil {
		return io.Copy(writerOnly{w}, src)
	}
	if w.clen >= 0 {
		// Never past the declared length; one LimitedReader over the
		// file keeps sendfile.
		left := w.clen - w.n
		if lr, ok := src.(*io.LimitedReader); ok {
			lr.N = min(lr.N, left)
		} else {
			src = &io.LimitedReader{R: src, N: left}
		}
	}
	if err := w.emit(nil, true, false); err != nil {
		return 0, err
	}
	n, err := w.c.TCPConn.ReadFrom(src)
	w.n += n
	if err != nil {
		w.err = err
	}
	return n, err
}

type writerOnly struct{ io.Writer }

// FlushError sends nothing: see hitWriter.
func (w *hitWriter) FlushError() error { return w.err }

// SetWriteDeadline is http.ResponseController's.
func (w *hitWriter) SetWriteDeadline(t time.Time) error { return w.c.SetWriteDeadline(t) }

// SetReadDeadline is http.ResponseController's.
func (w *hitWriter) SetReadDeadline(t time.Time) error { return w.c.SetReadDeadline(t) }

// emit writes the header if it has not gone out, what is held, and p, in
// one writev; with more, as one send flagged MSG_MORE: a sendfile
// follows. done: the handler has returned.
func (w *hitWriter) emit(p []byte, more, done bool) error {
	if w.err != nil {
		return w.err
	}
	var iov [3][]byte
	bufs := iov[:0]
	if !w.sent {
		w.hdr = w.appendHeader(w.hdr[:0], done)
		w.sent = true
		bufs = append(bufs, w.hdr)
	}
	if len(w.body) > 0 {
		bufs = append(bufs, w.body)
	}
	if len(p) > 0 {
		bufs = append(bufs, p)
	}
	var err error
	switch {
	case len(bufs) == 0:
	case more && len(bufs) == 1:
		err = sendMore(w.c.TCPConn, bufs[0])
	case more: // the header and a held body: p is nil
		w.hdr = append(w.hdr, w.body...)
		err = sendMore(w.c.TCPConn, w.hdr)
	case len(bufs) == 1:
		_, err = w.c.TCPConn.Write(bufs[0])
	default:
		nb := net.Buffers(bufs)
		_, err = nb.WriteTo(w.c.TCPConn)
	}
	w.body = w.body[:0]
	if err != nil {
		w.err = err
	}
	return err
}

// finish sends what is left of the response once the handler returned,
// and reports whether the connection may carry another request.
func (w *hitWriter) finish() bool {
	if w.status == 0 {
		// Nothing written: the handler gave up on a client that left.
		return false
	}
	if w.emit(nil, false, true) != nil {
		return false
	}
	w.dropBody()
	if w.bodyAllowed() && w.clen >= 0 && w.n < w.clen {
		return false // short body: only closing tells the client
	}
	return !w.close
}

// appendHeader appends the status line and header section to b. done:
// the handler has returned, so a body it left undeclared is all held.
// Header names and values are written as net/http writes them: invalid
// names dropped, line breaks in values turned to spaces.
func (w *hitWriter) appendHeader(b []byte, done bool) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	if text := http.StatusText(w.status); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...) // as net/http
		b = strconv.AppendInt(b, int64(w.status), 10)
	}
	b = append(b, "\r\n"...)
	for k, vs := range w.h {
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendHeaderValue(b, v)
			b = append(b, "\r\n"...)
		}
	}
	if _, ok := w.h["Date"]; !ok {
		b = append(b, "Date: "...)
		b = appendDate(b)
		b = append(b, "\r\n"...)
	}
	if w.clen < 0 && w.bodyAllowed() {
		if done {
			w.clen = w.n
			b = append(b, "Content-Length: "...)
			b = strconv.AppendInt(b, w.n, 10)
			b = append(b, "\r\n"...)
		} else {
			// No length and more to come: the body ends with the
			// connection.
			w.close = true
			b = append(b, "Connection: close\r\n"...)
		}
	}
	return append(b, "\r\n"...)
}

// appendHeaderValue appends v as net/http writes a header value: line
// breaks turned to spaces (headerNewlineToSpace), then leading and
// trailing ASCII space trimmed (textproto.TrimString).
func appendHeaderValue(b []byte, v string) []byte {
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
	for len(v) > 0 && space(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && space(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\r', '\n':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return b
}

// date is the Date header value of the current second.
var date atomic.Pointer[dateValue]

type dateValue struct {
	unix int64
	text []byte
}

func appendDate(b []byte) []byte {
	now := time.Now()
	d := date.Load()
	if d == nil || d.unix != now.Unix() {
		d = &dateValue{unix: now.Unix(), text: now.UTC().AppendFormat(nil, http.TimeFormat)}
		date.Store(d)
	}
	return append(b, d.text...)
}
