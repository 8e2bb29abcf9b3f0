package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/s3edge/s3edge/proxy/checksum"
	"github.com/s3edge/s3edge/proxy/sigv4"
)

// declaredLength is the payload length a write request announces: the
// decoded length of an aws-chunked body, else Content-Length.
func (s *Server) declaredLength(r *http.Request, rq *request) (int64, error) {
	n := r.ContentLength
	if rq.auth != nil && rq.auth.DecodedLength >= 0 {
		n = rq.auth.DecodedLength
	}
	switch {
	case n < 0:
		return 0, errMissingContentLength
	case n > s.cfg.MaxObjectSize:
		return 0, errEntityTooLarge
	}
	return n, nil
}

// payload returns the request body as the client meant it: aws-chunked
// framing removed, and every signature, hash and checksum the client sent
// verified. Its Read returns io.EOF only after all of them held; before that
// the bytes it yields are unverified, so callers must not commit them until
// they have read to EOF (spoolBody does exactly that).
func (s *Server) payload(r *http.Request, rq *request) (io.Reader, error) {
	body := io.Reader(r.Body)
	if r.Body == nil {
		body = http.NoBody
	}
	var opt checksum.Options
	if rq.auth != nil {
		var err error
		if body, err = rq.auth.Body(body); err != nil {
			return nil, err
		}
		if cr, ok := body.(*sigv4.ChunkedReader); ok {
			opt.Trailer, opt.TrailerNames = cr.Trailer, rq.auth.Trailer
		}
	}
	want, err := checksum.FromHeader(r.Header)
	if err != nil {
		return nil, err
	}
	if len(want) == 0 && len(opt.TrailerNames) == 0 {
		return body, nil
	}
	cr, err := checksum.NewReader(body, want, opt)
	if err != nil {
		return nil, err
	}
	return cr, nil
}

// spool is a verified request body, so that the upstream gets a plain,
// seekable, correctly sized body whatever encoding the client used. It is a
// file under SpoolDir; when the disk cannot take it (full, read-only,
// gone), a body that fits Config.MemorySpool is held in memory instead, so
// that uploads keep working through a disk failure like reads do.
type spool struct {
	s    *Server
	want int64    // bytes the body declares
	f    *os.File // nil: in memory
	n    int64    // bytes written to f
	mem  []byte
	held int64 // bytes of Config.MemorySpool reserved for mem
	size int64
}

// newSpool returns a spool for a body of want bytes.
func (s *Server) newSpool(want int64) (*spool, error) {
	sp := &spool{s: s, want: want}
	f, err := os.CreateTemp(s.cfg.SpoolDir, "body-*")
	if err == nil {
		sp.f = f
		return sp, nil
	}
	if !sp.toMemory(err) {
		return nil, fmt.Errorf("%w: %w", errNoSpool, err)
	}
	return sp, nil
}

// errNoSpool: neither the spool directory nor memory can take an upload.
var errNoSpool = errors.New("proxy: no room to spool the upload")

func (sp *spool) Write(p []byte) (int, error) {
	if sp.f == nil {
		if int64(len(sp.mem)+len(p)) > sp.held {
			return 0, errIncompleteBody.withMessage("The request body is longer than its declared length.")
		}
		sp.mem = append(sp.mem, p...)
		return len(p), nil
	}
	n, err := sp.f.Write(p)
	sp.n += int64(n)
	if err == nil {
		return n, nil
	}
	if !sp.toMemory(err) {
		return n, fmt.Errorf("%w: %w", errNoSpool, err)
	}
	m, err := sp.Write(p[n:])
	return n + m, err
}

// toMemory moves the spool into memory after the disk failed with cause,
// if the body fits what is left of Config.MemorySpool.
func (sp *spool) toMemory(cause error) bool {
	// Past want, the body is too long anyway (its last byte is read only
	// to find that out).
	if sp.n > sp.want || !sp.s.reserveMemorySpool(sp.want) {
		return false
	}
	sp.held = sp.want
	sp.mem = make([]byte, sp.n, sp.want)
	if sp.f != nil {
		_, err := sp.f.ReadAt(sp.mem, 0)
		sp.removeFile()
		if err != nil && !(err == io.EOF && sp.n == 0) {
			sp.release()
			return false
		}
	}
	sp.s.metrics.memorySpools.Inc()
	now, last := time.Now().UnixNano(), sp.s.memSpoolLogAt.Load()
	if now-last >= int64(time.Minute) && sp.s.memSpoolLogAt.CompareAndSwap(last, now) {
		sp.s.log.Warn("uploads wait in memory: the spool directory cannot take them (logged once a minute)",
			"dir", sp.s.cfg.SpoolDir, "bytes", sp.want, "err", cause)
	}
	return true
}

