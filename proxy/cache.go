package proxy

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"runtime"
	"time"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/upstream"
)

// sendfileChunk is how much of a stored file goes out per sendfile call;
// between calls the write deadline moves on, so a slow but moving client is
// never cut off and a stalled one is.
const sendfileChunk = 4 << 20

// A body of up to smallSendMax goes out in sendfile calls of smallSendChunk.
// One sendfile of 256 KiB cost twice the kernel time per hit of four of
// 64 KiB, most of it with interrupts off in tcp_write_xmit (perf, wrk
// against the bench's hot set: 77 → 59 µs of CPU per hit, +10–16% hits/s
// at 128 and 256 KiB; the Go load generator's rate did not change). Larger
// bodies keep one call: at 1 MiB, 64 KiB calls halved the Go load
// generator's rate, and the client paces those transfers anyway.
const (
	smallSendMax   = 256 << 10
	smallSendChunk = 64 << 10
)

// cacheKey returns the cache key of a request, and whether the cache may
// serve or store it; it sets rq.cacheTag. Reads of a version or of a part
// are not cached, nor SSE-C objects unless the bucket opts in (their
// plaintext then sits on local disk).
func (s *Server) cacheKey(r *http.Request, rq *request, b policy.Bucket) (cache.Key, bool) {
	if s.cfg.Cache == nil || b.Cache.Mode == policy.CacheOff {
		return cache.Key{}, false
	}
	if q := rq.query; q.Has("versionId") || q.Has("partNumber") {
		return cache.Key{}, false
	}
	if c := sseC(r.Header, false); !c.IsZero() {
		tag, ok := sseCTag(c)
		if !b.Cache.SSEC || !ok {
			return cache.Key{}, false // the provider answers, or refuses the key
		}
		rq.cacheTag = tag
	}
	return cache.Key{Bucket: rq.bucket, Object: rq.key}, true
}

// sseCTag returns the cache tag of an SSE-C customer key: a hash, so that
// the key itself is never stored. It reports false for headers S3 would
// refuse (not AES256, not a 256-bit key, or a key MD5 that does not match),
// which are left to the provider to answer.
func sseCTag(c upstream.SSEC) (string, bool) {
	key, err := base64.StdEncoding.DecodeString(c.Key)
	if c.Algorithm != "AES256" || err != nil || len(key) != 32 {
		return "", false
	}
	sum := md5.Sum(key)
	if base64.StdEncoding.EncodeToString(sum[:]) != c.KeyMD5 {
		return "", false
	}
	h := sha256.New()
	h.Write([]byte("s3edge cache: SSE-C customer key\x00"))
	h.Write(key)
	return "sse-c:" + hex.EncodeToString(h.Sum(nil)), true
}

// refusedByUpstream reports an upstream 400 or 403: what S3 answers a
// request with the wrong SSE-C key, or without one.
func refusedByUpstream(err error) bool {
	var ae *upstream.APIError
	return errors.As(err, &ae) && (ae.Status == http.StatusBadRequest || ae.Status == http.StatusForbidden)
}

// servesTag reports whether a cache entry with tag may answer rq: a plain
// entry a plain request, an SSE-C entry only a request with its key.
func servesTag(rq *request, tag string) bool {
	return subtle.ConstantTimeCompare([]byte(tag), []byte(rq.cacheTag)) == 1
}

// invalidate drops a key from the cache after a write that changes it.
func (s *Server) invalidate(bucket, key string) {
	if s.cfg.Cache != nil {
		s.cfg.Cache.Invalidate(cache.Key{Bucket: bucket, Object: key})
	}
}

// origin is how the cache reaches the upstream for one object.
type origin struct {
	up     upstream.Upstream
	bucket string // upstream bucket
	key    string // upstream key
	ssec   upstream.SSEC
	tag    string // the request's cache tag, stored with what it fetches
}

func (o origin) Fetch(ctx context.Context, _ cache.Key) (cache.Meta, io.ReadCloser, error) {
	obj, err := o.up.Get(ctx, o.bucket, o.key, upstream.GetOptions{SSEC: o.ssec})
	if err != nil {
		return cache.Meta{}, nil, err
	}
	m := metaOf(&obj.ObjectInfo)
	m.Tag = o.tag
	return m, obj.Body, nil
}

