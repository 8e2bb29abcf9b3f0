package cache

import (
	"context"
	"errors"
	"math"
	"time"
)

// Get returns a Reader over the object k: from its stored file (Hit), or
// from a fill that fetches it once however many callers ask at once (Miss
// for the caller that started it, Coalesced for the others, Bypass when
// the object will not be stored). Get returns once the object's Meta is
// known, so the caller can write headers; the body streams as it arrives.
// An error before the Meta (the fetcher's, wrapped) is returned by Get;
// one after it by the Reader's reads. ctx bounds only this caller's waits:
// the fill goes on for the others, and is stored if admitted.
//
// If fetch also implements RangeFetcher and the object is stored in
// slices, the missing slices are fetched by range instead of refetching the
// whole object.
//
// A nil fetch (or, for GetRange, a nil rf) serves a fresh whole object
// that is stored already, and nothing else: for anything else it returns
// ErrMiss having fetched, revalidated, counted and recorded nothing, so
// that the caller may ask again with a fetcher as if it had not asked.
func (c *Cache) Get(ctx context.Context, k Key, fetch Fetcher, o GetOptions) (*Reader, Status, error) {
	rf, _ := fetch.(RangeFetcher)
	return c.get(ctx, k, 0, math.MaxInt64, false, fetch, rf, o)
}

// GetRange returns a Reader over bytes [off, off+n) of the object k (n < 0:
// to the end), clamped to the object's size. A stored whole object serves
// it; otherwise it is served from aligned slices of Options.SliceSize keyed
// by (key, ETag, slice): stored slices are hits, missing ones are fetched
// with rf one slice at a time as the reader reaches them (one slice ahead),
// each fetch coalesced with concurrent ranges over the same slice. The
// Reader reads one version: if a later slice comes back with another ETag,
// its reads fail with ErrChanged. An off at or beyond the end is
// ErrInvalidRange. Status is Hit if every slice was stored, Coalesced if
// the first missing one was being fetched already, Miss otherwise.
func (c *Cache) GetRange(ctx context.Context, k Key, off, n int64, rf RangeFetcher, o GetOptions) (*Reader, Status, error) {
	if off < 0 || n == 0 {
		return nil, 0, ErrInvalidRange
	}
	if n < 0 || off+n < off {
		n = math.MaxInt64 - off
	}
	return c.get(ctx, k, off, n, true, nil, rf, o)
}

// get serves Get and GetRange (ranged).
func (c *Cache) get(ctx context.Context, k Key, off, n int64, ranged bool, fetch Fetcher, rf RangeFetcher, o GetOptions) (*Reader, Status, error) {
	S := c.o.SliceSize
	wholeKey := ekey{k.Object, whole}
	firstKey := wholeKey
	if ranged {
		firstKey = ekey{k.Object, off / S}
	}
	h := c.keyHash(k.Bucket, firstKey)
	storedOnly := fetch == nil && rf == nil
	recorded, checked, stale := false, false, false
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, 0, ErrClosed
		}
		b := c.bucketLocked(k.Bucket)
		e, hit := b.get(wholeKey)
		if hit && e.ct.bad {
			victim := c.removeEntryLocked(e, false)
			c.mu.Unlock()
			c.unlink([]*content{victim})
			continue
		}
		var meta []byte
		v := b.sliced[k.Object]
		switch {
		case hit:
			meta = e.meta
		case v != nil && rf != nil:
			meta = v.meta
		}
		if meta != nil && !checked && !c.freshLocked(meta, o) {
			c.mu.Unlock()
			if storedOnly {
				return nil, 0, ErrMiss
			}
			var err error
			if stale, err = c.revalidate(ctx, k, meta, o); err != nil {
				return nil, 0, err
			}
			checked = true
			continue
		}
		// A sliced read records each slice; a stored-only lookup only
		// what it serves.
		if !recorded && (hit || meta == nil && !storedOnly) {
			c.sketch.Add(h)
			recorded = true
		}
		if meta != nil {
			size := metaSize(meta)
			if off >= size && (ranged || size > 0) {
				c.mu.Unlock()
				return nil, 0, ErrInvalidRange
			}
			r := c.newReader(ctx, k, rf)
			r.setWindow(off, min(n, size-off))
			status := Hit
			var sum [32]byte
			if hit {
				c.pinEntryLocked(e)
				sum = e.ct.sum
				r.parts[0] = part{start: off, end: off + r.size, idx: whole, ct: e.ct, h: c.handleLocked(e.ct)}
			} else {
				status = c.slicePartsLocked(r, b, v)
			}
			c.mu.Unlock()
			// Decoded outside the lock every hit takes: meta bytes are
			// never changed in place (withStoredAt copies).
			if decodeMeta(meta, &r.meta) != nil {
				r.meta = Meta{Size: -1}
			}
			r.meta.SHA256 = sum
			if r.parts[0].ct != nil {
				if err := r.openPart(0); err != nil {
					r.Close()
					if errors.Is(err, ErrCorrupt) {
						continue // the entry is dropped on the next lookup: refetch
					}
					return nil, 0, err
				}
			}
			if stale && status == Hit {
				status = Stale
			}
			c.countStatus(status)
			return r, status, nil
		}
		if storedOnly {
			c.mu.Unlock()
			return nil, 0, ErrMiss
		}
		fk := fillKey{k, whole}
		if ranged {
			fk.idx = off / S
		}
		base := max(fk.idx, 0) * S
		f, status := c.fills[fk], Coalesced
		cur := c.attachLocked(f, off-base)
		if cur == nil {
			if !ranged {
				f = c.newFillLocked(b, fk, fetch, nil, base, "")
			} else {
				f = c.newFillLocked(b, fk, nil, rf, base, "")
			}
			status, cur = Miss, c.attachLocked(f, off-base)
		}
		c.mu.Unlock()
		return c.fillReader(ctx, k, f, cur, off, n, status)
	}
}

