package cache

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Invalidate drops k's stored entries (whole and slices) and makes every
// fill and Pending of k that started before the call unable to store: a fill
// that started before a write never commits over it. Readers already open
// keep reading what they had. When Invalidate returns, the removal is
// durable in index.db, so a restart cannot bring the old version back
// (unless index.db could not be written: then the removal is retried, and
// the failure counted in Stats.DiskErrors).
func (c *Cache) Invalidate(k Key) {
	c.purge(k.Bucket, k.Object, true)
}

// Purge invalidates every entry of bucket whose name starts with prefix
// (bucket "" means all buckets), as Invalidate does for one key, and returns
// the number of entries and bytes dropped.
func (c *Cache) Purge(bucket, prefix string) (n int, bytes int64) {
	if bucket == "" {
		c.mu.Lock()
		names := make([]string, 0, len(c.buckets))
		for name := range c.buckets {
			names = append(names, name)
		}
		c.mu.Unlock()
		for _, name := range names {
			bn, bb := c.purge(name, prefix, false)
			n, bytes = n+bn, bytes+bb
		}
		return n, bytes
	}
	return c.purge(bucket, prefix, false)
}

// purge drops the entries of bucket named object (exact) or starting with
// it, and marks matching fills and stages stale.
func (c *Cache) purge(bucket, object string, exact bool) (n int, bytes int64) {
	match := func(name string) bool {
		if exact {
			return name == object
		}
		return strings.HasPrefix(name, object)
	}
	var victims []*content
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, 0
	}
	c.staleFillsLocked(bucket, match)
	for p := range c.stages {
		if p.k.Bucket == bucket && match(p.k.Object) {
			p.stale = true
		}
	}
	if b := c.buckets[bucket]; b != nil {
		var drop []*entry
		if exact {
			if e, ok := b.peek(ekey{object, whole}); ok {
				drop = append(drop, e)
			}
			if v := b.sliced[object]; v != nil {
				for _, e := range v.slices {
					drop = append(drop, e)
				}
			}
		} else {
			for k, e := range b.index {
				if match(k.object) {
					drop = append(drop, e)
				}
			}
		}
		for _, e := range drop {
			n++
			bytes += e.ct.size
			victims = append(victims, c.removeEntryLocked(e, false))
		}
	}
	ticket := c.j.Queued()
	c.mu.Unlock()
	c.unlink(victims)
	// If index.db cannot be written, the removal stays queued and is
	// retried (counted as a disk error). With nothing dropped now, no
	// wait: an eviction of the key may still be on its way to index.db,
	// but waiting for every write's batch made the http real-client
	// suite half again as slow (1m50 to 2m48), and a write's second
	// Invalidate, after the upstream's answer, comes long after that
	// batch.
	if n > 0 {
		c.j.Wait(c.ctx, ticket)
	}
	return n, bytes
}

// staleFillsLocked makes the fills of bucket whose object matches unable
// to store, and leaves them to the readers they have: they started before
// a write, and may bring the object as it was before it.
func (c *Cache) staleFillsLocked(bucket string, match func(object string) bool) {
	for fk, f := range c.fills {
		if fk.Bucket == bucket && match(fk.Object) {
			f.stale.Store(true)
			c.unjoinLocked(f)
			if f.readers == 0 {
				c.abandonLocked(f)
			}
		}
	}
}

// storeLocked indexes a committed file of object in b: the whole object
// (idx whole) or slice idx of version etag. Stored data of another version
// of the object is dropped (it changed at the origin), unless it was
// stored after this one was fetched: a fill of the older version that
// ends late stores nothing. Slices are dropped when the whole object is
// stored.
func (c *Cache) storeLocked(b *bucket, object string, idx int64, etag string, size int64, meta []byte, ct *content) []*content {
	newer := func(other []byte) bool { return metaStoredAt(other).After(metaStoredAt(meta)) }
	e, hasWhole := b.peek(ekey{object, whole})
	v := b.sliced[object]
	if hasWhole && metaETag(e.meta) != etag && newer(e.meta) || v != nil && v.etag != etag && newer(v.meta) {
		return nil
	}
	var victims []*content
	if hasWhole && idx != whole && metaETag(e.meta) != etag {
		victims = append(victims, c.removeEntryLocked(e, false))
	}
	if v != nil && (idx == whole || v.etag != etag) {
		for _, e := range v.slices {
			victims = append(victims, c.removeEntryLocked(e, false))
		}
		v = nil
	}
	if idx == whole {
		return append(victims, c.addEntryLocked(b, ekey{object, whole}, meta, nil, ct))
	}
	if v == nil {
		v = &version{meta: meta, etag: etag, size: size, slices: make(map[int64]*entry)}
		b.sliced[object] = v
	}
	return append(victims, c.addEntryLocked(b, ekey{object, idx}, nil, v, ct))
}

