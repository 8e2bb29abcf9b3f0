package proxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

// hpRequestSeeds are requests as clients send them, and the odd ones.
var hpRequestSeeds = []string{
	sdkSignedGET,

	// Presigned.
	"GET /media/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=abcd HTTP/1.1\r\nHost: s3.local\r\n\r\n",
	"HEAD /media/k HTTP/1.1\r\nHost: s3.local\r\nX-Amz-Date: 20250101T000000Z\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nRange: bytes=100-199\r\nIf-Match: \"abc\"\r\n\r\n",
	"GET /media/k HTTP/1.1\nHost: s3.local\nRange: bytes=-5\n\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\nX-A: b\r\n\n",
	"\r\nGET /media/k HTTP/1.1\r\nHost: s3.local\r\n\r\n",
	"\r\n\r\nGET / HTTP/1.1\r\n\r\n",
	"GET /media/a HTTP/1.1\r\nHost: s3.local\r\n\r\nGET /media/b HTTP/1.1\r\nHost: s3.local\r\n\r\n",
	"HEAD /media/a HTTP/1.1\r\nHost: s3.local\r\n\r\nGET /media/b HTTP/1.1\r\nHost: s3.local\r\nConnection: close\r\n\r\n",
	"GET /media/a HTTP/1.1\r\nHost: s3.local\r\n\r\nPUT /media/b HTTP/1.1\r\nHost: s3.local\r\nContent-Length: 3\r\n\r\nabc",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nX-Folded: one\r\n two\r\n\tthree\r\n\r\n",
	"GET /media/k HTTP/1.1\r\n Host: s3.local\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nContent-Length: 5\r\n\r\nhello",
	"GET http://s3.local/media/k HTTP/1.1\r\nHost: s3.local\r\n\r\n",
	"GET http://other/media/k HTTP/1.1\r\n\r\n",
	"GET /media/k HTTP/1.1\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost:\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nConnection: close\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nConnection: keep-alive\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nX-Big: " + strings.Repeat("b", 5<<10) + "\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nX-Fill: " + strings.Repeat("f", 4096-len("GET /media/k HTTP/1.1\r\nHost: s3.local\r\nX-Fill: ")-4) + "\r\n\r\n",
	"GET /media/k\x00 HTTP/1.1\r\nHost: s3.local\r\nX-Nul: a\x00b\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.\x00local\r\n\r\n",
	"GET /media/k HTTP/1.0\r\nHost: s3.local\r\nConnection: keep-alive\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nExpect: 100-continue\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost : s3.local\r\n\r\n",
	"GET  /media/k HTTP/1.1\r\nHost: s3.local\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nPragma: no-cache\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\n\r\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: s3.local\r\n\r\n",
	"GET /media/k HTTP/1.1\r\nHost: s3.local\r\nX-A: b\r\n",
	"",
}

// FuzzHitPathRequest: what the hit path's parse takes from the connection
// is exactly the header section it found (the replay of a request it
// declines starts from there), and what it serves is a request that
// net/http's server would have taken and read the same way.
func FuzzHitPathRequest(f *testing.F) {
	for _, s := range hpRequestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
		// Requests one after the other, as the hit path reads them.
		for range 8 {
			sec, err := peekHeader(br)
			if sec == nil {
				if err == nil && br.Buffered() != br.Size() {
					t.Fatalf("peekHeader = nil, nil with %d bytes buffered of %d", br.Buffered(), br.Size())
				}
				return
			}
			if err != nil {
				t.Fatalf("peekHeader returned a section and an error: %v", err)
			}
			section := bytes.Clone(sec)
			if n := headerEnd(section); n != len(section) || section[len(section)-1] != '\n' {
				t.Fatalf("section %q: headerEnd = %d, want %d, ending in LF", section, n, len(section))
			}
			if rest, _ := br.Peek(br.Buffered()); headerEnd(rest) != len(section) {
				t.Fatalf("headerEnd of the buffer = %d, section %d", headerEnd(rest), len(section))
			}
			before := br.Buffered()
			req, err := hpReadRequest(t, br)
			consumed := before - br.Buffered()
			if consumed > len(section) {
				// The hit path's Discard(len(raw)-consumed) then fails and
				// the connection is closed instead of replayed.
				t.Fatalf("ReadRequest (err %v) read %d bytes past the %d-byte section %q", err, consumed-len(section), len(section), section)
			}
			if err != nil {
				return // declined: net/http answers
			}
			if consumed != len(section) {
				t.Fatalf("ReadRequest consumed %d bytes of the %d-byte section %q", consumed, len(section), section)
			}
			if !servable(req) {
				return
			}
			switch {
			case req.Method != http.MethodGet && req.Method != http.MethodHead,
				req.ProtoMajor != 1 || req.ProtoMinor != 1,
				req.ContentLength != 0, len(req.TransferEncoding) > 0, req.Close,
				req.Host == "", !strings.HasPrefix(req.RequestURI, "/"),
				req.Body != http.NoBody:
				t.Fatalf("servable(%q) = true: %s %q %s, length %d, TE %q, close %v, host %q, body %T",
					section, req.Method, req.RequestURI, req.Proto, req.ContentLength, req.TransferEncoding, req.Close, req.Host, req.Body)
			}
			hpCompareNetHTTP(t, section, req)
		}
	})
}