func (o origin) FetchRange(ctx context.Context, _ cache.Key, off, n int64, ifMatch string) (cache.Meta, io.ReadCloser, error) {
	rng := fmt.Sprintf("bytes=%d-", off)
	if n >= 0 {
		rng = fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	}
	obj, err := o.up.Get(ctx, o.bucket, o.key, upstream.GetOptions{Range: rng, IfMatch: ifMatch, SSEC: o.ssec})
	if ifMatch != "" && errors.Is(err, upstream.ErrPreconditionFailed) {
		// The cache's own If-Match, not the client's: the object changed
		// (the cache drops the old version; the client may retry).
		return cache.Meta{}, nil, fmt.Errorf("%w (upstream: %v)", cache.ErrChanged, err)
	}
	if err != nil {
		return cache.Meta{}, nil, err
	}
	m := metaOf(&obj.ObjectInfo)
	m.Tag = o.tag
	if obj.Range != nil && obj.Range.Total >= 0 {
		m.Size = obj.Range.Total
	}
	return m, obj.Body, nil
}

// validate asks the upstream whether a stored version is still current.
func (o origin) validate(ctx context.Context, _ cache.Key, m cache.Meta) (bool, error) {
	info, err := o.up.Head(ctx, o.bucket, o.key, upstream.GetOptions{IfNoneMatch: m.ETag, SSEC: o.ssec})
	switch {
	case errors.Is(err, upstream.ErrNotModified):
		return true, nil
	case err == nil:
		return trimETag(info.ETag) == trimETag(m.ETag), nil
	case errors.Is(err, upstream.ErrNotFound):
		return false, nil
	case o.ssec == (upstream.SSEC{}) && refusedByUpstream(err):
		// A refusal is an answer, not an outage (RFC 5861's stale-if-error
		// covers 5xx and no answer; S3 answers 403 for a deleted key when
		// s3edge may not list): the entry is dropped and the refetch gives
		// the client the provider's own answer. Under SSE-C a wrong key is
		// refused too, and is this request's business only.
		return false, nil
	}
	return false, err
}

func (o origin) options(rule policy.CacheRule) cache.GetOptions {
	if rule.Mode != policy.CacheRevalidate {
		return cache.GetOptions{}
	}
	return cache.GetOptions{
		MaxAge:       max(rule.TTL, time.Nanosecond), // ttl 0: check every time
		Validate:     o.validate,
		StaleIfError: rule.StaleIfError,
	}
}

// metaOf keeps what a hit must replay of an upstream answer.
func metaOf(info *upstream.ObjectInfo) cache.Meta {
	h := make(map[string]string, len(info.Header)+1)
	for k, v := range info.Header {
		h[k] = v
	}
	if info.StorageClass != "" {
		h["X-Amz-Storage-Class"] = info.StorageClass
	}
	return cache.Meta{
		Size:         info.Size,
		ETag:         info.ETag,
		LastModified: info.LastModified,
		ContentType:  info.ContentType,
		Header:       h,
	}
}

// infoOf is metaOf's inverse, for writing response headers.
func infoOf(m *cache.Meta) upstream.ObjectInfo {
	info := upstream.ObjectInfo{
		Size: m.Size, ETag: m.ETag, LastModified: m.LastModified, ContentType: m.ContentType,
		Header: m.Header, StorageClass: m.Header["X-Amz-Storage-Class"],
	}
	return info
}

// errNotCached sends a request the cache cannot answer to the upstream.
var errNotCached = errors.New("proxy: not answerable from the cache")