// slicePartsLocked fills r's parts for its window from the stored slices of
// v, leaving missing slices to resolveSlice, and returns the status.
func (c *Cache) slicePartsLocked(r *Reader, b *bucket, v *version) Status {
	S := c.o.SliceSize
	r.parts = r.parts[:0]
	status := Hit
	for sp := range slicesOf(r.off, r.off+r.size, S) {
		pt := part{start: sp.start, end: sp.end, base: sp.idx * S, idx: sp.idx}
		c.sketch.Add(c.keyHash(b.name, ekey{r.key.Object, sp.idx}))
		if e, ok := v.slices[sp.idx]; ok && !e.ct.bad {
			b.lru.Get(e)
			c.pinEntryLocked(e)
			pt.ct, pt.h = e.ct, c.handleLocked(e.ct)
		} else if status == Hit {
			status = Miss
			if c.fills[fillKey{r.key, sp.idx}] != nil {
				status = Coalesced
			}
		}
		r.parts = append(r.parts, pt)
	}
	return status
}

// Stat returns the stored Meta of k without fetching, counting or
// revalidating: for HEAD requests.
func (c *Cache) Stat(k Key) (Meta, bool) {
	meta, sum := c.storedMeta(k)
	var m Meta
	if meta == nil || decodeMeta(meta, &m) != nil { // outside the lock: meta bytes never change
		return Meta{}, false
	}
	m.SHA256 = sum
	return m, true
}

// Head returns the meta of k as Get would serve it under o, for a HEAD:
// an entry past o.MaxAge is revalidated first, once for all concurrent
// callers (and Get's). ok is false when nothing is stored, when the
// revalidation found another version or none (the caller asks the
// origin), or when the entry is past o.MaxAge and o.Validate is nil (a
// stored-only lookup, as Get's with no fetcher). Status is Hit, or Stale
// when the revalidation failed under o.StaleIfError.
func (c *Cache) Head(ctx context.Context, k Key, o GetOptions) (m Meta, st Status, ok bool, err error) {
	meta, sum := c.storedMeta(k)
	if meta == nil {
		return Meta{}, 0, false, nil
	}
	st = Hit
	if o.MaxAge > 0 && c.now().Sub(metaStoredAt(meta)) > o.MaxAge {
		if o.Validate == nil {
			return Meta{}, 0, false, nil
		}
		stale, err := c.revalidate(ctx, k, meta, o)
		switch {
		case err != nil:
			return Meta{}, 0, false, err
		case stale:
			st = Stale
			c.stats.stale.Add(1)
		default: // renewed, or dropped if it changed
			if meta, sum = c.storedMeta(k); meta == nil {
				return Meta{}, 0, false, nil
			}
		}
	}
	if decodeMeta(meta, &m) != nil {
		return Meta{}, 0, false, nil
	}
	m.SHA256 = sum
	return m, st, true, nil
}