// hpReadRequest is http.ReadRequest; a panic fails the test with its input.
func hpReadRequest(t *testing.T, br *bufio.Reader) (req *http.Request, err error) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("http.ReadRequest panicked: %v", v)
		}
	}()
	return http.ReadRequest(br)
}

// hpSeen is a request as net/http's server handed it to a handler.
type hpSeen struct {
	Method, RequestURI, Proto, Host string
	Header                          http.Header
	ContentLength                   int64
	TransferEncoding                []string
	Close                           bool
}

func hpSeenOf(r *http.Request) hpSeen {
	return hpSeen{r.Method, r.RequestURI, r.Proto, r.Host, r.Header, r.ContentLength, r.TransferEncoding, r.Close}
}

// hpNetHTTP is a plain http.Server, one per process, fed connections over
// in-memory pipes.
var hpNetHTTP struct {
	once   sync.Once
	ln     *hpPipeListener
	seen   chan hpSeen
	closed chan net.Conn
}

type hpPipeListener struct{ conns chan net.Conn }

func (l *hpPipeListener) Accept() (net.Conn, error) { return <-l.conns, nil }
func (l *hpPipeListener) Close() error              { return nil }
func (l *hpPipeListener) Addr() net.Addr            { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// hpCompareNetHTTP sends section, a request the hit path serves, to
// net/http's server: it must reach the handler (not a 4xx) and read the
// same way.
func hpCompareNetHTTP(t *testing.T, section []byte, req *http.Request) {
	t.Helper()
	s := &hpNetHTTP
	s.once.Do(func() {
		s.ln = &hpPipeListener{conns: make(chan net.Conn)}
		s.seen = make(chan hpSeen, 1)
		s.closed = make(chan net.Conn, 1)
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case s.seen <- hpSeenOf(r):
				default: // an earlier request's, not collected: the test failed
				}
				w.Header().Set("Content-Length", "2")
				io.WriteString(w, "ok")
			}),
			ErrorLog:          log.New(io.Discard, "", 0),
			ReadHeaderTimeout: 10 * time.Second,
			ConnState: func(c net.Conn, st http.ConnState) {
				if st == http.StateClosed || st == http.StateHijacked {
					s.closed <- c
				}
			},
		}
		go srv.Serve(s.ln)
	})
	cli, sc := net.Pipe()
	// Each input's exchange ends before the next one's starts: the
	// server's work is not counted as the next input's coverage.
	defer func() {
		cli.Close()
		select {
		case <-s.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("net/http's server did not close the connection")
		}
	}()
	_ = cli.SetDeadline(time.Now().Add(10 * time.Second))
	select {
	case s.ln.conns <- sc:
	case <-time.After(10 * time.Second):
		sc.Close()
		t.Fatal("net/http's server accepts no connection")
	}
	go cli.Write(section) // a pipe write waits for the reader; Close ends it
	resp, err := http.ReadResponse(bufio.NewReader(cli), &http.Request{Method: req.Method})
	if err != nil {
		t.Fatalf("net/http's answer to %q, which the hit path serves: %v", section, err)
	}
	resp.Body.Close()
	var seen hpSeen
	select {
	case seen = <-s.seen:
	default:
		t.Fatalf("net/http answered %q, which the hit path serves, with %s and no handler", section, resp.Status)
	}
	if want := hpSeenOf(req); !reflect.DeepEqual(seen, want) {
		t.Fatalf("%q read differently:\nnet/http  %+v\nhit path  %+v", section, seen, want)
	}
}

// hpFuzzConn is the loopback connection FuzzHitWriterHeader writes
// responses on, one per process, and the end marker written after each.
var hpFuzzConn struct {
	once sync.Once
	err  error
	srv  *conn
	cli  *net.TCPConn
	end  []byte
}

