package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/s3edge/s3edge/cache/blob"
	"github.com/s3edge/s3edge/cache/indexdb"
	"github.com/s3edge/s3edge/cache/tinylfu"
)

// Options configure a Cache. Zero values are the documented defaults;
// MaxBytes is required.
type Options struct {
	// MaxBytes bounds the bytes of content files on disk, counting fills in
	// progress and files kept only because a reader has them open.
	MaxBytes int64
	// MinFreeDisk is the free space to leave on the device; the cache evicts
	// to keep it and stops storing (BYPASS) when eviction cannot. 0: none.
	MinFreeDisk int64
	// MaxObjectSize: larger objects are streamed to their readers but not
	// stored. 0: MaxBytes/4.
	MaxObjectSize int64
	// SliceSize is the size of the aligned slices large objects and ranges
	// are stored in. 0: 4 MiB.
	SliceSize int64
	// SliceThreshold: objects larger than this are stored as slices, even
	// when fetched whole. 0: 4*SliceSize.
	SliceThreshold int64
	// Admission chooses the admission filter. 0: AdmitTinyLFU.
	Admission Admission
	// Buckets sets per-bucket limits; a bucket not listed has weight 1 and
	// no cap.
	Buckets map[string]BucketLimits
	// FillTimeout bounds a whole fill (fetch and body), independently of any
	// caller. 0: none, fills end when the fetcher's body ends or Close.
	FillTimeout time.Duration
	// MissTimeout bounds how long a caller waits for a fill's first
	// answer from the origin (its headers): past it Get returns
	// ErrMissTimeout, while the fill goes on for whoever asks next. It is
	// what keeps a client from hanging on a provider that accepts
	// connections and never answers (the fetcher may retry for minutes).
	// 0: no bound.
	MissTimeout time.Duration
	// OpenFiles bounds the content files kept open between reads, so that
	// a hit needs no open and close; as many spare descriptors for sendfile
	// are kept besides. 0: 1024, or an eighth of the process's limit on
	// open files if that is less; negative: none kept open.
	OpenFiles int
	// FlushInterval is how often recency (access order) is written to the
	// index. 0: 30s. Entries themselves are written when they are stored.
	FlushInterval time.Duration
	// Store holds the content files. nil: files under <dir>/objects.
	Store Store
	// Now is the clock. nil: time.Now.
	Now func() time.Time
	// Logger receives disk trouble (rate-limited), corruption and panics.
	// nil: discard.
	Logger *slog.Logger
}

// Admission is the filter that decides whether a fetched object may evict
// stored ones. It applies only when the cache is full; uploads (Stage) are
// always admitted.
type Admission uint8

// The admission filters.
const (
	// AdmitTinyLFU admits an object if a frequency sketch says it was asked
	// for more often than the entry it would evict (TinyLFU). The default:
	// it wins on skewed (Zipf) workloads, see TestZipfHitRatio.
	AdmitTinyLFU Admission = iota
	// AdmitSecondHit admits an object the second time it is missed within
	// a ghost list as long as the cache's entry count (a doorkeeper).
	AdmitSecondHit
	// AdmitAll admits everything: a plain LRU.
	AdmitAll
)

// String names the filter.
func (a Admission) String() string {
	switch a {
	case AdmitTinyLFU:
		return "tinylfu"
	case AdmitSecondHit:
		return "second-hit"
	case AdmitAll:
		return "all"
	}
	return "unknown"
}

// BucketLimits share the cache between buckets (tenants).
type BucketLimits struct {
	// Weight is the bucket's share under pressure: the cache evicts from
	// the bucket whose bytes/Weight is largest, so a bucket holding less
	// than its weighted share is never evicted to make room for another.
	// 0: 1.
	Weight float64
	// MaxBytes caps the bytes the bucket may hold. 0: no cap.
	MaxBytes int64
}

// Stats is a snapshot of the cache's counters.
type Stats struct {
	Hits, Misses, Coalesced, Bypass, Stale int64 // Get and GetRange results
	BytesFromCache                         int64 // bytes read from stored files
	BytesFilled                            int64 // bytes received from fetchers
	Evictions                              int64 // entries evicted for space
	FillErrors                             int64 // fills that failed (fetch, body, short body)
	DiskErrors                             int64 // store write, commit or read failures
	Corrupt                                int64 // stored files that failed the size or hash check
	UsedBytes, ReservedBytes               int64 // content bytes on disk, bytes promised to fills
	Entries                                int64 // entries (whole objects and slices)
	Buckets                                map[string]BucketStats
}

// BucketStats are one bucket's bytes and entries.
type BucketStats struct {
	Bytes, Entries int64
}

type counters struct {
	hits, misses, coalesced, bypass, stale atomic.Int64
	bytesFromCache, bytesFilled            atomic.Int64
	evictions, fillErrors                  atomic.Int64
	diskErrors, corrupt                    atomic.Int64
}