// storedMeta returns, under c.mu, the stored meta bytes of k and, for a
// whole object, its content hash; nil if k is not stored.
func (c *Cache) storedMeta(k Key) ([]byte, [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buckets[k.Bucket]
	if b == nil {
		return nil, [32]byte{}
	}
	if e, ok := b.peek(ekey{k.Object, whole}); ok && !e.ct.bad {
		return e.meta, e.ct.sum
	}
	if v := b.sliced[k.Object]; v != nil {
		return v.meta, [32]byte{}
	}
	return nil, [32]byte{}
}

func (c *Cache) newReader(ctx context.Context, k Key, rf RangeFetcher) *Reader {
	r := &Reader{c: c, ctx: ctx, key: k, rf: rf}
	r.parts = r.one[:]
	return r
}

func (r *Reader) setWindow(off, n int64) { r.off, r.size = off, n }

// pinEntryLocked keeps e's file for a reader and records the access.
func (c *Cache) pinEntryLocked(e *entry) {
	e.ct.pins++
	c.touchLocked(e)
}

func (c *Cache) countStatus(s Status) {
	switch s {
	case Hit:
		c.stats.hits.Add(1)
	case Stale:
		c.stats.stale.Add(1)
	case Miss:
		c.stats.misses.Add(1)
	case Coalesced:
		c.stats.coalesced.Add(1)
	case Bypass:
		c.stats.bypass.Add(1)
	}
}

// newFillLocked registers a fill and starts its goroutine.
func (c *Cache) newFillLocked(b *bucket, fk fillKey, fetch Fetcher, rf RangeFetcher, base int64, ifMatch string) *fill {
	ctx, cancel := c.fillContext()
	f := &fill{
		c: c, fk: fk, b: b, fetch: fetch, rf: rf, ifMatch: ifMatch, base: base,
		ctx: ctx, cancel: cancel, ready: make(chan struct{}), wake: make(chan struct{}),
		joinable: true,
	}
	c.fills[fk] = f
	c.goBackgroundLocked(f.run) // c.closed is false under c.mu: Close has not started waiting
	return f
}

// fillContext is the context of work the cache does for all its callers.
func (c *Cache) fillContext() (context.Context, context.CancelFunc) {
	if c.o.FillTimeout > 0 {
		return context.WithTimeout(c.ctx, c.o.FillTimeout)
	}
	return context.WithCancel(c.ctx)
}

// fillReader waits for f's meta and returns a Reader over object bytes
// [off, off+n) read from f (n < 0: all that f delivers), detaching on error.
func (c *Cache) fillReader(ctx context.Context, k Key, f *fill, cur *cursor, off, n int64, status Status) (*Reader, Status, error) {
	var err error
	var timeout <-chan time.Time
	if c.o.MissTimeout > 0 {
		t := time.NewTimer(c.o.MissTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-f.ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-timeout:
		err = ErrMissTimeout
	}
	var meta Meta
	var length int64
	if err == nil {
		f.mu.Lock()
		err, meta, length = f.err, f.meta, f.length
		if status == Miss && f.bypass {
			status = Bypass
		}
		f.mu.Unlock()
	}
	if err == nil && f.rf != nil && off >= meta.Size {
		err = ErrInvalidRange
	}
	if err != nil {
		c.mu.Lock()
		release := c.detachLocked(f, cur)
		c.mu.Unlock()
		release()
		return nil, 0, err
	}
	r := &Reader{c: c, ctx: ctx, key: k, meta: meta}
	r.parts = r.one[:]
	if f.rf == nil { // whole fill
		size := length
		if size < 0 {
			size = math.MaxInt64 // unknown: read to the end of the body
		}
		r.setWindow(0, size)
		r.parts[0] = part{start: 0, end: size, idx: whole, fl: f, cur: cur, checked: true}
		c.countStatus(status)
		return r, status, nil
	}
	// First slice of a range: the object's size is known now.
	S := c.o.SliceSize
	end := off + min(n, meta.Size-off)
	r.rf = f.rf
	r.setWindow(off, end-off)
	r.parts = r.parts[:0]
	c.mu.Lock()
	for sp := range slicesOf(off, end, S) {
		pt := part{start: sp.start, end: sp.end, base: sp.idx * S, idx: sp.idx}
		if sp.idx == f.fk.idx {
			pt.fl, pt.cur, pt.checked = f, cur, true
		} else {
			c.sketch.Add(c.keyHash(k.Bucket, ekey{k.Object, sp.idx}))
		}
		r.parts = append(r.parts, pt)
	}
	c.mu.Unlock()
	c.countStatus(status)
	return r, status, nil
}

// resolveSlice makes missing part i of a sliced read a stored file or a
// fill (joining one in progress), and starts the fetch of the next missing
// part too, so that one slice downloads while the previous one is read.
func (c *Cache) resolveSlice(r *Reader, i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	b := c.bucketLocked(r.key.Bucket)
	for j := i; j < len(r.parts) && j <= i+1; j++ {
		pt := &r.parts[j]
		if pt.ct != nil || pt.fl != nil {
			continue
		}
		if v := b.sliced[r.key.Object]; v != nil && v.etag == r.meta.ETag {
			if e, ok := v.slices[pt.idx]; ok && !e.ct.bad {
				b.lru.Get(e)
				c.pinEntryLocked(e)
				pt.ct, pt.h = e.ct, c.handleLocked(e.ct)
				continue
			}
		}
		fk := fillKey{r.key, pt.idx}
		f := c.fills[fk]
		cur := c.attachLocked(f, pt.start-pt.base)
		if cur == nil {
			f = c.newFillLocked(b, fk, nil, r.rf, pt.base, r.meta.ETag)
			cur = c.attachLocked(f, pt.start-pt.base)
		}
		pt.fl, pt.cur = f, cur
	}
	return nil
}