// getCached serves a GET through the cache: a hit from local disk, a miss
// through one coalesced upstream fetch whose bytes stream to every waiting
// client as they arrive.
func (s *Server) getCached(w http.ResponseWriter, r *http.Request, rq *request, k cache.Key, o origin, rule policy.CacheRule, cond conditions) error {
	c := s.cfg.Cache
	opts := o.options(rule)
	// On the hit path, only a fresh stored entry answers: no fetcher.
	var (
		fetch cache.Fetcher      = o
		rf    cache.RangeFetcher = o
	)
	if rq.hitOnly {
		fetch, rf = nil, nil
	}
	var (
		rd  *cache.Reader
		st  cache.Status
		err error
	)
	br, partial := parseRange(header(r.Header, "Range"))
	if partial {
		off, n := br.first, int64(-1)
		if br.last >= 0 {
			n = br.last - br.first + 1
		}
		var sized string // the ETag of the version whose size placed a suffix
		if br.first < 0 {
			// A suffix needs the size; without a stored entry, the
			// upstream answers it.
			m, ok := c.Stat(k)
			if !ok || !servesTag(rq, m.Tag) {
				return errNotCached
			}
			sized = m.ETag
			if partial = cond.rangeApplies(m.ETag, m.LastModified); partial {
				if off, n, err = br.resolve(m.Size); err != nil {
					return unsatisfiable(w.Header(), cond, m.ETag, m.LastModified, m.Size)
				}
			}
		}
		if partial {
			rd, st, err = c.GetRange(r.Context(), k, off, n, rf, opts)
			switch {
			case sized != "" && (err == nil && rd.Meta().ETag != sized || errors.Is(err, cache.ErrInvalidRange)):
				// The entry was revalidated into another version (or
				// replaced) since its size placed the suffix: the
				// upstream answers it.
				if err == nil {
					rd.Close()
				}
				return errNotCached
			case err == nil && cond.ifRange != "":
				if m := rd.Meta(); !cond.rangeApplies(m.ETag, m.LastModified) {
					// If-Range names another version: the whole object.
					rd.Close()
					partial = false
				}
			case errors.Is(err, cache.ErrInvalidRange):
				if m, ok := c.Stat(k); ok && servesTag(rq, m.Tag) {
					if partial = cond.rangeApplies(m.ETag, m.LastModified); partial {
						return unsatisfiable(w.Header(), cond, m.ETag, m.LastModified, m.Size)
					}
				}
			}
		}
	}
	if !partial {
		rd, st, err = c.Get(r.Context(), k, fetch, opts)
	}
	if rq.hitOnly && errors.Is(err, cache.ErrMiss) {
		return errNotHit
	}
	if err != nil {
		if rule.SSEC && refusedByUpstream(err) {
			// The fill may have been started by a request with another
			// SSE-C key, or none: its refusal is not this request's
			// answer. The provider gives this one its own.
			return errNotCached
		}
		return err
	}
	defer rd.Close()
	meta := rd.Meta()
	if !servesTag(rq, meta.Tag) { // stored, or being fetched, with another SSE-C key or none
		return errNotCached
	}
	if err := cond.answer(w.Header(), meta.ETag, meta.LastModified); err != nil {
		return err
	}
	h := w.Header()
	info := infoOf(&meta)
	setObjectHeaders(h, &info)
	applyOverrides(h, rq.query)
	s.setXCache(h, st)
	n := rd.Size()
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", contentRange(rd.Offset(), n, meta.Size))
	}
	if n >= 0 {
		h.Set("Content-Length", formatInt(n))
	}
	w.WriteHeader(status)
	source := "upstream"
	if st == cache.Hit || st == cache.Stale {
		source = "cache"
	} else {
		// The header is known as soon as the upstream answered: send it
		// now rather than with the first body bytes, which still have to
		// cross the network and the cache's file.
		_ = rq.rc.Flush()
		// Coalesced readers wake together when the upstream answers.
		// Let the others send their headers before this one starts
		// copying the body: their time to first byte is what the
		// coalescing is for (-3 ms at the median of a 50-client burst).
		runtime.Gosched()
	}
	defer func() { s.metrics.bytesOut.get(rq.bucket, source).Add(float64(rq.bytesOut)) }()
	switch {
	case source == "upstream" && (n < 0 || n <= smallBody):
		return s.copyOut(w, rd, n)
	case n <= smallBody:
		// Header and body in one write. A failed read panics past
		// release: the held bytes are dropped with the connection.
		hc := hold(r)
		return release(hc, rq, s.writeSmall(w, rd, n))
	}
	// Larger bodies go out through sendfile, stored or still being
	// filled: the reader waits for a fill's bytes to reach its file. A
	// hit's header leaves with the first body bytes.
	var hc *conn
	if source == "cache" {
		hc = hold(r)
	}
	// The last write deadline stays in force for release (under TLS, with
	// no sendfile, it writes a body below the hold limit) and net/http's
	// final flush; net/http clears it after that.
	return release(hc, rq, s.sendStored(w, rq, rd, n))
}

// headCached answers a HEAD from a stored entry when it may be served
// without asking the upstream.
func (s *Server) headCached(w http.ResponseWriter, r *http.Request, rq *request, k cache.Key, o origin, rule policy.CacheRule, cond conditions) (bool, error) {
	opts := o.options(rule)
	if rq.hitOnly {
		opts.Validate = nil // only a fresh entry; an expired one is handed on
	}
	m, st, ok, err := s.cfg.Cache.Head(r.Context(), k, opts)
	if err != nil {
		return true, err
	}
	if !ok || !servesTag(rq, m.Tag) {
		return false, nil
	}
	if err := cond.answer(w.Header(), m.ETag, m.LastModified); err != nil {
		return true, err
	}
	h := w.Header()
	info := infoOf(&m)
	setObjectHeaders(h, &info)
	applyOverrides(h, rq.query)
	s.setXCache(h, st)
	if br, ok := parseRange(header(r.Header, "Range")); ok && cond.rangeApplies(m.ETag, m.LastModified) {
		off, n, err := br.resolve(m.Size)
		if err != nil {
			return true, unsatisfiable(h, cond, m.ETag, m.LastModified, m.Size)
		}
		h.Set("Content-Range", contentRange(off, n, m.Size))
		h.Set("Content-Length", formatInt(n))
		w.WriteHeader(http.StatusPartialContent)
		return true, nil
	}
	h.Set("Content-Length", formatInt(m.Size))
	w.WriteHeader(http.StatusOK)
	return true, nil
}

