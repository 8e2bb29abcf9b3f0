package cache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"sort"
	"sync"
)

// Reader reads one object, or a range of it, from stored files and fills in
// progress. Reads of bytes a fill has not received yet block until they
// arrive, the fill fails (the read returns its error, never a short body
// with io.EOF), or the context given to Get is done.
//
// A Reader is an io.ReadSeeker, io.ReaderAt and io.WriterTo over its window
// (offsets are relative to the window start); WriteTo hands stored files to
// the destination's ReadFrom, so io.Copy to a net/http ResponseWriter uses
// sendfile. A Reader is not safe for concurrent use. Close releases its
// files; stored files stay in place (pinned) until then.
type Reader struct {
	c      *Cache
	ctx    context.Context // the caller's, for blocking reads
	key    Key
	meta   Meta
	off    int64 // object offset of the window
	size   int64 // window length
	pos    int64 // Read and Seek position within the window
	parts  []part
	one    [1]part      // backing for the single-part case
	rf     RangeFetcher // fills missing slices of a sliced read
	closed bool
	// copyFills: fill files cannot be reopened here, so WriteTo copies
	// fill bytes through a buffer.
	copyFills bool
}

// part is a run of the window served by one source: a stored file (ct), a
// fill (fl), or, in a sliced read, nothing yet (resolved when reached).
type part struct {
	start, end int64 // object offsets covered
	base       int64 // object offset of the source's first byte
	idx        int64 // slice index, or whole
	ct         *content
	h          *handle // ct's shared file, for ReadAt
	file       File    // ct, or fseg's file, opened for this reader alone, for sendfile
	fpos       int64   // file offset (WriteTo moves it; ReadAt does not)
	fl         *fill
	fseg       *segment // the segment of fl that file is
	cur        *cursor
	checked    bool // fl's meta checked against the reader's version
}

// Meta returns the object's metadata; Meta.Size is the whole object's size.
// Its Header map may be shared with other readers: do not modify it.
func (r *Reader) Meta() Meta { return r.meta }

// Size returns the length of the window: the object's size for Get, the
// (clamped) range length for GetRange; -1 for a fill of unknown size.
func (r *Reader) Size() int64 {
	if r.size == math.MaxInt64 {
		return -1
	}
	return r.size
}

// Offset returns the object offset of the window's first byte.
func (r *Reader) Offset() int64 { return r.off }

// Read reads from the window; it returns as soon as some bytes are
// available.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n, err := r.readAt(p, r.off+r.pos, false)
	r.pos += int64(n)
	return n, err
}

// ReadAt reads len(p) bytes at window offset off, blocking as needed.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("cache: read at %d: %w", off, fs.ErrInvalid)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	return r.readAt(p, r.off+off, true)
}

// Seek sets the window offset of the next Read.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return 0, fmt.Errorf("cache: seek to %d: %w", offset, fs.ErrInvalid)
	}
	r.pos = offset
	return offset, nil
}

