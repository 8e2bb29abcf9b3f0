package proxy

import (
	"context"
	"errors"
	"github.com/s3edge/s3edge/cache"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/upstream"
)

// getObject serves GetObject and HeadObject.
func (s *Server) getObject(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := s.authorize(rq, rq.key, policy.Read); err != nil {
		return err
	}
	q := rq.query
	if rq.principal.Anonymous() {
		for _, o := range responseOverrides {
			if q.Has(o[0]) {
				return errInvalidRequest.withMessage("Request specific response headers cannot be used for anonymous GET requests.")
			}
		}
	}
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	cond := conditionsIn(r.Header)
	opt := upstream.GetOptions{
		IfMatch:           cond.ifMatch,
		IfNoneMatch:       cond.ifNoneMatch,
		IfModifiedSince:   cond.ifModifiedSince,
		IfUnmodifiedSince: cond.ifUnmodifiedSince,
		VersionID:         q.Get("versionId"),
		SSEC:              sseC(r.Header, false),
	}
	if pn := q.Get("partNumber"); pn != "" {
		n, err := strconv.ParseInt(pn, 10, 32)
		if err != nil || n < 1 || n > 10000 {
			return errInvalidArgument.withMessage("Part number must be an integer between 1 and 10000, inclusive")
		}
		opt.PartNumber = int32(n)
	}
	if br, ok := parseRange(header(r.Header, "Range")); ok && opt.PartNumber == 0 {
		opt.Range = br.String()
	}
	key := b.Prefix + rq.key
	ck, cacheable := s.cacheKey(r, rq, b)
	o := origin{up: up, bucket: b.Bucket, key: key, ssec: opt.SSEC, tag: rq.cacheTag}

	if r.Method == http.MethodHead {
		if cacheable {
			if done, err := s.headCached(w, r, rq, ck, o, b.Cache, cond); done {
				return err
			}
		}
		if rq.hitOnly {
			return errNotHit
		}
		if cacheable {
			s.setXCache(w.Header(), cache.Miss)
		}
		ctx, answered := s.missBound(r.Context(), cacheable)
		info, err := up.Head(ctx, b.Bucket, key, opt)
		if timedOut := answered(); timedOut != nil && err != nil {
			err = timedOut
		}
		if err != nil {
			return notModified(w.Header(), err)
		}
		if err := cond.answer(w.Header(), info.ETag, info.LastModified); err != nil {
			return err
		}
		h := w.Header()
		setObjectHeaders(h, &info)
		applyOverrides(h, q)
		if br, ok := parseRange(opt.Range); ok && cond.rangeApplies(info.ETag, info.LastModified) {
			off, n, err := br.resolve(info.Size)
			if err != nil {
				return unsatisfiable(h, cond, info.ETag, info.LastModified, info.Size)
			}
			h.Set("Content-Range", contentRange(off, n, info.Size))
			h.Set("Content-Length", formatInt(n))
			w.WriteHeader(http.StatusPartialContent)
			return nil
		}
		if rg := info.Range; rg != nil { // a part: S3 answers 206 with its range
			n := rg.End - rg.Start + 1
			h.Set("Content-Range", contentRange(rg.Start, n, rg.Total))
			h.Set("Content-Length", formatInt(n))
			w.WriteHeader(http.StatusPartialContent)
			return nil
		}
		h.Set("Content-Length", formatInt(info.Size))
		w.WriteHeader(http.StatusOK)
		return nil
	}

	if cacheable {
		err := s.getCached(w, r, rq, ck, o, b.Cache, cond)
		if !errors.Is(err, errNotCached) {
			return err
		}
	}
	if rq.hitOnly {
		return errNotHit
	}
	ctx, answered := s.missBound(r.Context(), cacheable)
	obj, err := up.Get(ctx, b.Bucket, key, opt)
	if err == nil && obj.Range != nil && cond.ifRange != "" && !cond.rangeApplies(obj.ETag, obj.LastModified) {
		// If-Range names another version: the whole object, asked
		// again (S3 takes no If-Range).
		obj.Body.Close()
		opt.Range = ""
		obj, err = up.Get(ctx, b.Bucket, key, opt)
	}
	if timedOut := answered(); timedOut != nil && err != nil {
		err = timedOut
	}
	if err != nil {
		return notModified(w.Header(), err)
	}
	defer obj.Body.Close()
	// Providers that ignore conditional headers are caught here, so clients
	// see S3's answer whatever the upstream does.
	if err := cond.answer(w.Header(), obj.ETag, obj.LastModified); err != nil {
		return err
	}
	h := w.Header()
	setObjectHeaders(h, &obj.ObjectInfo)
	applyOverrides(h, q)
	status, n := http.StatusOK, obj.Size
	if obj.Range != nil {
		status, n = http.StatusPartialContent, obj.Range.End-obj.Range.Start+1
		h.Set("Content-Range", contentRange(obj.Range.Start, n, obj.Range.Total))
	}
	// A provider that sends no length gets its body streamed to EOF.
	if n >= 0 {
		h.Set("Content-Length", formatInt(n))
	}
	w.WriteHeader(status)
	err = s.copyOut(w, obj.Body, n)
	s.metrics.bytesOut.get(rq.bucket, "upstream").Add(float64(rq.bytesOut))
	return err
}