// metaETag returns the ETag of an encoded Meta.
func metaETag(b []byte) string {
	if len(b) < metaFixedLen {
		return ""
	}
	s, _, _ := readString(b[metaFixedLen:])
	return s
}

// freshLocked reports whether an entry may be served under o without
// revalidation.
func (c *Cache) freshLocked(meta []byte, o GetOptions) bool {
	return o.MaxAge <= 0 || o.Validate == nil || c.now().Sub(metaStoredAt(meta)) <= o.MaxAge
}

// reval is a revalidation in progress; concurrent callers share it.
type reval struct {
	done      chan struct{}
	unchanged bool
	err       error
}

// revalidate runs o.Validate for the stored version meta of k, once for
// all concurrent callers, in a goroutine of the cache. Unchanged: the
// entry's StoredAt is renewed. Changed: k is invalidated. Failed: stale is
// true with StaleIfError, else the error is returned.
func (c *Cache) revalidate(ctx context.Context, k Key, meta []byte, o GetOptions) (stale bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, ErrClosed
	}
	rv := c.revals[k]
	if rv == nil {
		rv = &reval{done: make(chan struct{})}
		c.revals[k] = rv
		var m Meta
		if err := decodeMeta(meta, &m); err != nil {
			m = Meta{Size: -1}
		}
		c.goBackgroundLocked(func() { c.runRevalidate(k, meta, m, rv, o.Validate) })
	}
	c.mu.Unlock()
	// A silent origin is bounded like a miss: the revalidation goes on for
	// the next caller, this one gets the stale entry or ErrMissTimeout.
	var timeout <-chan time.Time
	if c.o.MissTimeout > 0 {
		t := time.NewTimer(c.o.MissTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-rv.done:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-timeout:
		if o.StaleIfError {
			return true, nil
		}
		return false, fmt.Errorf("cache: revalidate %s/%s: %w", k.Bucket, k.Object, ErrMissTimeout)
	}
	if rv.err != nil {
		if o.StaleIfError {
			return true, nil
		}
		return false, fmt.Errorf("cache: revalidate %s/%s: %w", k.Bucket, k.Object, rv.err)
	}
	return false, nil
}

func (c *Cache) runRevalidate(k Key, meta []byte, m Meta, rv *reval, validate func(context.Context, Key, Meta) (bool, error)) {
	defer close(rv.done)
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("cache: revalidation panicked", "bucket", k.Bucket, "key", k.Object, "panic", v)
			rv.err = fmt.Errorf("cache: revalidation panicked: %v", v)
		}
		c.mu.Lock()
		if c.revals[k] == rv {
			delete(c.revals, k)
		}
		c.mu.Unlock()
	}()
	ctx, cancel := c.fillContext()
	defer cancel()
	rv.unchanged, rv.err = validate(ctx, k, m)
	if rv.err != nil {
		return
	}
	if !rv.unchanged {
		c.Invalidate(k)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buckets[k.Bucket]
	if b == nil {
		return
	}
	now := c.now()
	if e, ok := b.peek(ekey{k.Object, whole}); ok && sameBytes(e.meta, meta) {
		e.meta = withStoredAt(e.meta, now)
		c.j.Put(record(e))
	}
	if v := b.sliced[k.Object]; v != nil && sameBytes(v.meta, meta) {
		v.meta = withStoredAt(v.meta, now)
		for _, e := range v.slices {
			c.j.Put(record(e))
		}
	}
}

// sameBytes reports whether a and b are the same encoded meta (not a copy).
func sameBytes(a, b []byte) bool {
	return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0]
}
