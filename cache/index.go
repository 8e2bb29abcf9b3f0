package cache

import (
	"encoding/binary"
	"slices"
	"sync/atomic"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/s3edge/s3edge/cache/indexdb"
)

// The in-memory index. Every type and method here is guarded by Cache.mu
// (methods end in Locked) except where a field says otherwise.

// whole is the slice index of an object stored in one file.
const whole = -1

// ekey names an entry within its bucket: a whole object or one slice.
type ekey struct {
	object string
	idx    int64
}

// bucket is one virtual bucket's share of the index.
type bucket struct {
	name   string
	weight float64
	cap    int64
	index  map[ekey]*entry                  // entries by key
	lru    *simplelru.LRU[*entry, struct{}] // recency; the oldest is evicted first
	bytes  int64                            // sum of its entries' sizes
	// reserved is what its fills and stages in progress promised: a
	// bucket's cap and weighted share count them, or concurrent fills
	// would each see room for themselves.
	reserved int64
	sliced   map[string]*version // objects stored as slices, by name
}

// The LRU is keyed by entry pointer, not by name: it hashes 8 bytes instead
// of the object name, and the index map can be sized up front at Open.

func (b *bucket) peek(k ekey) (*entry, bool) { e, ok := b.index[k]; return e, ok }

// get looks k up and records the access.
func (b *bucket) get(k ekey) (*entry, bool) {
	e, ok := b.index[k]
	if ok {
		b.lru.Get(e)
	}
	return e, ok
}

func (b *bucket) oldest() (*entry, bool) { e, _, ok := b.lru.GetOldest(); return e, ok }
func (b *bucket) add(e *entry)           { b.index[e.k] = e; b.lru.Add(e, struct{}{}) }
func (b *bucket) remove(e *entry)        { delete(b.index, e.k); b.lru.Remove(e) }

// entry is one stored file under one key: a whole object or a slice.
type entry struct {
	b     *bucket
	k     ekey
	meta  []byte   // encoded Meta of a whole object; nil for a slice (see ver)
	ver   *version // the object version a slice belongs to
	ct    *content
	seq   uint64 // access clock value of the last access
	dirty bool   // in Cache.dirty, seq not yet flushed
	gone  bool   // removed from the index
}

func (e *entry) metaBytes() []byte {
	if e.ver != nil {
		return e.ver.meta
	}
	return e.meta
}

// version is the version (ETag) of a sliced object whose slices are stored.
type version struct {
	meta   []byte // encoded Meta of the whole object
	etag   string
	size   int64
	slices map[int64]*entry
}

// content is one content file, shared by every entry with the same bytes.
// It is unlinked when no entry refers to it and nothing pins it.
type content struct {
	sum       [32]byte
	size      int64
	refs      int32         // entries referring to it
	pins      int32         // open readers and fills holding it
	live      bool          // the file is in place and counted in Cache.used
	bad       bool          // failed its check; entries using it are dropped on sight
	loaded    bool          // read from index.db, file not yet seen by scrub
	seen      bool          // scrub saw the file
	unlinking chan struct{} // non-nil while its file is being removed; closed after
	verified  atomic.Bool   // hash checked since Open (or written by this process)
}

func (c *Cache) bucketLocked(name string) *bucket {
	if b := c.buckets[name]; b != nil {
		return b
	}
	l := c.o.Buckets[name]
	b := &bucket{name: name, weight: l.Weight, cap: l.MaxBytes,
		index: make(map[ekey]*entry), sliced: make(map[string]*version)}
	if b.weight == 0 {
		b.weight = 1
	}
	b.lru, _ = simplelru.NewLRU[*entry, struct{}](1<<62, nil) // bounded by bytes, not count
	c.buckets[name] = b
	return b
}

// keyHash is the admission filter's identity of an entry: a 64-bit hash
// of (bucket, object, slice) salted per Cache, so that clients cannot aim
// at collisions (tests fix the salt for reproducible hit ratios).
func (c *Cache) keyHash(bucket string, k ekey) uint64 {
	h := hashString(c.salt^uint64(k.idx)*0x9e3779b97f4a7c15, bucket)
	h = hashString(h^0xff, k.object)
	h = (h ^ h>>30) * 0xbf58476d1ce4e5b9 // splitmix64 finaliser
	h = (h ^ h>>27) * 0x94d049bb133111eb
	return h ^ h>>31
}

// hashString mixes s into h eight bytes at a time.
func hashString(h uint64, s string) uint64 {
	for ; len(s) >= 8; s = s[8:] {
		h = (h ^ binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s), 8))) * 0xff51afd7ed558ccd
		h ^= h >> 32
	}
	for i := range len(s) {
		h = (h ^ uint64(s[i])) * 0x100000001b3
	}
	return h ^ uint64(len(s))
}