// xCacheValues are the X-Cache header values by status, built once.
var xCacheValues = func() map[cache.Status][]string {
	m := make(map[cache.Status][]string)
	for _, st := range []cache.Status{cache.Hit, cache.Stale, cache.Miss, cache.Coalesced, cache.Bypass} {
		m[st] = []string{st.String()}
	}
	return m
}()

func (s *Server) setXCache(h http.Header, st cache.Status) {
	if !s.cfg.NoXCache {
		h["X-Cache"] = xCacheValues[st]
	}
}

// smallBody is the size up to which a stored file is read into memory and
// written with the response header (in one write, see hold): for small
// objects a copy is cheaper than splicing pages, and it saves a TCP
// segment. Above it the two copies cost more than sendfile's page
// references: at 64 KiB sendfile served 9% more wrk hits with 10% less
// CPU; at 8 to 32 KiB the copy won or tied (bench wrk, alternating A/B).
const smallBody = 32 << 10

// writeSmall sends a small stored body with one positioned read (on a file
// the cache keeps open) and one write.
func (s *Server) writeSmall(w http.ResponseWriter, rd *cache.Reader, n int64) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := (*bp)[:n]
	if _, err := rd.ReadAt(buf, 0); err != nil && !(err == io.EOF && n == 0) {
		panic(http.ErrAbortHandler)
	}
	if _, err := w.Write(buf); err != nil {
		return errClientGone
	}
	return nil
}

// sendStored sends n bytes of files, stored or being filled, whole object
// or slices, through sendfile, part by part. Any failure after the header
// aborts the connection.
func (s *Server) sendStored(w http.ResponseWriter, rq *request, rd *cache.Reader, n int64) error {
	rc := rq.rc
	// Send the header on its own first. Otherwise net/http copies the
	// first 512 bytes through a buffer (to sniff a Content-Type it does
	// not need) and sendfile starts at offset 512: page-unaligned, which
	// cost a quarter more CPU per 256 KiB hit than sending from 0.
	if err := rc.Flush(); err != nil {
		return errClientGone
	}
	rf, ok := w.(io.ReaderFrom)
	if !ok {
		return s.copyOut(w, rd, n)
	}
	sw := &stallWriter{w: w, rf: rf, rc: rc, stall: s.cfg.StallTimeout, chunk: sendfileChunk}
	if n <= smallSendMax {
		sw.chunk = smallSendChunk
	}
	if m, err := io.Copy(sw, rd); err != nil || m != n { // rd.WriteTo: sendfile per part
		if !sw.failed {
			s.log.Warn("cache or upstream body failed mid-response", "err", err, "sent", m, "want", n)
		}
		panic(http.ErrAbortHandler)
	}
	return nil
}

// stallWriter extends the write deadline before every write and every
// sendfile of at most chunk bytes, so that a slow but moving client is
// never cut off and a stalled one is.
type stallWriter struct {
	w      io.Writer
	rf     io.ReaderFrom
	rc     *http.ResponseController
	stall  time.Duration
	chunk  int64
	failed bool // a write to the client failed
}

func (sw *stallWriter) Write(p []byte) (int, error) {
	_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.stall))
	n, err := sw.w.Write(p)
	sw.failed = sw.failed || err != nil
	return n, err
}

// ReadFrom hands src to the connection's ReadFrom in chunks. A chunk of an
// *io.LimitedReader over a file stays one LimitedReader over the file:
// net/http's sendfile path looks through one, not two.
func (sw *stallWriter) ReadFrom(src io.Reader) (int64, error) {
	lr, ok := src.(*io.LimitedReader)
	if !ok {
		lr = &io.LimitedReader{R: src, N: math.MaxInt64}
	}
	var total int64
	for lr.N > 0 {
		_ = sw.rc.SetWriteDeadline(time.Now().Add(sw.stall))
		n, err := sw.rf.ReadFrom(&io.LimitedReader{R: lr.R, N: min(lr.N, sw.chunk)})
		total += n
		lr.N -= n
		if err != nil || n == 0 {
			// Reading a local file hardly fails; writing to a client does.
			sw.failed = sw.failed || err != nil
			return total, err
		}
	}
	return total, nil
}

