package cache

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// ErrUnavailable: Stage cannot spool now (disk trouble, or no room because
// everything stored is being read). The caller spools elsewhere and does not
// store the object.
var ErrUnavailable = errors.New("cache: cannot store now")

// Pending is an upload being spooled into the cache (Stage). The proxy
// writes the verified body into it, uploads it from it (ReadAt, through an
// io.SectionReader: the spool is seekable, as aws-sdk-go-v2's PutObject
// needs), and commits it once the upstream acknowledged the upload. A
// Pending is used by one goroutine at a time; it must end with Commit or
// Abort.
type Pending struct {
	c       *Cache
	k       Key
	b       *bucket
	size    int64 // declared
	sliced  bool
	segs    []*segment
	written int64
	err     error // first write error, sticky
	ended   bool

	// Cache.mu guards the following.
	stale    bool  // invalidated since Stage: never stored
	reserved int64 // bytes still reserved in Cache.reserved
}

// Stage starts spooling an upload of size bytes for k. Uploads skip the
// admission filter: recently written objects are the hottest. The bytes are
// reserved (evicting as needed) until Commit or Abort.
func (c *Cache) Stage(k Key, size int64) (*Pending, error) {
	if size < 0 {
		return nil, fmt.Errorf("cache: stage %s/%s: unknown size", k.Bucket, k.Object)
	}
	if size > c.o.MaxObjectSize {
		return nil, ErrTooLarge
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if c.now().Before(c.diskBadUntil) {
		c.mu.Unlock()
		return nil, ErrUnavailable
	}
	b := c.bucketLocked(k.Bucket)
	if b.cap > 0 && size > b.cap {
		c.mu.Unlock()
		return nil, ErrTooLarge
	}
	c.reserveLocked(b, size)
	victims := c.evictToLocked(c.o.MaxBytes, nil)
	if c.used+c.reserved > c.o.MaxBytes {
		c.reserveLocked(b, -size)
		c.mu.Unlock()
		c.unlink(victims)
		return nil, ErrUnavailable
	}
	p := &Pending{c: c, k: k, b: b, size: size, sliced: size > c.o.SliceThreshold, reserved: size}
	c.stages[p] = struct{}{}
	c.mu.Unlock()
	c.unlink(victims)
	return p, nil
}

// Write appends to the spool. Writing more than the size given to Stage is
// an error; so is any store error (disk full: the caller must spool
// elsewhere).
func (p *Pending) Write(b []byte) (int, error) {
	if p.err != nil {
		return 0, p.err
	}
	if p.ended {
		return 0, fmt.Errorf("cache: write after commit or abort")
	}
	if p.written+int64(len(b)) > p.size {
		p.err = ErrLongBody
		return 0, p.err
	}
	n, err := p.c.writeSegments(&p.segs, nil, b, 0, p.size, p.sliced, nil)
	p.written += int64(n)
	if err != nil {
		return n, p.fail(err)
	}
	return n, nil
}

func (p *Pending) fail(err error) error {
	p.c.noteDiskError("write", err)
	p.err = fmt.Errorf("cache: stage %s/%s: %w", p.k.Bucket, p.k.Object, err)
	return p.err
}

// Size returns the bytes written so far.
func (p *Pending) Size() int64 { return p.written }

// ReadAt reads spooled bytes, for uploading them.
func (p *Pending) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		pos := off + int64(n)
		if pos >= p.written {
			return n, io.EOF
		}
		i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].off+p.segs[i].w > pos })
		seg := p.segs[i]
		k := min(int64(len(b)-n), seg.off+seg.w-pos)
		m, err := seg.t.ReadAt(b[n:n+int(k)], pos-seg.off)
		n += m
		if m < int(k) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	return n, nil
}

// Commit stores the spooled bytes as k's entry with meta m (its Size must
// be the bytes written; the ETag should be the upstream's), unless k was
// invalidated since Stage: then nothing is stored and k's entry is dropped,
// because which of the two writes the upstream kept last is unknown. Fills
// of k in progress, which may bring what this write replaced, never store.
// Commit returns an error only when storing failed; the Pending is ended
// either way.
func (p *Pending) Commit(m Meta) error {
	if p.ended {
		return fmt.Errorf("cache: commit after commit or abort")
	}
	c := p.c
	if p.err != nil {
		p.Abort()
		return p.err
	}
	if m.Size != p.written || p.written != p.size {
		p.Abort()
		return fmt.Errorf("cache: commit %s/%s: meta size %d, declared %d, written %d", p.k.Bucket, p.k.Object, m.Size, p.size, p.written)
	}
	if p.size == 0 {
		seg, err := c.nextSegment(nil, 0, 0, false)
		if err != nil {
			p.Abort()
			return p.fail(err)
		}
		p.segs = append(p.segs, seg)
	}
	m.StoredAt, m.SHA256 = c.now(), [32]byte{}
	meta := encodeMeta(&m)
	var holds []*content
	var err error
	stale := func() bool { return p.stale }
	for _, seg := range p.segs {
		copy(seg.sum[:], seg.h.Sum(nil))
		var ct *content
		var rename bool
		if ct, rename, err = c.holdContent(seg.sum, seg.n, stale); err != nil {
			break
		}
		holds = append(holds, ct)
		if !rename {
			seg.t.Discard()
			seg.committed = true
			continue
		}
		if err = seg.t.Commit(seg.sum); err != nil {
			break
		}
		seg.committed = true
		c.mu.Lock()
		c.setLiveLocked(ct)
		c.mu.Unlock()
	}
	var victims []*content
	c.mu.Lock()
	invalidate := p.stale
	if err == nil && !p.stale && !c.closed {
		// A fill of k in progress began before the upstream took this
		// write, and may bring the bytes it replaced.
		c.staleFillsLocked(p.k.Bucket, func(object string) bool { return object == p.k.Object })
		for i, seg := range p.segs {
			victims = append(victims, c.storeLocked(p.b, p.k.Object, seg.idx, m.ETag, m.Size, meta, holds[i])...)
		}
	}
	for _, ct := range holds {
		victims = append(victims, c.unpinLocked(ct))
	}
	victims = c.endStageLocked(p, victims)
	c.mu.Unlock()
	p.closeSegments()
	c.unlink(victims)
	c.keepFreeDisk() // stages and fills committed together each saw the same free space
	if invalidate {
		c.Invalidate(p.k)
	}
	if err != nil && !errors.Is(err, errNotStored) {
		c.noteDiskError("commit", err)
		return fmt.Errorf("cache: commit %s/%s: %w", p.k.Bucket, p.k.Object, err)
	}
	return nil
}

// Abort discards the spool.
func (p *Pending) Abort() error {
	if p.ended {
		return nil
	}
	c := p.c
	c.mu.Lock()
	victims := c.endStageLocked(p, nil)
	c.mu.Unlock()
	p.closeSegments()
	c.unlink(victims)
	return nil
}

func (c *Cache) endStageLocked(p *Pending, victims []*content) []*content {
	p.ended = true
	c.reserveLocked(p.b, -p.reserved)
	p.reserved = 0
	delete(c.stages, p)
	return c.evictToLocked(c.o.MaxBytes, victims)
}

func (p *Pending) closeSegments() {
	for _, s := range p.segs {
		if !s.committed {
			s.t.Discard()
		}
		s.t.Close()
	}
	p.segs = nil
}