// reserveMemorySpool takes n bytes of Config.MemorySpool, if it has them.
func (s *Server) reserveMemorySpool(n int64) bool {
	for {
		used := s.memSpool.Load()
		if used+n > s.cfg.MemorySpool {
			return false
		}
		if s.memSpool.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (sp *spool) release() {
	sp.s.memSpool.Add(-sp.held)
	sp.held, sp.mem = 0, nil
}

func (sp *spool) removeFile() error {
	err := sp.f.Close()
	if rerr := os.Remove(sp.f.Name()); err == nil {
		err = rerr
	}
	sp.f = nil
	return err
}

// body returns the spooled bytes for the upstream, from the start.
func (sp *spool) body() io.ReadSeeker {
	if sp.f != nil {
		return sp.f
	}
	return bytes.NewReader(sp.mem)
}

// Close removes the spool file or frees its memory.
func (sp *spool) Close() error {
	if sp.f != nil {
		return sp.removeFile()
	}
	sp.release()
	return nil
}

// spoolBody reads the whole verified payload of a write into a spool (a
// temporary file under SpoolDir, or memory when the disk cannot take it).
// Nothing reaches the upstream unless this returns without error; on any
// error the spool is removed.
func (s *Server) spoolBody(w http.ResponseWriter, r *http.Request, rq *request) (*spool, error) {
	want, err := s.declaredLength(r, rq)
	if err != nil {
		return nil, err
	}
	body, err := s.payload(r, rq)
	if err != nil {
		return nil, err
	}
	sp, err := s.newSpool(want)
	if err != nil {
		return nil, err
	}
	n, err := s.copyIn(w, sp, body, want)
	if err == nil && n != want {
		err = errIncompleteBody
	}
	return sp.ready(n, err)
}

// ready rewinds a spool that holds its n bytes; after err, it removes it.
func (sp *spool) ready(n int64, err error) (*spool, error) {
	if err == nil && sp.f != nil {
		_, err = sp.f.Seek(0, io.SeekStart)
	}
	if err != nil {
		sp.Close()
		return nil, err
	}
	sp.size = n
	return sp, nil
}

// copyIn copies at most want bytes of a verified payload (reading one more to
// detect a body longer than declared), extending the connection's read
// deadline as bytes arrive so a stalled client is cut off.
func (s *Server) copyIn(w http.ResponseWriter, dst io.Writer, body io.Reader, want int64) (int64, error) {
	rc := http.NewResponseController(w)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		_ = rc.SetReadDeadline(time.Now().Add(s.cfg.StallTimeout))
		m, rerr := body.Read(buf)
		if m > 0 {
			n += int64(m)
			if n > want {
				return n, errIncompleteBody.withMessage("The request body is longer than its declared length.")
			}
			if _, err := dst.Write(buf[:m]); err != nil {
				return n, fmt.Errorf("proxy: spool: %w", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, bodyError(rerr)
		}
	}
	_ = rc.SetReadDeadline(time.Time{})
	return n, nil
}

// bodyError keeps the verification errors of a payload, which have S3 codes
// of their own, and turns transport failures into IncompleteBody.
func bodyError(err error) error {
	if toAPIError(err) != errInternal {
		return err
	}
	return fmt.Errorf("%w (%v)", errIncompleteBody, err)
}

// readSmallBody reads a verified XML request body of at most limit bytes.
func (s *Server) readSmallBody(r *http.Request, rq *request, limit int64) ([]byte, error) {
	body, err := s.payload(r, rq)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, bodyError(err)
	}
	_ = rq.rc.SetReadDeadline(time.Time{}) // read: see ServeHTTP
	if n > limit {
		return nil, errMalformedXML.withMessage("The XML you provided was larger than the maximum allowed.")
	}
	return buf.Bytes(), nil
}

// clearSpool removes request bodies a crash left behind: they were never
// acknowledged, so nothing is lost.
func clearSpool(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("proxy: spool directory: %w", err)
	}
	for _, de := range ents {
		if strings.HasPrefix(de.Name(), "body-") {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil {
				return fmt.Errorf("proxy: clear spool: %w", err)
			}
		}
	}
	return nil
}