// privateFile gives part i a descriptor of its stored file for this reader
// alone, a spare of its handle or a new one: sendfile moves the file
// offset, which a shared descriptor cannot have.
func (r *Reader) privateFile(i int) error {
	pt := &r.parts[i]
	if pt.file != nil {
		return nil
	}
	if pt.h != nil {
		r.c.mu.Lock()
		f := r.c.spareLocked(pt.h)
		r.c.mu.Unlock()
		if f != nil {
			pt.file, pt.fpos = f, -1 // offset unknown: WriteTo seeks
			return nil
		}
	}
	f, err := r.c.openContent(pt.ct)
	if err != nil {
		return err
	}
	pt.file = f
	return nil
}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// WriteTo copies the rest of the window to w. Files, stored or being
// filled, go through w's ReadFrom when it has one (sendfile for a TCP
// connection); bytes of a fill that is not stored go through a buffer.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	rf, direct := w.(io.ReaderFrom)
	var total int64
	for r.pos < r.size {
		abs := r.off + r.pos
		i := r.partAt(abs)
		pt := &r.parts[i]
		if direct && pt.fl != nil && !r.copyFills {
			n, sent, err := r.sendFill(rf, i, abs)
			r.pos += n
			total += n
			if err == io.EOF {
				break
			}
			if err != nil {
				return total, err
			}
			if sent {
				continue
			}
		}
		if direct && pt.fl == nil {
			if err := r.openPart(i); err != nil {
				return total, err
			}
			if pt.ct != nil {
				if err := r.privateFile(i); err != nil {
					return total, err
				}
			}
			if osf, ok := pt.file.(*os.File); ok {
				want := pt.end - abs
				if pt.fpos != abs-pt.base {
					if _, err := osf.Seek(abs-pt.base, io.SeekStart); err != nil {
						return total, err
					}
				}
				n, err := rf.ReadFrom(&io.LimitedReader{R: osf, N: want})
				pt.fpos = abs - pt.base + n
				r.pos += n
				total += n
				r.c.stats.bytesFromCache.Add(n)
				if err != nil {
					return total, err
				}
				if n < want {
					return total, r.c.corrupt(pt.ct, "short file")
				}
				continue
			}
		}
		bp := copyPool.Get().(*[]byte)
		n, err := r.Read(*bp)
		if n > 0 {
			m, werr := w.Write((*bp)[:n])
			total += int64(m)
			if werr == nil && m < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				copyPool.Put(bp)
				return total, werr
			}
		}
		copyPool.Put(bp)
		if err == io.EOF {
			break
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// sendFill hands rf the bytes of fill part i from object offset abs that
// are in one of the fill's files, once they have arrived. It reports false
// when they are not in a file (the fill is not stored) or the file cannot
// be reopened: the caller copies them instead.
//
// Fifty clients of one cold 1 MiB object each read it as it arrives:
// through sendfile rather than a read and a write, each cost the server 370
// instead of 600 µs of CPU (Varnish: 380).
func (r *Reader) sendFill(rf io.ReaderFrom, i int, abs int64) (int64, bool, error) {
	pt := &r.parts[i]
	if !pt.checked {
		if err := r.checkFill(pt.fl); err != nil {
			return 0, false, err
		}
		pt.checked = true
	}
	rel := abs - pt.base
	seg, n, err := pt.fl.onDisk(r.ctx, pt.cur, rel)
	if err != nil || seg == nil {
		return 0, false, err
	}
	if pt.fseg != seg {
		ro, ok := seg.t.(interface{ Reopen() (*os.File, error) })
		if !ok {
			r.copyFills = true
			return 0, false, nil
		}
		f, err := ro.Reopen()
		if err != nil {
			r.copyFills = true
			return 0, false, nil
		}
		if pt.file != nil {
			pt.file.Close()
		}
		pt.file, pt.fseg, pt.fpos = f, seg, 0
	}
	osf := pt.file.(*os.File)
	if off := rel - seg.off; pt.fpos != off {
		if _, err := osf.Seek(off, io.SeekStart); err != nil {
			return 0, false, err
		}
		pt.fpos = off
	}
	want := min(n, pt.end-abs)
	m, err := rf.ReadFrom(&io.LimitedReader{R: osf, N: want})
	pt.fpos += m
	if abs+m >= pt.end {
		pt.fl.passed(pt.cur)
		// A long sliced read would otherwise hold a descriptor per slice.
		pt.file.Close()
		pt.file, pt.fseg = nil, nil
	}
	if err == nil && m < want {
		err = fmt.Errorf("cache: read fill: %w", io.ErrUnexpectedEOF)
		r.c.noteDiskError("read", err)
	}
	return m, true, err
}

// Close releases the Reader's files, pins and fills. It is idempotent.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	c := r.c
	var victims []*content
	var releases []func()
	c.mu.Lock()
	for i := range r.parts {
		pt := &r.parts[i]
		if pt.h != nil {
			if pt.file != nil {
				c.putSpareLocked(pt.h, pt.file)
				pt.file = nil
			}
			c.releaseHandleLocked(pt.h)
		}
		if pt.ct != nil {
			victims = append(victims, c.unpinLocked(pt.ct))
		}
		if pt.fl != nil {
			releases = append(releases, c.detachLocked(pt.fl, pt.cur))
		}
	}
	closing := c.takeClosingLocked()
	c.mu.Unlock()
	closeFiles(closing)
	for i := range r.parts {
		if f := r.parts[i].file; f != nil {
			f.Close()
		}
	}
	for _, rel := range releases {
		rel()
	}
	c.unlink(victims)
	return nil
}

