package cache

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// fillKey names a fill: a whole object (idx whole) or one slice.
type fillKey struct {
	Key
	idx int64
}

// fill fetches one object or slice, streams it to every attached reader and,
// if admitted, stores it. It belongs to the cache, not to the caller that
// started it: its context is the cache's, so a caller leaving does not fail
// the others. Bytes go to segment files (one per slice, or one for a whole
// object) and readers follow them as they grow; when the fill is not stored
// (BYPASS, disk trouble, invalidated) the rest goes to a bounded memory
// window instead, released as the slowest reader passes it.
type fill struct {
	c       *Cache
	fk      fillKey
	b       *bucket
	fetch   Fetcher      // whole fills
	rf      RangeFetcher // slice fills
	ifMatch string
	base    int64 // object offset of the fill's first byte
	ctx     context.Context
	cancel  context.CancelFunc
	ready   chan struct{} // closed once meta or err is known
	onReady sync.Once
	stale   atomic.Bool // invalidated: never stored (set under Cache.mu)
	// abandoned: canceled because no reader is left to get the bytes.
	abandoned atomic.Bool

	// Cache.mu guards the following.
	readers  int        // attached readers not yet closed
	joinable bool       // registered in Cache.fills
	finished bool       // run has returned
	released bool       // files closed
	holds    []*content // contents of committed segments, pinned until released
	reserved int64      // bytes still reserved in Cache.reserved

	mu sync.Mutex
	// mu guards the following.
	meta          Meta
	metaB         []byte // encoded meta, shared by the entries it stores
	length        int64  // bytes the fill delivers
	written       int64  // bytes delivered so far
	diskEnd       int64  // bytes [0, diskEnd) are in segment files
	segs          []*segment
	win           []chunk // bytes [winStart, written) when bypassing
	winStart      int64
	cursors       map[*cursor]struct{}
	bypass        bool
	writerWaiting bool
	done          bool
	err           error
	wake          chan struct{} // closed and replaced on every change
}

// segment is one file of a fill: a slice, or a whole object. Only the fill
// goroutine writes its fields after creation; readers use t and off, which
// never change.
type segment struct {
	idx       int64
	off, n    int64 // fill offset and length
	t         Temp
	h         hash.Hash
	w         int64
	sum       [32]byte
	committed bool
}

// errNotStored stops a fill's writes to disk without being a disk error.
var errNotStored = errors.New("cache: not stored")

func (f *fill) wakeLocked() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// run is the fill's goroutine.
func (f *fill) run() {
	defer func() {
		if v := recover(); v != nil {
			f.c.log.Error("cache: fill panicked", "bucket", f.fk.Bucket, "key", f.fk.Object, "panic", v)
			f.end(fmt.Errorf("cache: fill %s/%s panicked: %v", f.fk.Bucket, f.fk.Object, v))
		}
	}()
	f.end(f.stream())
}

func (f *fill) stream() error {
	c := f.c
	var (
		meta Meta
		body io.ReadCloser
		err  error
	)
	if f.rf != nil {
		meta, body, err = f.rf.FetchRange(f.ctx, f.fk.Key, f.base, c.o.SliceSize, f.ifMatch)
	} else {
		meta, body, err = f.fetch.Fetch(f.ctx, f.fk.Key)
	}
	if err != nil {
		if errors.Is(err, ErrChanged) {
			f.dropChanged()
		}
		return fmt.Errorf("cache: fetch %s/%s: %w", f.fk.Bucket, f.fk.Object, err)
	}
	defer body.Close()
	length := meta.Size
	if f.rf != nil {
		if meta.Size < 0 {
			return fmt.Errorf("cache: fetch range of %s/%s: object size unknown", f.fk.Bucket, f.fk.Object)
		}
		if f.base >= meta.Size {
			return ErrInvalidRange
		}
		length = min(c.o.SliceSize, meta.Size-f.base)
	}
	if f.ifMatch != "" && meta.ETag != f.ifMatch {
		f.dropChanged()
		return ErrChanged
	}
	f.start(meta, length)
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	var got int64
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if length >= 0 && got+int64(n) > length {
				return ErrLongBody
			}
			got += int64(n)
			c.stats.bytesFilled.Add(int64(n))
			if err := f.deliver(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("cache: fill %s/%s: %w", f.fk.Bucket, f.fk.Object, rerr)
		}
	}
	if length >= 0 && got != length {
		return ErrShortBody
	}
	f.storeLast()
	return nil
}