func hpFuzzPair(t *testing.T) (*conn, *net.TCPConn, []byte) {
	p := &hpFuzzConn
	p.once.Do(func() {
		p.end = make([]byte, 32)
		rand.Read(p.end)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.err = err
			return
		}
		defer ln.Close()
		cc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			p.err = err
			return
		}
		sc, err := ln.Accept()
		if err != nil {
			p.err = err
			return
		}
		p.srv, p.cli = &conn{TCPConn: sc.(*net.TCPConn)}, cc.(*net.TCPConn)
		_ = p.srv.SetWriteBuffer(1 << 20)
		_ = p.cli.SetReadBuffer(1 << 20)
	})
	if p.err != nil {
		t.Fatal(p.err)
	}
	return p.srv, p.cli, p.end
}

// hpCapture runs serve, which writes one response on the server end, and
// returns the bytes it put on the wire. The client reads only once the
// response and the end marker are written (they fit the socket buffers):
// one read takes them, the same way for every input, which keeps the
// fuzzer's coverage of the net package steady.
func hpCapture(t *testing.T, serve func(c *conn)) []byte {
	t.Helper()
	sc, cc, end := hpFuzzPair(t)
	_ = sc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	serve(sc)
	if _, err := sc.TCPConn.Write(end); err != nil {
		t.Fatal(err)
	}
	_ = cc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b []byte
	buf := make([]byte, 256<<10)
	for {
		n, err := cc.Read(buf)
		b = append(b, buf[:n]...)
		if bytes.HasSuffix(b, end) {
			return b[:len(b)-len(end)]
		}
		if err != nil {
			t.Fatalf("reading the response: %v after %q", err, hpTrunc(b))
		}
	}
}

var hpFuzzCodes = []int{200, 200, 201, 203, 204, 206, 299, 304, 400, 403, 404, 412, 416, 500, 503, 599, 999}