// touchLocked records an access for the persisted recency order.
func (c *Cache) touchLocked(e *entry) {
	c.tick++
	e.seq = c.tick
	if !e.dirty {
		e.dirty = true
		c.dirty = append(c.dirty, e)
	}
}

// addEntryLocked indexes ct under (b, k), replacing an entry already there,
// and queues the record for index.db. It returns a file to unlink, if any.
func (c *Cache) addEntryLocked(b *bucket, k ekey, meta []byte, ver *version, ct *content) *content {
	var victim *content
	if old, ok := b.peek(k); ok {
		victim = c.removeEntryLocked(old, false)
	}
	e := &entry{b: b, k: k, meta: meta, ver: ver, ct: ct}
	ct.refs++
	b.bytes += ct.size
	c.entries++
	b.add(e)
	if ver != nil {
		ver.slices[k.idx] = e
	}
	c.touchLocked(e)
	c.j.Put(record(e))
	if c.entries > int64(c.sketchCap) && c.sketchCap < maxSketch {
		c.sketchCap *= 2
		c.sketch.Grow(c.sketchCap)
	}
	return victim
}

// removeEntryLocked drops e from the index and queues its deletion from
// index.db. It returns e's file if nothing else uses it, to be unlinked after
// unlocking.
func (c *Cache) removeEntryLocked(e *entry, evicted bool) *content {
	b := e.b
	b.remove(e)
	b.bytes -= e.ct.size
	c.entries--
	if e.ver != nil {
		delete(e.ver.slices, e.k.idx)
		if len(e.ver.slices) == 0 && b.sliced[e.k.object] == e.ver {
			delete(b.sliced, e.k.object)
		}
	}
	e.gone = true
	c.j.Delete(b.name, e.k.object, e.k.idx)
	if evicted {
		c.stats.evictions.Add(1)
	}
	e.ct.refs--
	return c.maybeUnlinkLocked(e.ct)
}

// maybeUnlinkLocked returns ct for unlinking if nothing uses it any more.
func (c *Cache) maybeUnlinkLocked(ct *content) *content {
	if ct.refs > 0 || ct.pins > 0 {
		return nil
	}
	if !ct.live {
		if c.contents[ct.sum] == ct {
			delete(c.contents, ct.sum)
		}
		return nil
	}
	ct.live = false
	c.used -= ct.size
	ct.unlinking = make(chan struct{})
	c.dropHandleLocked(ct)
	return ct
}

// unpinLocked releases a pin taken by a reader or a fill.
func (c *Cache) unpinLocked(ct *content) *content {
	ct.pins--
	return c.maybeUnlinkLocked(ct)
}

// unlink removes the files of contents that maybeUnlinkLocked returned.
// It must be called without c.mu.
func (c *Cache) unlink(cts []*content) {
	// Every reader's Close passes its contents' unpin results, nearly
	// always all nil: that must not take c.mu again.
	if !slices.ContainsFunc(cts, func(ct *content) bool { return ct != nil }) {
		return
	}
	c.mu.Lock()
	closing := c.takeClosingLocked()
	c.mu.Unlock()
	closeFiles(closing) // dropped handles of these contents, among others
	for _, ct := range cts {
		if ct == nil {
			continue
		}
		if err := c.store.Remove(ct.sum); err != nil {
			c.noteDiskError("remove", err)
		}
		c.mu.Lock()
		if c.contents[ct.sum] == ct {
			delete(c.contents, ct.sum)
		}
		close(ct.unlinking)
		c.mu.Unlock()
	}
}

// acquireLocked returns the content record for sum, pinned, creating it if
// needed. If the file of that name is being unlinked it returns the channel
// to wait on before trying again, so that a new file never races a removal.
func (c *Cache) acquireLocked(sum [32]byte, size int64) (*content, <-chan struct{}) {
	ct := c.contents[sum]
	if ct != nil && ct.unlinking != nil {
		return nil, ct.unlinking
	}
	if ct == nil {
		ct = &content{sum: sum, size: size}
		c.contents[sum] = ct
	}
	ct.pins++
	return ct, nil
}

// setLiveLocked records that ct's file is in place with verified bytes.
func (c *Cache) setLiveLocked(ct *content) {
	if !ct.live {
		ct.live = true
		c.used += ct.size
	}
	ct.bad, ct.loaded = false, false
	ct.verified.Store(true)
}

// reserveLocked promises n more bytes (fewer if negative) to fills or
// stages of b.
func (c *Cache) reserveLocked(b *bucket, n int64) {
	c.reserved += n
	b.reserved += n
}

