package proxy

import (
	"bytes"
	"fmt"
	"github.com/s3edge/s3edge/proxy/checksum"
	"github.com/s3edge/s3edge/proxy/sigv4"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
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

// spool is a verified request body on disk: the upstream gets a plain,
// seekable, correctly sized body whatever encoding the client used.
type spool struct {
	f    *os.File
	size int64
}

// Close removes the spool file.
func (sp *spool) Close() error {
	err := sp.f.Close()
	if rerr := os.Remove(sp.f.Name()); err == nil {
		err = rerr
	}
	return err
}

// spoolBody reads the whole verified payload of a write into a temporary file
// under SpoolDir. Nothing reaches the upstream unless this returns without
// error; on any error the file is removed.
func (s *Server) spoolBody(w http.ResponseWriter, r *http.Request, rq *request) (*spool, error) {
	want, err := s.declaredLength(r, rq)
	if err != nil {
		return nil, err
	}
	body, err := s.payload(r, rq)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(s.cfg.SpoolDir, "body-*")
	if err != nil {
		return nil, fmt.Errorf("proxy: spool: %w", err)
	}
	n, err := s.copyIn(w, f, body, want)
	if err == nil && n != want {
		err = errIncompleteBody
	}
	return (&spool{f: f}).ready(n, err)
}

// ready rewinds a spool that holds its n bytes; after err, it removes it.
func (sp *spool) ready(n int64, err error) (*spool, error) {
	if err == nil {
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