// missBound bounds the wait for the upstream's answer to a request of a
// cached bucket that the cache passes through (a HEAD miss, a suffix range
// of an unknown size) by the cache's miss timeout, as its own misses are.
// answered disarms the bound once the answer's header has come (a deadline
// on the whole call would cut long bodies) and returns ErrMissTimeout if
// it had fired.
func (s *Server) missBound(ctx context.Context, cacheable bool) (_ context.Context, answered func() error) {
	var d time.Duration
	if cacheable {
		d = s.cfg.Cache.MissTimeout()
	}
	if d <= 0 {
		return ctx, func() error { return nil }
	}
	ctx, cancel := context.WithCancelCause(ctx)
	t := time.AfterFunc(d, func() { cancel(cache.ErrMissTimeout) })
	return ctx, func() error {
		if t.Stop() {
			return nil
		}
		return cache.ErrMissTimeout
	}
}

// notModified gives the client's 304 the validators of the provider's,
// as HTTP asks (RFC 9110, 15.4.5); other errors pass as they are.
func notModified(h http.Header, err error) error {
	var v *upstream.Validators
	if errors.Is(err, upstream.ErrNotModified) && errors.As(err, &v) {
		if v.ETag != "" {
			h.Set("Etag", v.ETag)
		}
		if !v.LastModified.IsZero() {
			h.Set("Last-Modified", v.LastModified.UTC().Format(http.TimeFormat))
		}
	}
	return err
}

func applyOverrides(h http.Header, q map[string][]string) {
	for _, o := range responseOverrides {
		if v, ok := q[o[0]]; ok && len(v) > 0 {
			h.Set(o[1], v[0])
		}
	}
}

// objectExists answers NoSuchKey for requests on a subresource of a missing
// object.
func (s *Server) objectExists(r *http.Request, rq *request) error {
	up, b, err := s.target(rq)
	if err != nil {
		return err
	}
	_, err = up.Head(r.Context(), b.Bucket, b.Prefix+rq.key, upstream.GetOptions{SSEC: sseC(r.Header, false)})
	if errors.Is(err, upstream.ErrPreconditionFailed) || errors.Is(err, upstream.ErrInvalidRange) {
		return nil
	}
	var api *upstream.APIError
	if errors.As(err, &api) && api.Status == http.StatusBadRequest {
		// An SSE-C object headed without its key: it exists.
		return nil
	}
	return err
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// copyOut streams n bytes of body to the client after the header was sent.
// Each write must finish within StallTimeout, so a client that stops reading
// releases the upstream connection; a failure of the upstream mid-body aborts
// the connection, so the client never takes a short body for a whole one.
func (s *Server) copyOut(w http.ResponseWriter, body io.Reader, n int64) error {
	rc := http.NewResponseController(w)
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var done int64
	unknown := n < 0 // length not known: copy to EOF
	for unknown || done < n {
		want := int64(len(buf))
		if !unknown {
			want = min(want, n-done)
		}
		m, rerr := body.Read(buf[:want])
		if m > 0 {
			_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.StallTimeout))
			if _, werr := w.Write(buf[:m]); werr != nil {
				return errClientGone
			}
			done += int64(m)
		}
		if rerr == io.EOF && unknown {
			break
		}
		if rerr == io.EOF && done < n {
			rerr = io.ErrUnexpectedEOF
		}
		if rerr != nil && rerr != io.EOF {
			s.log.Warn("upstream body failed mid-response", "err", rerr, "sent", done, "want", n)
			panic(http.ErrAbortHandler)
		}
	}
	// The deadline stays: it bounds net/http's flush of the last bytes
	// after the handler returns, and net/http clears it then.
	return nil
}