// partAt returns the index of the part holding object offset abs.
func (r *Reader) partAt(abs int64) int {
	if len(r.parts) == 1 {
		return 0
	}
	return sort.Search(len(r.parts), func(i int) bool { return r.parts[i].end > abs })
}

// readAt reads at object offset abs. With full it fills p (or fails);
// without, it returns after the first bytes.
func (r *Reader) readAt(p []byte, abs int64, full bool) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("cache: read: %w", fs.ErrClosed)
	}
	n := 0
	for n < len(p) {
		if abs >= r.off+r.size {
			return n, io.EOF
		}
		i := r.partAt(abs)
		want := min(int64(len(p)-n), r.parts[i].end-abs)
		m, err := r.readPart(i, p[n:n+int(want)], abs)
		n += m
		abs += int64(m)
		if err != nil {
			return n, err
		}
		if !full && n > 0 {
			break
		}
	}
	return n, nil
}

// readPart reads from one part; for a fill it returns once some bytes are
// there.
func (r *Reader) readPart(i int, p []byte, abs int64) (int, error) {
	pt := &r.parts[i]
	if pt.fl == nil {
		if err := r.openPart(i); err != nil {
			return 0, err
		}
	}
	if pt.fl != nil {
		if !pt.checked {
			if err := r.checkFill(pt.fl); err != nil {
				return 0, err
			}
			pt.checked = true
		}
		n, err := pt.fl.read(r.ctx, pt.cur, p, abs-pt.base)
		if abs+int64(n) >= pt.end {
			pt.fl.passed(pt.cur) // this reader needs no more of the fill
		}
		return n, err
	}
	f := pt.file
	if f == nil {
		f = pt.h.f
	}
	n, err := f.ReadAt(p, abs-pt.base)
	r.c.stats.bytesFromCache.Add(int64(n))
	if n == len(p) {
		return n, nil
	}
	if err == nil || err == io.EOF {
		err = r.c.corrupt(pt.ct, "short file")
	}
	return n, err
}

// openPart makes part i readable: it resolves a missing slice (which may
// turn it into a fill part) and opens a stored file.
func (r *Reader) openPart(i int) error {
	pt := &r.parts[i]
	if pt.ct == nil && pt.fl == nil {
		if err := r.c.resolveSlice(r, i); err != nil {
			return err
		}
	}
	if pt.ct != nil && pt.file == nil && pt.h == nil {
		h, err := r.c.openHandle(pt.ct)
		if err != nil {
			return err
		}
		pt.h = h
	}
	return nil
}

// checkFill waits for a fill's meta and checks it is the reader's version.
func (r *Reader) checkFill(f *fill) error {
	select {
	case <-f.ready:
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	if r.meta.ETag != f.meta.ETag || r.meta.Size != f.meta.Size {
		return ErrChanged
	}
	return nil
}

// openContent opens a stored file for reading. It checks the size on every
// open and the SHA-256 on the first open since Open (files written by this
// process were hashed as they were written). A file that fails is marked
// bad, never served, and its entries are dropped when next looked up.
func (c *Cache) openContent(ct *content) (File, error) {
	f, err := c.store.Open(ct.sum)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, c.corrupt(ct, "missing file")
	}
	if err != nil {
		c.noteDiskError("read", err)
		return nil, fmt.Errorf("cache: open: %w", err)
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != ct.size {
		f.Close()
		return nil, c.corrupt(ct, "wrong size")
	}
	if !ct.verified.Load() {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, ct.size)); err != nil || [32]byte(h.Sum(nil)) != ct.sum {
			f.Close()
			return nil, c.corrupt(ct, "hash mismatch")
		}
		ct.verified.Store(true)
	}
	return f, nil
}

// corrupt marks ct bad and returns the error for its reader.
func (c *Cache) corrupt(ct *content, why string) error {
	c.mu.Lock()
	first := !ct.bad
	ct.bad = true
	ct.verified.Store(false)
	c.dropHandleLocked(ct)
	closing := c.takeClosingLocked()
	c.mu.Unlock()
	closeFiles(closing)
	if first {
		c.stats.corrupt.Add(1)
		c.log.Error("cache: stored file is corrupt; dropping it", "sha256", fmt.Sprintf("%x", ct.sum), "why", why)
	}
	return fmt.Errorf("%w: %x: %s", ErrCorrupt, ct.sum[:8], why)
}