// Cache is the disk cache. All methods are safe for concurrent use.
type Cache struct {
	o     Options
	store Store
	j     *indexdb.DB // index.db
	log   *slog.Logger
	now   func() time.Time
	salt  uint64 // of keyHash

	ctx    context.Context // lifetime: canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the cache starts
	stats  counters
	diskMu sync.Mutex // guards diskLogAt only
	// diskLogAt is when disk trouble was last logged (rate limit).
	diskLogAt time.Time

	mu sync.Mutex
	// mu guards the following.
	closed       bool
	buckets      map[string]*bucket
	contents     map[[32]byte]*content
	fills        map[fillKey]*fill
	running      int           // fill and revalidation goroutines not yet ended
	idle         chan struct{} // closed when running drops to 0; made by Drain
	stages       map[*Pending]struct{}
	revals       map[Key]*reval
	handles      *handles
	used         int64    // bytes of content files in place (indexed or pinned)
	reserved     int64    // bytes promised to admitted fills and stages
	entries      int64    // entries in all buckets
	tick         uint64   // access clock, stored as entry.seq
	dirty        []*entry // entries whose seq changed since the last flush
	sketch       *tinylfu.Sketch
	sketchCap    int
	ghost        *simplelru.LRU[uint64, struct{}] // AdmitSecondHit's doorkeeper
	diskBadUntil time.Time                        // fills bypass the disk until then
	loaded       []*entry                         // entries read at Open, for scrub

	scrubbed    chan struct{} // closed when scrub is done
	hookFillEnd func()        // tests: called when a fill has ended
}

const (
	defaultSliceSize     = 4 << 20
	defaultFlushInterval = 30 * time.Second
	diskRetryAfter       = 10 * time.Second // how long disk trouble turns fills into BYPASS
	diskLogEvery         = time.Minute
)

// Open opens (or creates) the cache in dir: the index is <dir>/index.db and,
// unless o.Store is set, content files live under <dir>/objects. It
// rebuilds the index and its recency order as the last run saved them and
// removes temporary files left by a crash. Files are checked lazily: the
// size on every open, the content hash on the first open after Open; and a
// background scrub removes files no entry names and drops entries whose
// file is missing, so that start-up does not list every directory.
func Open(dir string, o Options) (*Cache, error) {
	if o.MaxBytes <= 0 {
		return nil, errors.New("cache: Options.MaxBytes must be positive")
	}
	if o.SliceSize <= 0 {
		o.SliceSize = defaultSliceSize
	}
	if o.SliceThreshold <= 0 {
		o.SliceThreshold = 4 * o.SliceSize
	}
	if o.MaxObjectSize <= 0 {
		o.MaxObjectSize = o.MaxBytes / 4
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = defaultFlushInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	for name, l := range o.Buckets {
		if l.Weight < 0 || l.MaxBytes < 0 {
			return nil, fmt.Errorf("cache: bucket %q: negative limit", name)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache: open: %w", err)
	}
	// index.db's lock keeps a second process out before files are touched.
	j, err := indexdb.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		return nil, err
	}
	store := o.Store
	if store == nil {
		ds, err := blob.NewDisk(dir)
		if err != nil {
			j.Close()
			return nil, err
		}
		store = ds
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cache{
		o: o, store: store, j: j, log: o.Logger, now: o.Now, salt: rand.Uint64(),
		ctx: ctx, cancel: cancel,
		buckets:  make(map[string]*bucket),
		contents: make(map[[32]byte]*content),
		fills:    make(map[fillKey]*fill),
		stages:   make(map[*Pending]struct{}),
		revals:   make(map[Key]*reval),
		handles:  newHandles(cmp.Or(o.OpenFiles, openFilesDefault())),
		scrubbed: make(chan struct{}),
	}
	if err := c.load(); err != nil {
		cancel()
		j.Close()
		return nil, err
	}
	c.sketchCap = sketchCapacity(o.MaxBytes, c.entries)
	c.sketch = tinylfu.New(c.sketchCap)
	if o.Admission == AdmitSecondHit {
		c.ghost, _ = simplelru.NewLRU[uint64, struct{}](max(1024, int(c.entries)), nil)
	}
	c.mu.Lock()
	victims := c.evictLocked()
	c.mu.Unlock()
	c.unlink(victims)
	c.wg.Go(func() { c.j.Run(c.ctx, func(err error) { c.noteDiskError("index", err) }) })
	c.wg.Go(c.janitor)
	c.wg.Go(c.scrub)
	return c, nil
}

// sketchCapacity sizes the frequency sketch for the entries the cache may
// hold, assuming 64 KiB objects (up to 64Ki entries); it grows with the
// entries.
func sketchCapacity(maxBytes, entries int64) int {
	return int(min(max(min(maxBytes/(64<<10), 1<<16), entries, 512), maxSketch))
}

// maxSketch bounds the sketch at 32 MiB of counters.
const maxSketch = 1 << 22

// Drain waits until no fill or revalidation is running, or ctx is done. A
// server calls it on shutdown, after its last request, before Close: a fill
// whose clients have all been answered (or have left) still belongs to the
// cache, and letting it commit keeps the egress already paid for.
func (c *Cache) Drain(ctx context.Context) error {
	c.mu.Lock()
	if c.running == 0 {
		c.mu.Unlock()
		return nil
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cache: drain: %w", ctx.Err())
	}
}

// goBackgroundLocked runs fn on a goroutine of the cache that Drain waits for.
// The caller holds c.mu and has checked that the cache is open.
func (c *Cache) goBackgroundLocked(fn func()) {
	c.running++
	c.wg.Go(func() {
		defer func() {
			c.mu.Lock()
			if c.running--; c.running == 0 && c.idle != nil {
				close(c.idle)
				c.idle = nil
			}
			c.mu.Unlock()
		}()
		fn()
	})
}

// Close cancels fills in progress (their readers get an error), waits for
// every goroutine of the cache, writes the recency order and closes the
// index. Readers still open keep working on the files they hold.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.dropHandlesLocked()
	closing := c.takeClosingLocked()
	c.mu.Unlock()
	closeFiles(closing)
	c.cancel()
	c.wg.Wait()
	c.flushRecency()
	return c.j.Close()
}

// janitor flushes recency and keeps MinFreeDisk until Close.
func (c *Cache) janitor() {
	defer c.recoverGoroutine("janitor")
	t := time.NewTicker(c.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.flushRecency()
			c.keepFreeDisk()
		}
	}
}

