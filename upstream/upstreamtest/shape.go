package upstreamtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Shape is how the server answers: a delay before the first byte, a
// bandwidth cap and injected faults. The zero Shape answers at loopback
// speed and never fails.
type Shape struct {
	// FirstByte delays the response headers, once the request body has
	// been read (as a distant provider would: its latency is on the
	// response path).
	FirstByte time.Duration
	// Jitter adds a uniformly random [0, Jitter) to FirstByte.
	Jitter time.Duration
	// BytesPerSec caps each response body's rate; 0 is unlimited. Bodies
	// are paced in slices of about 1/20 s with real timers.
	BytesPerSec int64
	// Fail is called once per request, before gofakes3 sees it, and
	// returns the fault to inject, or the zero Fault. Nil injects none. It
	// may be called concurrently.
	Fail func(r *http.Request) Fault
}

// FaultKind is the kind of an injected fault.
type FaultKind uint8

const (
	// NoFault answers normally.
	NoFault FaultKind = iota
	// FaultStatus answers Fault.Status with an S3 XML error and never
	// reaches gofakes3.
	FaultStatus
	// FaultResetBeforeHeaders resets the TCP connection (RST) instead of
	// answering.
	FaultResetBeforeHeaders
	// FaultResetMidBody sends the headers and Fault.After bytes of the
	// body, then resets the connection.
	FaultResetMidBody
	// FaultShortBody sends the headers, with the full Content-Length, and
	// Fault.After bytes of the body, then closes the connection cleanly
	// (FIN): a truncated response that only its length betrays.
	FaultShortBody
)

func (k FaultKind) String() string {
	switch k {
	case NoFault:
		return "none"
	case FaultStatus:
		return "status"
	case FaultResetBeforeHeaders:
		return "reset before headers"
	case FaultResetMidBody:
		return "reset mid-body"
	case FaultShortBody:
		return "short body"
	}
	return fmt.Sprintf("FaultKind(%d)", uint8(k))
}

// Fault is one injected failure. The zero Fault is none.
type Fault struct {
	Kind FaultKind
	// Status is FaultStatus's HTTP status; 0 means 500.
	Status int
	// Code is FaultStatus's S3 error code; "" derives one from Status:
	// InternalError for 500, else the status text without spaces
	// ("ServiceUnavailable"; set "SlowDown" yourself for throttling).
	Code string
	// After is how many body bytes FaultResetMidBody and FaultShortBody
	// let through. A body no longer than After is answered whole.
	After int64
}

func (f Fault) String() string {
	switch f.Kind {
	case FaultStatus:
		return fmt.Sprintf("status %d %s", f.status(), f.code())
	case FaultResetMidBody, FaultShortBody:
		return fmt.Sprintf("%s after %d bytes", f.Kind, f.After)
	}
	return f.Kind.String()
}

func (f Fault) status() int {
	if f.Status == 0 {
		return http.StatusInternalServerError
	}
	return f.Status
}

func (f Fault) code() string {
	if f.Code != "" {
		return f.Code
	}
	switch s := f.status(); s {
	case http.StatusInternalServerError:
		return "InternalError"
	default:
		return strings.ReplaceAll(http.StatusText(s), " ", "")
	}
}

// Status returns a fault that answers status with an S3 error.
func Status(status int) Fault { return Fault{Kind: FaultStatus, Status: status} }

// ResetBeforeHeaders returns a fault that resets the connection before
// answering.
func ResetBeforeHeaders() Fault { return Fault{Kind: FaultResetBeforeHeaders} }

// ResetAfter returns a fault that resets the connection after n body bytes.
func ResetAfter(n int64) Fault { return Fault{Kind: FaultResetMidBody, After: n} }

// ShortBody returns a fault that closes the connection after n body bytes.
func ShortBody(n int64) Fault { return Fault{Kind: FaultShortBody, After: n} }