// evictLocked evicts until the bytes on disk and promised fit MaxBytes and
// every bucket fits its cap, and returns the files to unlink.
func (c *Cache) evictLocked() []*content {
	return c.evictToLocked(c.o.MaxBytes, nil)
}

// evictToLocked evicts least recently used entries until every bucket's
// stored and promised bytes fit its cap, then, from the bucket whose
// stored and promised bytes per weight are largest first, until
// used+reserved ≤ limit. Entries being read are skipped (and count as just
// used). victims is appended to.
func (c *Cache) evictToLocked(limit int64, victims []*content) []*content {
	for _, b := range c.buckets {
		for b.cap > 0 && b.bytes+b.reserved > b.cap {
			e := oldestUnpinned(b)
			if e == nil {
				break
			}
			victims = append(victims, c.removeEntryLocked(e, true))
		}
	}
	var exhausted []*bucket
	for c.used+c.reserved > limit {
		b := c.heaviestLocked(exhausted)
		if b == nil {
			break
		}
		e := oldestUnpinned(b)
		if e == nil {
			exhausted = append(exhausted, b)
			continue
		}
		victims = append(victims, c.removeEntryLocked(e, true))
	}
	return victims
}

// heaviestLocked returns the bucket with entries whose stored and promised
// bytes per weight are the largest, skipping those in skip.
func (c *Cache) heaviestLocked(skip []*bucket) *bucket {
	var best *bucket
	bestLoad := -1.0
outer:
	for _, b := range c.buckets {
		if len(b.index) == 0 {
			continue
		}
		for _, s := range skip {
			if s == b {
				continue outer
			}
		}
		if load := float64(b.bytes+b.reserved) / b.weight; load > bestLoad {
			best, bestLoad = b, load
		}
	}
	return best
}

// oldestUnpinned returns b's least recently used entry that nobody is
// reading. Entries being read are moved to the front on the way: they are in
// use, so they are recent.
func oldestUnpinned(b *bucket) *entry {
	for range len(b.index) {
		e, ok := b.oldest()
		if !ok {
			return nil
		}
		if e.ct.pins == 0 {
			return e
		}
		b.lru.Get(e)
	}
	return nil
}

// admitLocked decides whether a fill of size bytes for (b, k) may be stored
// and, if so, reserves the bytes and evicts to make room. freeShort is how
// many bytes the device lacks to keep MinFreeDisk after the fill. The
// returned files are to be unlinked after unlocking.
func (c *Cache) admitLocked(b *bucket, k ekey, size, freeShort int64) (bool, []*content) {
	if size < 0 || size > c.o.MaxObjectSize || size > c.o.MaxBytes ||
		(b.cap > 0 && size > b.cap) || c.now().Before(c.diskBadUntil) {
		return false, nil
	}
	c.reserveLocked(b, size)
	capOver := b.cap > 0 && b.bytes+b.reserved > b.cap
	full := c.used+c.reserved > c.o.MaxBytes || capOver || freeShort > 0
	if full && c.o.Admission != AdmitAll {
		vb := b
		if !capOver {
			vb = c.heaviestLocked(nil)
		}
		if vb != nil {
			if victim, ok := vb.oldest(); ok && !c.passFilterLocked(b.name, k, vb.name, victim.k) {
				c.reserveLocked(b, -size)
				return false, nil
			}
		}
	}
	limit := c.o.MaxBytes
	if freeShort > 0 {
		limit = min(limit, c.used+c.reserved-freeShort)
	}
	victims := c.evictToLocked(limit, nil)
	if c.used+c.reserved > limit || (b.cap > 0 && b.bytes+b.reserved > b.cap) {
		c.reserveLocked(b, -size)
		return false, victims
	}
	return true, victims
}

// passFilterLocked applies the admission filter to a candidate that would
// evict victim.
func (c *Cache) passFilterLocked(bucket string, k ekey, vbucket string, victim ekey) bool {
	h := c.keyHash(bucket, k)
	switch c.o.Admission {
	case AdmitTinyLFU:
		return c.sketch.Estimate(h) > c.sketch.Estimate(c.keyHash(vbucket, victim))
	case AdmitSecondHit:
		if c.ghost.Contains(h) {
			c.ghost.Remove(h)
			return true
		}
		c.ghost.Add(h, struct{}{})
		return false
	}
	return true
}

// record is e as index.db stores it.
func record(e *entry) *indexdb.Record {
	return &indexdb.Record{Bucket: e.b.name, Object: e.k.object, Slice: e.k.idx,
		Sum: e.ct.sum, Size: e.ct.size, Seq: e.seq, Meta: e.metaBytes()}
}