// dropChanged removes the stored slices of the version this slice fill
// asked for with If-Match: the origin has another one now, and readers
// would otherwise take their meta from them and fail again on every retry.
func (f *fill) dropChanged() {
	if f.ifMatch == "" {
		return
	}
	c := f.c
	c.mu.Lock()
	var victims []*content
	if v := f.b.sliced[f.fk.Object]; v != nil && v.etag == f.ifMatch {
		for _, e := range v.slices {
			victims = append(victims, c.removeEntryLocked(e, false))
		}
	}
	c.mu.Unlock()
	c.unlink(victims)
}

// start decides whether the fill is stored and publishes its meta.
func (f *fill) start(meta Meta, length int64) {
	c := f.c
	meta.StoredAt = c.now()
	meta.SHA256 = [32]byte{}
	var freeShort int64
	if c.o.MinFreeDisk > 0 && length > 0 {
		if free, err := c.store.Free(); err == nil {
			freeShort = c.o.MinFreeDisk + length - free
		}
	}
	c.mu.Lock()
	admitted := false
	var victims []*content
	if !f.stale.Load() && !c.closed && length >= 0 && meta.Size >= 0 {
		admitted, victims = c.admitLocked(f.b, ekey{f.fk.Object, f.fk.idx}, length, freeShort)
	}
	if admitted {
		f.reserved = length
	} else if f.readers == 0 {
		c.abandonLocked(f)
	}
	c.mu.Unlock()
	c.unlink(victims)

	f.mu.Lock()
	f.meta, f.metaB, f.length, f.bypass = meta, encodeMeta(&meta), length, !admitted
	f.mu.Unlock()
	f.onReady.Do(func() { close(f.ready) })
	// The callers waiting on ready can answer with headers now; let them
	// run before this goroutine goes on to copy and hash the body (a
	// single cold miss reached its first byte 0.6 ms sooner).
	runtime.Gosched()
}

// unjoinLocked stops new callers from joining f (a fill that will not be
// stored may not be able to hand them the bytes already passed).
func (c *Cache) unjoinLocked(f *fill) {
	if f.joinable && c.fills[f.fk] == f {
		delete(c.fills, f.fk)
	}
	f.joinable = false
}

// deliver hands p to readers: through the segment files, or through the
// window once the fill is not stored.
func (f *fill) deliver(p []byte) error {
	f.mu.Lock()
	bypass := f.bypass
	f.mu.Unlock()
	if !bypass {
		err := errNotStored
		if !f.stale.Load() {
			err = f.writeDisk(p)
		}
		if err == nil {
			f.mu.Lock()
			f.written += int64(len(p))
			f.diskEnd = f.written
			f.wakeLocked()
			f.mu.Unlock()
			return nil
		}
		if !errors.Is(err, errNotStored) {
			f.c.noteDiskError("write", err)
		}
		f.toBypass()
	}
	return f.appendWindow(p)
}

// writeDisk appends p to the segment files, committing each slice as it
// completes (the last one waits for the end of the body).
func (f *fill) writeDisk(p []byte) error {
	sliced := f.fk.idx != whole || f.length > f.c.o.SliceThreshold
	_, err := f.c.writeSegments(&f.segs, &f.mu, p, f.base, f.length, sliced, func(seg *segment) error {
		if seg.off+seg.n < f.length {
			return f.commitSegment(seg)
		}
		return nil
	})
	return err
}