// FailFirst returns a Shape.Fail that injects f into the first n requests
// of operation op (see Operation; "" matches every operation), then none.
func FailFirst(n int64, op string, f Fault) func(r *http.Request) Fault {
	var seen atomic.Int64
	return func(r *http.Request) Fault {
		if op != "" && Operation(r) != op {
			return Fault{}
		}
		if seen.Add(1) > n {
			return Fault{}
		}
		return f
	}
}

// errFault is what the backend's writes get once a fault cut the
// connection.
var errFault = errors.New("upstreamtest: injected fault")

// shapedWriter applies a Shape and a Fault to one response and counts its
// body bytes. It is used by one handler goroutine only.
type shapedWriter struct {
	rw    http.ResponseWriter
	ctx   context.Context
	shape Shape
	fault Fault
	sent  *atomic.Int64 // the server's BytesSent

	started bool      // the first-byte delay is over and headers may go
	header  bool      // headers were written
	dead    bool      // the connection was cut or the client left: swallow everything
	body    int64     // body bytes written
	paceAt  time.Time // when the first body byte went out
}

func (w *shapedWriter) Header() http.Header { return w.rw.Header() }

// Unwrap lets http.ResponseController reach the connection.
func (w *shapedWriter) Unwrap() http.ResponseWriter { return w.rw }

func (w *shapedWriter) WriteHeader(status int) {
	// gofakes3 answers an error after a failed body copy; net/http would
	// log that second WriteHeader as superfluous.
	if w.dead || w.header {
		return
	}
	w.start()
	if w.dead {
		return
	}
	w.header = true
	w.rw.WriteHeader(status)
}

func (w *shapedWriter) Write(p []byte) (int, error) {
	if w.dead {
		return 0, errFault
	}
	w.start()
	if w.dead {
		return 0, errFault
	}
	w.header = true
	written := 0
	for len(p) > 0 {
		n := len(p)
		if w.shape.BytesPerSec > 0 {
			n = min(n, int(min(max(w.shape.BytesPerSec/20, 1024), 64<<10)))
		}
		cut := false
		if k := w.fault.Kind; (k == FaultResetMidBody || k == FaultShortBody) && w.body+int64(n) > w.fault.After {
			n = int(w.fault.After - w.body)
			cut = true
		}
		m, err := w.rw.Write(p[:n])
		written += m
		w.body += int64(m)
		w.sent.Add(int64(m))
		if err != nil {
			return written, err
		}
		if cut {
			w.cut(w.fault.Kind == FaultShortBody)
			return written, errFault
		}
		p = p[n:]
		if w.shape.BytesPerSec > 0 {
			if err := w.pace(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// start waits out the first-byte delay, once. If the client leaves
// meanwhile, the response is dead.
func (w *shapedWriter) start() {
	if w.started {
		return
	}
	w.started = true
	d := w.shape.FirstByte
	if w.shape.Jitter > 0 {
		d += rand.N(w.shape.Jitter)
	}
	if sleep(w.ctx, d) != nil {
		w.dead = true
	}
}

// pace flushes what was written and sleeps until the bytes so far fit the
// bandwidth cap.
func (w *shapedWriter) pace() error {
	if err := http.NewResponseController(w.rw).Flush(); err != nil {
		return err
	}
	if w.paceAt.IsZero() {
		w.paceAt = time.Now()
	}
	due := w.paceAt.Add(time.Duration(float64(w.body) / float64(w.shape.BytesPerSec) * float64(time.Second)))
	return sleep(w.ctx, time.Until(due))
}

// cut flushes what was written, if anything, and takes the connection away
// from net/http: closed with a FIN when graceful, else reset with an RST
// (SO_LINGER 0).
func (w *shapedWriter) cut(graceful bool) {
	w.dead = true
	rc := http.NewResponseController(w.rw)
	if w.header {
		// A flush before any header would send an implicit 200.
		_ = rc.Flush()
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): abort, which resets the stream.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && !graceful {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// finish completes a response whose handler wrote nothing (a HEAD), so that
// the first-byte delay applies to it too.
func (w *shapedWriter) finish() {
	if !w.started && !w.dead {
		w.WriteHeader(http.StatusOK)
	}
}

// sleep waits d on a timer, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