// flushRecency rewrites the records of the entries used since the last
// flush, with their new access clock: one write per entry per flush instead
// of one per hit. It queues under c.mu, so a later removal of the same
// entry is queued after it and a removed entry is never written back.
func (c *Cache) flushRecency() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.dirty {
		e.dirty = false
		if !e.gone {
			c.j.Put(record(e))
		}
	}
	c.dirty = nil
}

// keepFreeDisk evicts until the device has MinFreeDisk free again, as far
// as the cache's own files allow.
func (c *Cache) keepFreeDisk() {
	if c.o.MinFreeDisk <= 0 {
		return
	}
	free, err := c.store.Free()
	if err != nil || free >= c.o.MinFreeDisk {
		return
	}
	c.mu.Lock()
	victims := c.evictToLocked(c.used+c.reserved-(c.o.MinFreeDisk-free), nil)
	c.mu.Unlock()
	c.unlink(victims)
}

func (c *Cache) recoverGoroutine(what string) {
	if v := recover(); v != nil {
		c.log.Error("cache: goroutine panicked", "goroutine", what, "panic", v)
	}
}

// MissTimeout returns Options.MissTimeout: requests the cache passes to the
// origin itself (a HEAD miss, a suffix range of an unknown size) are bound
// by it too.
func (c *Cache) MissTimeout() time.Duration { return c.o.MissTimeout }

// Stats returns a snapshot of the counters.
func (c *Cache) Stats() Stats {
	s := Stats{
		Hits: c.stats.hits.Load(), Misses: c.stats.misses.Load(),
		Coalesced: c.stats.coalesced.Load(), Bypass: c.stats.bypass.Load(),
		Stale:          c.stats.stale.Load(),
		BytesFromCache: c.stats.bytesFromCache.Load(), BytesFilled: c.stats.bytesFilled.Load(),
		Evictions: c.stats.evictions.Load(), FillErrors: c.stats.fillErrors.Load(),
		DiskErrors: c.stats.diskErrors.Load(), Corrupt: c.stats.corrupt.Load(),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.UsedBytes, s.ReservedBytes, s.Entries = c.used, c.reserved, c.entries
	s.Buckets = make(map[string]BucketStats, len(c.buckets))
	for name, b := range c.buckets {
		s.Buckets[name] = BucketStats{Bytes: b.bytes, Entries: int64(len(b.index))}
	}
	return s
}

// noteDiskError counts a store or index failure, makes fills bypass the disk
// for a while when it is a write failure, and logs at most once a minute.
func (c *Cache) noteDiskError(op string, err error) {
	c.stats.diskErrors.Add(1)
	now := c.now()
	if op != "read" {
		c.mu.Lock()
		c.diskBadUntil = now.Add(diskRetryAfter)
		c.mu.Unlock()
	}
	c.diskMu.Lock()
	logNow := now.Sub(c.diskLogAt) >= diskLogEvery
	if logNow {
		c.diskLogAt = now
	}
	c.diskMu.Unlock()
	if logNow {
		c.log.Warn("cache: disk trouble, serving without storing", "op", op, "kind", diskErrorKind(err),
			"err", err, "disk_errors", c.stats.diskErrors.Load())
	}
}

// diskErrorKind classifies a store error for logs.
func diskErrorKind(err error) string {
	switch {
	case isNoSpace(err):
		return "no space"
	case isReadOnly(err):
		return "read-only"
	case isIOError(err):
		return "i/o error"
	}
	return "other"
}
