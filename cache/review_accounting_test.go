package cache

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/s3edge/s3edge/cache/indexdb"
)

// Review of accounting and eviction invariants.

// reviewCheck asserts, once everything has settled (no fill, reader or
// stage left), that the cache's counters agree with its index and, when dir
// is not "", with the files on disk.
func reviewCheck(t *testing.T, c *Cache, dir string) {
	t.Helper()
	c.mu.Lock()
	var used, entries int64
	refs := map[*content]int32{}
	live := map[string]int64{}
	for sum, ct := range c.contents {
		if ct.live {
			used += ct.size
			live[hex.EncodeToString(sum[:])] = ct.size
		}
		if ct.pins != 0 {
			t.Errorf("content %x: %d pins with nothing open", sum[:4], ct.pins)
		}
	}
	for name, b := range c.buckets {
		var bytes int64
		for k, e := range b.index {
			if e.k != k || e.b != b || e.gone {
				t.Errorf("bucket %q: bad entry under %v", name, k)
			}
			bytes += e.ct.size
			refs[e.ct]++
			if c.contents[e.ct.sum] != e.ct || !e.ct.live {
				t.Errorf("bucket %q: entry %v names a content not in place", name, k)
			}
		}
		if b.lru.Len() != len(b.index) {
			t.Errorf("bucket %q: lru %d, index %d", name, b.lru.Len(), len(b.index))
		}
		if bytes != b.bytes {
			t.Errorf("bucket %q: bytes %d, entries sum to %d", name, b.bytes, bytes)
		}
		entries += int64(len(b.index))
	}
	for _, ct := range c.contents {
		if ct.refs != refs[ct] {
			t.Errorf("content %x: refs %d, %d entries", ct.sum[:4], ct.refs, refs[ct])
		}
	}
	if used != c.used {
		t.Errorf("used %d, live contents sum to %d", c.used, used)
	}
	if entries != c.entries {
		t.Errorf("entries %d, buckets hold %d", c.entries, entries)
	}
	if c.reserved != 0 {
		t.Errorf("reserved %d after everything settled", c.reserved)
	}
	if c.used > c.o.MaxBytes {
		t.Errorf("used %d > MaxBytes %d", c.used, c.o.MaxBytes)
	}
	for name, b := range c.buckets {
		if b.cap > 0 && b.bytes > b.cap {
			t.Errorf("bucket %q holds %d bytes, over its cap %d", name, b.bytes, b.cap)
		}
	}
	c.mu.Unlock()
	if dir == "" {
		return
	}
	disk := map[string]int64{}
	for _, p := range files(t, dir, "objects") {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		disk[filepath.Base(p)] = fi.Size()
	}
	for name, size := range live {
		if got, ok := disk[name]; !ok || got != size {
			t.Errorf("live content %s…: on disk %v, size %d (want %d)", name[:8], ok, got, size)
		}
	}
	for name := range disk {
		if _, ok := live[name]; !ok {
			t.Errorf("file %s… on disk is no live content", name[:8])
		}
	}
	if tmp := files(t, dir, "tmp"); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// settle waits (bounded) until no fill is running.
func settle(t *testing.T, c *Cache) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

// gatedGet starts a fill of k from a gated origin and returns its reader
// once the fill has decided admission (Get returns after the meta). With
// admitted, the fill must be stored (MISS, not BYPASS).
func gatedGet(t *testing.T, c *Cache, k Key, o *origin, admitted bool) *Reader {
	t.Helper()
	r, st, err := c.Get(context.Background(), k, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if admitted && st != Miss {
		t.Fatalf("Get(%v) = %v, want MISS (admitted)", k, st)
	}
	return r
}

func readClose(t *testing.T, r *Reader, want []byte, what string) {
	t.Helper()
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	mustEqual(t, what, got, want)
}

// TestReviewCappedBucketEvictsItsOwn: a bucket at its hard cap is a plain
// LRU under AdmitAll: a new object evicts the bucket's own least recently
// used entry, and never another bucket's.
func TestReviewCappedBucketEvictsItsOwn(t *testing.T) {
	const size = 4 << 10
	dir := t.TempDir()
	c := openTest(t, dir, Options{
		MaxBytes: 20 * size, MaxObjectSize: size, Admission: AdmitAll,
		Buckets: map[string]BucketLimits{"capped": {MaxBytes: 2 * size}},
	})
	done := fillDone(c)
	o := newOrigin()
	fill := func(bucket string, from, n int) {
		for i := from; i < from+n; i++ {
			k := Key{bucket, fmt.Sprint(i)}
			o.put(k, pattern(int(bucket[0])*1000+i, size))
			get(t, c, k, o)
			<-done
		}
	}
	fill("other", 0, 18)
	fill("capped", 0, 5)
	s := c.Stats()
	if n := s.Buckets["other"].Entries; n != 18 {
		t.Errorf("other bucket holds %d entries, want 18: the capped bucket evicted them", n)
	}
	for i := range 5 {
		_, ok := c.Stat(Key{"capped", fmt.Sprint(i)})
		if want := i >= 3; ok != want {
			t.Errorf("capped/%d stored = %v, want %v (the two most recent)", i, ok, want)
		}
	}
	reviewCheck(t, c, dir)
}

// TestReviewCappedBucketInFlightFills: fills of a capped bucket that run
// at once are admitted against the cap each on its own; once they and
// their readers are done the bucket must be within its cap.
func TestReviewCappedBucketInFlightFills(t *testing.T) {
	const size = 4 << 10
	dir := t.TempDir()
	c := openTest(t, dir, Options{
		MaxBytes: 100 * size, MaxObjectSize: size, Admission: AdmitAll,
		Buckets: map[string]BucketLimits{"capped": {MaxBytes: 2 * size}},
	})
	done := fillDone(c)
	o := newOrigin()
	o.gate, o.gateAt = make(chan struct{}), 0
	var rs []*Reader
	for i := range 3 {
		k := Key{"capped", fmt.Sprint(i)}
		o.put(k, pattern(i, size))
		rs = append(rs, gatedGet(t, c, k, o, false))
	}
	close(o.gate)
	for range rs {
		<-done
	}
	for i, r := range rs {
		readClose(t, r, pattern(i, size), fmt.Sprint("reader ", i))
	}
	settle(t, c)
	if b := c.Stats().Buckets["capped"].Bytes; b > 2*size {
		t.Errorf("capped bucket holds %d bytes after its fills and readers ended, cap %d", b, 2*size)
	}
	reviewCheck(t, c, dir)
}

// TestReviewWeightedShareInFlight: a bucket whose fills are in progress
// must not evict another bucket below its weighted share: the bytes it has
// reserved are its own.
func TestReviewWeightedShareInFlight(t *testing.T) {
	const size = 4 << 10
	dir := t.TempDir()
	c := openTest(t, dir, Options{MaxBytes: 20 * size, MaxObjectSize: size, Admission: AdmitAll})
	done := fillDone(c)
	o := newOrigin()
	for i := range 10 {
		k := Key{"b", fmt.Sprint(i)}
		o.put(k, pattern(1000+i, size))
		get(t, c, k, o)
		<-done
	}
	for i := range 2 {
		k := Key{"a", fmt.Sprint(i)}
		o.put(k, pattern(2000+i, size))
		get(t, c, k, o)
		<-done
	}
	// Nine more objects of a at once: a ends with 11 of 20 slots, so one
	// of them must be paid by a itself, not by b (10 = its share).
	slow := newOrigin()
	slow.gate = make(chan struct{})
	var rs []*Reader
	for i := 2; i < 11; i++ {
		k := Key{"a", fmt.Sprint(i)}
		slow.put(k, pattern(2000+i, size))
		rs = append(rs, gatedGet(t, c, k, slow, true))
	}
	close(slow.gate)
	for i, r := range rs {
		readClose(t, r, pattern(2002+i, size), "a reader")
	}
	settle(t, c)
	s := c.Stats()
	if a, b := s.Buckets["a"].Entries, s.Buckets["b"].Entries; b != 10 {
		t.Errorf("entries a=%d b=%d: b was evicted below its share (10) for a", a, b)
	}
	reviewCheck(t, c, dir)
}

// TestReviewReservedAfterFailures: whatever way a fill or stage ends,
// reserved bytes return to 0 and used bytes match the files.
func TestReviewReservedAfterFailures(t *testing.T) {
	const size = 40 << 10
	dir := t.TempDir()
	c := openTest(t, dir, Options{MaxBytes: 1 << 20, MaxObjectSize: 200 << 10, Admission: AdmitAll,
		SliceSize: 16 << 10, SliceThreshold: 32 << 10})
	done := fillDone(c)
	ctx := context.Background()

	read := func(k Key, o *origin) error {
		r, _, err := c.Get(ctx, k, o, GetOptions{})
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.ReadAll(r)
		return err
	}
	// Reset mid-body: whole and sliced (a slice is committed before).
	for _, n := range []int{size, 100 << 10} {
		o := newOrigin()
		o.failAt = n / 2
		k := Key{"b", fmt.Sprint("reset-", n)}
		o.put(k, pattern(n, n))
		if err := read(k, o); err == nil {
			t.Fatalf("reset %d: no error", n)
		}
		<-done
	}
	// Short body.
	o := newOrigin()
	o.short = size / 3
	k := Key{"b", "short"}
	o.put(k, pattern(3, size))
	if err := read(k, o); err == nil {
		t.Fatal("short body: no error")
	}
	<-done
	// Too large to store.
	o = newOrigin()
	k = Key{"b", "large"}
	o.put(k, pattern(4, 300<<10))
	if err := read(k, o); err != nil {
		t.Fatal(err)
	}
	<-done
	// Client leaves an admitted fill: it goes on and is stored.
	o = newOrigin()
	o.gate, o.gateAt = make(chan struct{}), 100
	k = Key{"b", "gone"}
	o.put(k, pattern(5, size))
	cctx, cancel := context.WithCancel(ctx)
	r, _, err := c.Get(cctx, k, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	r.Close()
	close(o.gate)
	<-done
	if _, ok := c.Stat(k); !ok {
		t.Error("admitted fill whose client left was not stored")
	}
	// Stale: invalidated mid-fill, reader reads on.
	o = newOrigin()
	o.gate, o.gateAt = make(chan struct{}), 20<<10
	k = Key{"b", "stale"}
	o.put(k, pattern(6, 100<<10))
	r, _, err = c.Get(ctx, k, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.Invalidate(k)
	close(o.gate)
	readClose(t, r, pattern(6, 100<<10), "stale fill reader")
	<-done
	if _, ok := c.Stat(k); ok {
		t.Error("stale fill stored")
	}
	// Stale with the client gone: abandoned.
	o = newOrigin()
	o.gate, o.gateAt = make(chan struct{}), 20<<10
	k = Key{"b", "stale-gone"}
	o.put(k, pattern(7, 100<<10))
	r, _, err = c.Get(ctx, k, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	c.Invalidate(k)
	<-done
	close(o.gate)
	// Stages: aborted, failed commit (size mismatch), stale, committed.
	p, err := c.Stage(Key{"b", "abort"}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	p.Write(pattern(8, 500))
	p.Abort()
	p, _ = c.Stage(Key{"b", "mismatch"}, 1000)
	p.Write(pattern(9, 1000))
	if p.Commit(Meta{Size: 999}) == nil {
		t.Fatal("commit with a wrong size succeeded")
	}
	p, _ = c.Stage(Key{"b", "stale-stage"}, 50<<10)
	p.Write(pattern(10, 50<<10))
	c.Invalidate(Key{"b", "stale-stage"})
	if err := p.Commit(Meta{Size: 50 << 10}); err != nil {
		t.Fatal(err)
	}
	p, _ = c.Stage(Key{"b", "ok"}, 50<<10)
	p.Write(pattern(11, 50<<10))
	if err := p.Commit(Meta{Size: 50 << 10, ETag: `"ok"`}); err != nil {
		t.Fatal(err)
	}
	settle(t, c)
	<-c.scrubbed
	reviewCheck(t, c, dir)
}

// TestReviewDedupRefcounts: one content under keys of two buckets survives
// eviction and purge of one key, and a reader of it, and goes with the last.
func TestReviewDedupRefcounts(t *testing.T) {
	const size = 10 << 10
	dir := t.TempDir()
	c := openTest(t, dir, Options{MaxBytes: 4 * size, MaxObjectSize: size, Admission: AdmitAll})
	done := fillDone(c)
	<-c.scrubbed
	o := newOrigin()
	same := pattern(1, size)
	k1, k2 := Key{"x", "one"}, Key{"y", "two"}
	o.put(k1, same)
	o.put(k2, same)
	get(t, c, k1, o)
	<-done
	get(t, c, k2, o)
	<-done
	m, _ := c.Stat(k1)
	path := contentPath(dir, m.SHA256)
	if s := c.Stats(); s.UsedBytes != size {
		t.Fatalf("used %d, want %d (one file)", s.UsedBytes, size)
	}
	reviewCheck(t, c, dir)
	// Push k1 out with other objects of bucket x: y is within its share.
	for i := range 6 {
		k := Key{"x", fmt.Sprint(i)}
		o.put(k, pattern(100+i, size))
		get(t, c, k, o)
		<-done
		if !exists(path) {
			t.Fatalf("shared file unlinked while k2 stored (after %d fills)", i)
		}
	}
	if _, ok := c.Stat(k1); ok {
		t.Fatal("k1 not evicted")
	}
	reviewCheck(t, c, dir)
	r, st, err := c.Get(context.Background(), k2, nil, GetOptions{})
	if err != nil || st != Hit {
		t.Fatal(st, err)
	}
	c.Purge("y", "")
	if !exists(path) {
		t.Fatal("shared file unlinked under its reader")
	}
	readClose(t, r, same, "reader of the shared file")
	if exists(path) {
		t.Fatal("shared file kept after its last key and reader went")
	}
	reviewCheck(t, c, dir)
}

// TestReviewPurgeDuringFillsThenRestart: Purge (all, bucket, prefix) while
// fills are in progress and stored entries are read; readers get their
// bytes, nothing purged comes back after a restart, counts agree.
func TestReviewPurgeDuringFillsThenRestart(t *testing.T) {
	const size = 30 << 10
	dir := t.TempDir()
	opts := Options{MaxBytes: 4 << 20, Admission: AdmitAll, SliceSize: 8 << 10, SliceThreshold: 16 << 10}
	c := openTest(t, dir, opts)
	done := fillDone(c)
	o := newOrigin()
	buckets := []string{"p", "q", "r"}
	for _, b := range buckets {
		for i := range 4 {
			k := Key{b, fmt.Sprintf("dir%d/%d", i%2, i)}
			o.put(k, pattern(int(b[0])*100+i, size))
			get(t, c, k, o)
			<-done
		}
	}
	// Readers of stored entries, and fills in progress (sliced: slices
	// are committed as they complete), in every bucket.
	var stored []*Reader
	for _, b := range buckets {
		r, st, err := c.Get(context.Background(), Key{b, "dir0/0"}, o, GetOptions{})
		if err != nil || st != Hit {
			t.Fatal(st, err)
		}
		stored = append(stored, r)
	}
	slow := newOrigin()
	slow.gate, slow.gateAt = make(chan struct{}), 20<<10
	var filling []*Reader
	for _, b := range buckets {
		k := Key{b, "dir1/filling"}
		slow.put(k, pattern(int(b[0])*100+50, size))
		filling = append(filling, gatedGet(t, c, k, slow, true))
	}
	// Let the first two slices commit before the purges.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := 0
		for _, b := range buckets {
			if v := c.buckets[b].sliced["dir1/filling"]; v != nil {
				n += len(v.slices)
			}
		}
		c.mu.Unlock()
		if n == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d slices committed, want 6", n)
		}
		time.Sleep(time.Millisecond)
	}
	c.Purge("p", "")
	c.Purge("q", "dir1/")
	c.Purge("", "dir0/2")
	close(slow.gate)
	for i, b := range buckets {
		readClose(t, filling[i], pattern(int(b[0])*100+50, size), "filling reader")
		readClose(t, stored[i], pattern(int(b[0])*100, size), "stored reader")
	}
	settle(t, c)
	<-c.scrubbed
	reviewCheck(t, c, dir)
	want := map[Key]bool{}
	for _, b := range buckets {
		for i := range 4 {
			k := Key{b, fmt.Sprintf("dir%d/%d", i%2, i)}
			want[k] = b == "r" && k.Object != "dir0/2" || b == "q" && i%2 == 0 && k.Object != "dir0/2"
		}
		want[Key{b, "dir1/filling"}] = b == "r" // started before no purge of it
	}
	check := func(when string) {
		for k, w := range want {
			if _, ok := c.Stat(k); ok != w {
				t.Errorf("%s: %v stored = %v, want %v", when, k, ok, w)
			}
		}
	}
	check("after purge")
	before := c.Stats()
	c.Close()
	records := reviewRecords(t, dir)

	c = openTest(t, dir, opts)
	<-c.scrubbed
	check("after restart")
	after := c.Stats()
	if after.Entries != before.Entries || after.UsedBytes != before.UsedBytes || int64(records) != after.Entries {
		t.Errorf("before restart %d entries %d bytes; index.db %d records; after %d entries %d bytes",
			before.Entries, before.UsedBytes, records, after.Entries, after.UsedBytes)
	}
	reviewCheck(t, c, dir)
}

// reviewRecords counts the records of a closed cache's index.db.
func reviewRecords(t *testing.T, dir string) int {
	t.Helper()
	j, err := indexdb.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	n := 0
	if err := j.Load(func(*indexdb.Raw) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestReviewRestartAfterEvictions: entries evicted before Close stay gone,
// and counts and files agree after Open.
func TestReviewRestartAfterEvictions(t *testing.T) {
	const size = 8 << 10
	dir := t.TempDir()
	opts := Options{MaxBytes: 6 * size, MaxObjectSize: 2 * size, Admission: AdmitAll,
		SliceSize: 4 << 10, SliceThreshold: 8 << 10}
	c := openTest(t, dir, opts)
	done := fillDone(c)
	o := newOrigin()
	key := func(i int) Key { return Key{fmt.Sprint("b", i%2), fmt.Sprint(i)} }
	for i := range 12 {
		n := size
		if i%3 == 0 {
			n = 2 * size // sliced
		}
		o.put(key(i), pattern(i, n))
		get(t, c, key(i), o)
		<-done
	}
	settle(t, c)
	reviewCheck(t, c, dir)
	stored := map[Key]bool{}
	for i := range 12 {
		_, stored[key(i)] = c.Stat(key(i))
	}
	before := c.Stats()
	c.Close()
	if n := reviewRecords(t, dir); int64(n) != before.Entries {
		t.Errorf("index.db holds %d records, the cache had %d entries", n, before.Entries)
	}
	c = openTest(t, dir, opts)
	<-c.scrubbed
	for k, w := range stored {
		if _, ok := c.Stat(k); ok != w {
			t.Errorf("after restart: %v stored = %v, before %v", k, ok, w)
		}
	}
	if s := c.Stats(); s.Entries != before.Entries || s.UsedBytes != before.UsedBytes {
		t.Errorf("after restart %d entries %d bytes, before %d %d", s.Entries, s.UsedBytes, before.Entries, before.UsedBytes)
	}
	reviewCheck(t, c, dir)
	// Open with a smaller budget: Open evicts, and that sticks too.
	c.Close()
	opts.MaxBytes = 3 * size
	c = openTest(t, dir, opts)
	<-c.scrubbed
	reviewCheck(t, c, dir)
	s := c.Stats()
	c.Close()
	if n := reviewRecords(t, dir); int64(n) != s.Entries {
		t.Errorf("after eviction at Open: index.db %d records, cache %d entries", n, s.Entries)
	}
}

// TestReviewConcurrentChurn: gets (whole and ranges), stages, invalidations
// and purges at once over keys sharing contents, in a cache too small for
// them; every read gets the right bytes, and once everything settles the
// counters agree with the index and the files.
func TestReviewConcurrentChurn(t *testing.T) {
	const keys = 24
	dir := t.TempDir()
	opts := Options{MaxBytes: 256 << 10, MaxObjectSize: 64 << 10, Admission: AdmitAll,
		SliceSize: 8 << 10, SliceThreshold: 16 << 10,
		Buckets: map[string]BucketLimits{"a": {Weight: 2}, "c": {MaxBytes: 64 << 10}}}
	c := openTest(t, dir, opts)
	o := newOrigin()
	key := func(i int) Key { return Key{string(rune('a' + i%3)), fmt.Sprint("k/", i)} }
	data := func(i int) []byte { return pattern(i%7, 4<<10+(i%7)*9<<10) } // shared contents
	for i := range keys {
		o.put(key(i), data(i))
	}
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for range 150 {
				i := rnd.IntN(keys)
				k, want := key(i), data(i)
				switch op := rnd.IntN(10); {
				case op < 5:
					r, _, err := c.Get(context.Background(), k, o, GetOptions{})
					if err != nil {
						errs <- err
						return
					}
					got, err := io.ReadAll(r)
					r.Close()
					if err != nil || !bytes.Equal(got, want) {
						errs <- fmt.Errorf("get %v: %d bytes, %v", k, len(got), err)
						return
					}
				case op < 7:
					off := rnd.Int64N(int64(len(want)))
					r, _, err := c.GetRange(context.Background(), k, off, -1, o, GetOptions{})
					if err != nil {
						errs <- err
						return
					}
					got, err := io.ReadAll(r)
					r.Close()
					if err != nil || !bytes.Equal(got, want[off:]) {
						errs <- fmt.Errorf("range %v@%d: %d bytes, %v", k, off, len(got), err)
						return
					}
				case op < 8:
					p, err := c.Stage(k, int64(len(want)))
					if err != nil {
						continue // no room: everything is being read
					}
					p.Write(want)
					if err := p.Commit(Meta{Size: int64(len(want)), ETag: o.etags[k]}); err != nil {
						errs <- err
						return
					}
				case op < 9:
					c.Invalidate(k)
				default:
					c.Purge(k.Bucket, "k/1")
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	settle(t, c)
	<-c.scrubbed
	reviewCheck(t, c, dir)
	before := c.Stats()
	c.Close()
	if n := reviewRecords(t, dir); int64(n) != before.Entries {
		t.Errorf("index.db holds %d records, the cache had %d entries", n, before.Entries)
	}
	c = openTest(t, dir, opts)
	<-c.scrubbed
	if s := c.Stats(); s.Entries != before.Entries || s.UsedBytes != before.UsedBytes {
		t.Errorf("after restart %d entries %d bytes, before %d %d", s.Entries, s.UsedBytes, before.Entries, before.UsedBytes)
	}
	reviewCheck(t, c, dir)
}

// TestReviewMinFreeDiskInFlight: fills admitted at once each see the free
// space as if the others wrote nothing; once they are stored and settled,
// the device must have MinFreeDisk free again (without waiting for the
// janitor's next tick).
func TestReviewMinFreeDiskInFlight(t *testing.T) {
	const size = 10 << 10
	disk := smallDisk{newMemStore(), 100 << 10}
	c := openTest(t, t.TempDir(), Options{MaxBytes: 1 << 30, MinFreeDisk: 40 << 10, Store: disk,
		Admission: AdmitAll, FlushInterval: time.Hour})
	done := fillDone(c)
	o := newOrigin()
	for i := range 5 {
		k := Key{"b", fmt.Sprint(i)}
		o.put(k, pattern(i, size))
		get(t, c, k, o)
		<-done
	}
	slow := newOrigin()
	slow.gate = make(chan struct{})
	var rs []*Reader
	for i := 5; i < 8; i++ {
		k := Key{"b", fmt.Sprint(i)}
		slow.put(k, pattern(i, size))
		rs = append(rs, gatedGet(t, c, k, slow, false))
	}
	close(slow.gate)
	for i, r := range rs {
		readClose(t, r, pattern(5+i, size), "reader")
	}
	settle(t, c)
	if free, _ := disk.Free(); free < 40<<10 {
		t.Errorf("after concurrent fills settled: %d bytes free, want ≥ %d", free, 40<<10)
	}
	reviewCheck(t, c, "")
}
