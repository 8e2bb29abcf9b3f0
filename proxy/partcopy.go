package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/s3edge/s3edge/upstream"
)

// uploadPartCopy makes a part of a multipart upload from an existing object
// or a range of it (x-amz-copy-source-range): the aws CLI and boto3's
// managed copy send it for every object above their multipart threshold
// (8 MiB).
//
// s3edge reads the source from its upstream, spools it with its length
// checked and uploads it as the part: gofakes3, the embedded upstream, has
// no part copy, and a source on another upstream could not be copied by the
// provider anyway. The price is the source range's egress, which a copy at
// the provider would not cost; see the README.
func (s *Server) uploadPartCopy(w http.ResponseWriter, r *http.Request, rq *request) error {
	up, in, err := s.partInput(r, rq)
	if err != nil {
		return err
	}
	srcB, srcKey, srcVersion, err := copySourceTarget(r, rq)
	if err != nil {
		return err
	}
	srcUp, ok := s.cfg.Upstreams[srcB.Upstream]
	if !ok {
		return fmt.Errorf("proxy: copy source: upstream %q not configured", srcB.Upstream)
	}
	get, cond, br, err := copySourceOptions(r.Header)
	if err != nil {
		return err
	}
	get.VersionID = srcVersion
	obj, err := srcUp.Get(r.Context(), srcB.Bucket, srcB.Prefix+srcKey, get)
	if err != nil {
		if errors.Is(err, upstream.ErrNotModified) {
			return errPrecondition // S3 answers 412 to every failed copy-source condition
		}
		return err
	}
	defer obj.Body.Close()
	// Checked here too: not every upstream evaluates them (gofakes3 ignores
	// If-Match).
	if err := cond.check(obj.ETag, obj.LastModified); err != nil {
		return errPrecondition
	}
	size := obj.Size
	if br.first >= 0 {
		// Exactly the range asked for: S3 refuses a range past the end
		// of the source, which a provider may clamp, or ignore.
		rg := obj.Range
		if rg == nil || rg.Start != br.first || rg.End != br.last {
			if obj.Size >= 0 && br.last >= obj.Size {
				return errInvalidArgument.withMessage("Range specified is not valid for source object of size: %d", obj.Size)
			}
			return errServiceUnavailable.withMessage("The upstream did not answer the copy source range; retry.")
		}
		size = br.last - br.first + 1
	}
	if size < 0 {
		return errServiceUnavailable.withMessage("The upstream did not say the copy source's length; retry.")
	}
	if size > s.cfg.MaxObjectSize { // the limit on an uploaded part too
		return errEntityTooLarge
	}
	sp, err := s.spoolFrom(obj.Body, size)
	if err != nil {
		return err
	}
	defer sp.Close()
	s.metrics.bytesIn.WithLabelValues(rq.bucket).Add(float64(sp.size)) // emulated: the bytes do go upstream
	in.Body, in.Size = sp.body(), sp.size
	part, err := up.UploadPart(r.Context(), in)
	if err != nil {
		return err
	}
	if obj.VersionID != "" && obj.VersionID != "null" {
		w.Header().Set("X-Amz-Copy-Source-Version-Id", obj.VersionID)
	}
	writeAck(w, &upstream.ObjectInfo{}, r.Header)
	return writeXML(w, http.StatusOK, &copyPartResult{Xmlns: s3NS, LastModified: s3Time(time.Now()), ETag: part.ETag})
}

// copySourceOptions reads the x-amz-copy-source-* headers of a part copy:
// range, preconditions (malformed dates are ignored, as for GET) and the
// source's SSE-C key. The range is first = -1 when there is none.
func copySourceOptions(h http.Header) (upstream.GetOptions, conditions, byteRange, error) {
	cond := conditions{
		ifMatch:           h.Get("X-Amz-Copy-Source-If-Match"),
		ifNoneMatch:       h.Get("X-Amz-Copy-Source-If-None-Match"),
		ifModifiedSince:   parseHTTPTime(h.Get("X-Amz-Copy-Source-If-Modified-Since")),
		ifUnmodifiedSince: parseHTTPTime(h.Get("X-Amz-Copy-Source-If-Unmodified-Since")),
	}
	o := upstream.GetOptions{
		IfMatch: cond.ifMatch, IfNoneMatch: cond.ifNoneMatch,
		IfModifiedSince: cond.ifModifiedSince, IfUnmodifiedSince: cond.ifUnmodifiedSince,
		SSEC: sseC(h, true),
	}
	br := byteRange{first: -1, last: -1}
	if v := h.Get("X-Amz-Copy-Source-Range"); v != "" {
		var ok bool
		br, ok = parseRange(v)
		if !ok || br.first < 0 || br.last < 0 {
			return o, cond, br, errInvalidArgument.withMessage("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
		}
		o.Range = fmt.Sprintf("bytes=%d-%d", br.first, br.last)
	}
	return o, cond, br, nil
}

// spoolFrom copies exactly size bytes of body into a spool file: a source
// that ends early or runs long uploads nothing.
func (s *Server) spoolFrom(body io.Reader, size int64) (*spool, error) {
	sp, err := s.newSpool(size)
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(sp, io.LimitReader(body, size+1))
	switch {
	case err != nil:
		err = fmt.Errorf("proxy: copy source: %w (%w)", upstream.ErrUnavailable, err)
	case n != size:
		err = fmt.Errorf("proxy: copy source: %d bytes, want %d: %w", n, size, upstream.ErrUnavailable)
	}
	return sp.ready(n, err)
}