// writeSegments appends p to the segments *segs holding length bytes from
// object offset base, creating segments as needed (appended under mu, if
// any, for readers), and calls full with each segment that fills up.
func (c *Cache) writeSegments(segs *[]*segment, mu *sync.Mutex, p []byte, base, length int64, sliced bool, full func(*segment) error) (int, error) {
	n := 0
	for n < len(p) {
		var seg *segment
		if k := len(*segs); k > 0 && (*segs)[k-1].w < (*segs)[k-1].n {
			seg = (*segs)[k-1]
		} else {
			var err error
			if seg, err = c.nextSegment(*segs, base, length, sliced); err != nil {
				return n, err
			}
			if mu != nil {
				mu.Lock()
			}
			*segs = append(*segs, seg)
			if mu != nil {
				mu.Unlock()
			}
		}
		k := min(int64(len(p)-n), seg.n-seg.w)
		w, err := seg.t.Write(p[n : n+int(k)])
		seg.h.Write(p[n : n+w])
		seg.w += int64(w)
		n += w
		if err != nil {
			return n, err
		}
		if seg.w == seg.n && full != nil {
			if err := full(seg); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// nextSegment creates the segment after segs for data of length bytes
// starting at object offset base: the next aligned slice, or one segment
// for a whole object.
func (c *Cache) nextSegment(segs []*segment, base, length int64, sliced bool) (*segment, error) {
	seg := &segment{idx: whole, n: length, h: sha256.New()}
	if n := len(segs); n > 0 {
		prev := segs[n-1]
		seg.idx, seg.off = prev.idx+1, prev.off+prev.n
	} else if sliced {
		seg.idx = base / c.o.SliceSize
	}
	if seg.idx != whole {
		seg.n = segmentLen(base, seg.off, length, c.o.SliceSize)
	}
	t, err := c.store.Create()
	if err != nil {
		return nil, err
	}
	seg.t = t
	return seg, nil
}

// storeLast commits the last segment once the body ended at its size.
func (f *fill) storeLast() {
	f.mu.Lock()
	bypass := f.bypass
	f.mu.Unlock()
	if bypass || f.stale.Load() {
		return
	}
	if f.length == 0 && len(f.segs) == 0 {
		seg, err := f.c.nextSegment(nil, f.base, 0, false)
		if err != nil {
			f.c.noteDiskError("write", err)
			return
		}
		f.mu.Lock()
		f.segs = append(f.segs, seg)
		f.mu.Unlock()
	}
	seg := f.segs[len(f.segs)-1]
	if err := f.commitSegment(seg); err != nil && !errors.Is(err, errNotStored) {
		f.c.noteDiskError("commit", err)
	}
}

// commitSegment names a complete segment by its hash and indexes it, unless
// the fill was invalidated since it started.
func (f *fill) commitSegment(seg *segment) error {
	c := f.c
	copy(seg.sum[:], seg.h.Sum(nil))
	ct, rename, err := c.holdContent(seg.sum, seg.n, func() bool { return f.stale.Load() })
	if err != nil {
		return err
	}
	c.mu.Lock()
	f.holds = append(f.holds, ct)
	c.mu.Unlock()
	if rename {
		err = seg.t.Commit(seg.sum)
	} else {
		seg.t.Discard()
	}
	if err != nil {
		return err
	}
	seg.committed = true
	c.mu.Lock()
	if rename {
		c.setLiveLocked(ct)
	}
	var victims []*content
	if !f.stale.Load() && !c.closed {
		f.mu.Lock()
		meta, metaB := f.meta, f.metaB
		f.mu.Unlock()
		victims = c.storeLocked(f.b, f.fk.Object, seg.idx, meta.ETag, meta.Size, metaB, ct)
	}
	n := min(seg.n, f.reserved)
	c.reserveLocked(f.b, -n)
	f.reserved -= n
	victims = c.evictToLocked(c.o.MaxBytes, victims)
	c.mu.Unlock()
	c.unlink(victims)
	// Fills admitted together each saw the same free space.
	c.keepFreeDisk()
	return nil
}

// holdContent pins the content record for sum before its file is put in
// place, waiting if a file of that name is being removed. rename reports
// whether the file must be (re)written: not if a verified one is in place.
func (c *Cache) holdContent(sum [32]byte, size int64, stale func() bool) (*content, bool, error) {
	for {
		c.mu.Lock()
		if stale() || c.closed {
			c.mu.Unlock()
			return nil, false, errNotStored
		}
		ct, wait := c.acquireLocked(sum, size)
		if wait == nil {
			rename := !ct.live || ct.bad || !ct.verified.Load()
			c.mu.Unlock()
			return ct, rename, nil
		}
		c.mu.Unlock()
		<-wait
	}
}

// end records the fill's outcome, wakes every reader and releases what the
// fill holds once no reader is left.
func (f *fill) end(err error) {
	c := f.c
	f.mu.Lock()
	if err != nil && f.err == nil {
		f.err = err
	}
	f.done = true
	f.wakeLocked()
	f.mu.Unlock()
	f.onReady.Do(func() { close(f.ready) })
	if err != nil && !f.abandoned.Load() {
		c.stats.fillErrors.Add(1)
	}
	c.mu.Lock()
	c.unjoinLocked(f)
	c.reserveLocked(f.b, -f.reserved)
	f.reserved = 0
	f.finished = true
	release := c.releaseFillLocked(f)
	c.mu.Unlock()
	release()
	f.cancel()
	if c.hookFillEnd != nil {
		c.hookFillEnd()
	}
}

// releaseFillLocked releases f's files and pins once it has ended and no
// reader is left. The returned function does the I/O, without c.mu.
func (c *Cache) releaseFillLocked(f *fill) func() {
	if !f.finished || f.readers > 0 || f.released {
		return func() {}
	}
	f.released = true
	var victims []*content
	for _, ct := range f.holds {
		victims = append(victims, c.unpinLocked(ct))
	}
	f.holds = nil
	f.mu.Lock()
	segs, win := f.segs, f.win
	f.segs, f.win = nil, nil
	f.mu.Unlock()
	return func() {
		for _, s := range segs {
			if !s.committed {
				s.t.Discard()
			}
			s.t.Close()
		}
		for _, ch := range win {
			chunkPool.Put(ch.buf)
		}
		c.unlink(victims)
	}
}