// stagedBody is a verified upload on local disk: in the cache, where it
// becomes the entry once the upstream acknowledged it (the object just
// written is the one most likely to be read next), or in the spool.
type stagedBody struct {
	pending *cache.Pending // nil when spooled
	spool   *spool
	size    int64
}

func (sb *stagedBody) reader() io.ReadSeeker {
	if sb.pending != nil {
		return io.NewSectionReader(sb.pending, 0, sb.size)
	}
	return sb.spool.body()
}

// commit makes a cached upload the cache entry; info is the upstream's ack.
func (sb *stagedBody) commit(info *upstream.ObjectInfo, contentType string, hdr map[string]string, rq *request, ssec upstream.SSEC) {
	if sb.pending == nil {
		return
	}
	m := metaOf(info)
	m.Size = sb.size
	if contentType != "" {
		m.ContentType = contentType
	}
	for k, v := range hdr {
		m.Header[k] = v
	}
	if m.Tag = rq.cacheTag; m.Tag != "" {
		// A GET answers these for an SSE-C object; an ack need not.
		m.Header["X-Amz-Server-Side-Encryption-Customer-Algorithm"] = ssec.Algorithm
		m.Header["X-Amz-Server-Side-Encryption-Customer-Key-Md5"] = ssec.KeyMD5
	}
	if err := sb.pending.Commit(m); err != nil {
		sb.pending.Abort()
	}
	sb.pending = nil
}

func (sb *stagedBody) Close() error {
	if sb.pending != nil {
		return sb.pending.Abort()
	}
	if sb.spool != nil {
		return sb.spool.Close()
	}
	return nil
}

// finish prepares the staged body for upload: a spool file is rewound.
func (sb *stagedBody) finish() error {
	if sb.spool != nil {
		_, err := sb.spool.ready(sb.size, nil)
		return err
	}
	return nil
}

// stageBody reads and verifies a write's body into the cache when the key
// may be cached and the cache can take it, else into the spool. A cache
// that fails mid-body (disk full, read-only) hands over to the spool: the
// upload still succeeds, it just is not cached.
func (s *Server) stageBody(w http.ResponseWriter, r *http.Request, rq *request, k cache.Key, cacheable bool) (*stagedBody, error) {
	if !cacheable {
		return s.spooled(w, r, rq)
	}
	want, err := s.declaredLength(r, rq)
	if err != nil {
		return nil, err
	}
	// Invalidate first: a fill that started before this write must never
	// commit over it.
	s.cfg.Cache.Invalidate(k)
	p, err := s.cfg.Cache.Stage(k, want)
	if err != nil {
		return s.spooled(w, r, rq)
	}
	body, err := s.payload(r, rq)
	if err != nil {
		p.Abort()
		return nil, err
	}
	sw := &stageWriter{s: s, pending: p, want: want}
	n, err := s.copyIn(w, sw, body, want)
	if err == nil && n != want {
		err = errIncompleteBody
	}
	sb := &stagedBody{pending: sw.pending, spool: sw.spool, size: n}
	if err == nil {
		err = sb.finish()
	}
	if err != nil {
		sb.Close()
		return nil, err
	}
	return sb, nil
}

func (s *Server) spooled(w http.ResponseWriter, r *http.Request, rq *request) (*stagedBody, error) {
	sp, err := s.spoolBody(w, r, rq)
	if err != nil {
		return nil, err
	}
	return &stagedBody{spool: sp, size: sp.size}, nil
}

// stageWriter writes into a cache Pending and moves to a spool file if the
// cache store fails.
type stageWriter struct {
	s       *Server
	pending *cache.Pending
	spool   *spool
	want    int64
}

func (sw *stageWriter) Write(b []byte) (int, error) {
	if sw.pending != nil {
		n, err := sw.pending.Write(b)
		if err == nil {
			return n, nil
		}
		if err := sw.toSpool(); err != nil {
			return 0, err
		}
		b = b[n:]
		m, err := sw.spool.Write(b)
		return n + m, err
	}
	return sw.spool.Write(b)
}

func (sw *stageWriter) toSpool() error {
	p := sw.pending
	sw.pending = nil
	defer p.Abort()
	sp, err := sw.s.newSpool(sw.want)
	if err != nil {
		return err
	}
	sw.spool = sp
	_, err = io.Copy(sp, io.NewSectionReader(p, 0, p.Size()))
	return err
}