// FuzzHitWriterHeader: whatever header names and values a handler sets,
// hitWriter's response has no line break inside a header line, writes the
// header lines net/http's Header.Write writes, parses with
// http.ReadResponse exactly when net/http's serialization does, and
// carries the body written, framed by its length.
func FuzzHitWriterHeader(f *testing.F) {
	f.Add("Content-Type", "text/plain", "Etag", `"abc"`, []byte("hello"), false, uint8(0))
	f.Add("X-Amz-Meta-A", " lead and trail \t", "X-Amz-Meta-B", "a\r\nX-Injected: 1", []byte("body"), false, uint8(0))
	f.Add("X-A", "a\r\n\r\nHTTP/1.1 200 OK\r\n", "X-B\r\nX-C", "v", []byte{}, false, uint8(0))
	f.Add("Bad Name", "v", "", "empty name", []byte("x"), true, uint8(0))
	f.Add("X-Nul", "a\x00b", "X-Obs", "caf\xc3\xa9\xff", []byte("x"), false, uint8(3))
	f.Add("Date", "Mon, 02 Jan 2006 15:04:05 GMT", "Last-Modified", "\n", bytes.Repeat([]byte("z"), 5000), false, uint8(5))
	f.Add("Connection", "close", "Trailer", "X-Sum", []byte("abc"), false, uint8(7))
	f.Add("content-type", "x\ry", "x-amz-request-id", "\r", []byte("abc"), true, uint8(4))
	f.Add("Accept-Ranges", "bytes", "Content-Range", "bytes 0-2/10", []byte("abc"), false, uint8(5))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, body []byte, head bool, code uint8) {
		const maxStr, maxBody = 4 << 10, 16 << 10 // all held until finish: one response, its length known
		k1, v1, k2, v2 = hpCut(k1, maxStr), hpCut(v1, maxStr), hpCut(k2, maxStr), hpCut(v2, maxStr)
		body = body[:min(len(body), maxBody)]
		status := hpFuzzCodes[int(code)%len(hpFuzzCodes)]
		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		h := http.Header{}
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}, {k1, v2}} {
			switch http.CanonicalHeaderKey(kv[0]) {
			case "Content-Length", "Transfer-Encoding": // framing: the writer's own
				continue
			}
			h.Add(kv[0], kv[1])
		}
		allowed := !head && bodyAllowedForStatus(status)

		var keep bool
		raw := hpCapture(t, func(c *conn) {
			w := &hitWriter{c: c, h: make(http.Header, 16)}
			w.reset(&http.Request{Method: method})
			for k, vs := range h {
				w.Header()[k] = slices.Clone(vs)
			}
			w.WriteHeader(status)
			for i, p := range [][]byte{body[:len(body)/3], body[len(body)/3 : 2*len(body)/3], body[2*len(body)/3:]} {
				if len(p) == 0 {
					continue
				}
				n, err := w.Write(p)
				switch {
				case bodyAllowedForStatus(status): // a HEAD's body is dropped, as net/http
					if n != len(p) || err != nil {
						t.Errorf("Write %d (%d bytes) = %d, %v", i, len(p), n, err)
					}
				case n != 0 || !errors.Is(err, http.ErrBodyNotAllowed):
					t.Errorf("Write with status %d = %d, %v; want ErrBodyNotAllowed", status, n, err)
				}
			}
			keep = w.finish()
		})
		// Unless the handler asked to close: net/http closes on a first
		// value of exactly "close" and tells the client of any close
		// token; the hit path closes on any.
		wantKeep := !httpguts.HeaderValuesContainsToken(h["Connection"], "close")
		if keep != wantKeep {
			t.Fatalf("finish = %v for a whole response with Connection %q, want %v", keep, h["Connection"], wantKeep)
		}
		wantBody := []byte{}
		if allowed {
			wantBody = body
		}

		// The raw framing: status line, header lines without a line
		// break in them, the empty line, the body.
		text := http.StatusText(status)
		if text == "" {
			text = "status code " + strconv.Itoa(status) // as net/http
		}
		statusLine := "HTTP/1.1 " + strconv.Itoa(status) + " " + text + "\r\n"
		if !bytes.HasPrefix(raw, []byte(statusLine)) {
			t.Fatalf("status line: %q", hpTrunc(raw))
		}
		end := bytes.Index(raw, []byte("\r\n\r\n"))
		if end < 0 {
			t.Fatalf("no end of header: %q", hpTrunc(raw))
		}
		lines := strings.Split(string(raw[len(statusLine):end+2]), "\r\n")
		lines = lines[:len(lines)-1]
		if !bytes.Equal(raw[end+4:], wantBody) {
			t.Fatalf("after the header: %d bytes, want the body's %d", len(raw)-end-4, len(wantBody))
		}
		var date string
		for _, l := range lines {
			if strings.ContainsAny(l, "\r\n") {
				t.Fatalf("line break in header line %q", l)
			}
			if strings.HasPrefix(l, "Date: ") && h["Date"] == nil {
				date = strings.TrimPrefix(l, "Date: ")
			}
		}

		// net/http's serialization of the same header and length.
		ref := h.Clone()
		if ref == nil {
			ref = http.Header{}
		}
		if h["Date"] == nil {
			if date == "" {
				t.Fatalf("no Date: %q", lines)
			}
			ref["Date"] = []string{date}
		}
		if allowed {
			ref["Content-Length"] = []string{strconv.Itoa(len(body))}
		}
		var refHdr bytes.Buffer
		if err := ref.Write(&refHdr); err != nil {
			t.Fatal(err)
		}
		refLines := strings.Split(strings.TrimSuffix(refHdr.String(), "\r\n"), "\r\n")
		if refHdr.Len() == 0 {
			refLines = nil
		}
		got, want := slices.Sorted(slices.Values(lines)), slices.Sorted(slices.Values(refLines))
		if !slices.Equal(got, want) {
			t.Fatalf("header lines\n got %q\nwant %q (net/http's)", got, want)
		}

		refRaw := append([]byte(statusLine+refHdr.String()+"\r\n"), wantBody...)
		resp, rbody, rest, err := hpParseResponse(raw, method)
		refResp, refBody, _, refErr := hpParseResponse(refRaw, method)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("ReadResponse: %v; of net/http's serialization: %v\n%q", err, refErr, hpTrunc(raw))
		}
		if err != nil {
			return
		}
		if rest != 0 {
			t.Fatalf("%d bytes after the response", rest)
		}
		if resp.StatusCode != status || !reflect.DeepEqual(resp.Header, refResp.Header) || !bytes.Equal(rbody, refBody) {
			t.Fatalf("response %d %v (%d body bytes), net/http's %d %v (%d)", resp.StatusCode, resp.Header, len(rbody), refResp.StatusCode, refResp.Header, len(refBody))
		}
		if method == http.MethodGet && status == 200 && !bytes.Equal(rbody, body) {
			t.Fatalf("body read back: %d bytes, written %d", len(rbody), len(body))
		}
		for k, vs := range resp.Header {
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n") {
					t.Fatalf("header %s: %q", k, v)
				}
			}
		}
	})
}

func hpCut(s string, n int) string { return s[:min(len(s), n)] }

// hpParseResponse parses one response to method from b and reads its body;
// rest is what b holds after it.
func hpParseResponse(b []byte, method string) (resp *http.Response, body []byte, rest int, err error) {
	r := bytes.NewReader(b)
	br := bufio.NewReader(r)
	resp, err = http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return nil, nil, 0, err
	}
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, 0, err
	}
	return resp, body, br.Buffered() + r.Len(), nil
}
