package cache

import (
	"context"
	"errors"
	"io"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
)

// Get and GetRange without a fetcher (the proxy's hit path) serve a fresh,
// stored whole object and nothing else: anything else is ErrMiss, having
// fetched, revalidated, counted and recorded nothing, so that the caller
// can ask again with a fetcher as if it had not asked.

// storedOnlyState is what a stored-only miss must leave as it was.
type storedOnlyState struct {
	stats                    Stats
	fills, revals, running   int
	estWhole, estS0, estS1   int
	fetches, ranges, entries int64
	ghostLen                 int
	usedBytes, reservedBytes int64
}

// storedOnlySnap reads the state of c (and o) that a stored-only lookup of k
// must not change. The sketch is read for k's whole-object key and for its
// first two slices.
func storedOnlySnap(c *Cache, o *origin, k Key) storedOnlyState {
	s := storedOnlyState{stats: c.Stats()}
	s.stats.Buckets = nil
	c.mu.Lock()
	s.fills, s.revals, s.running = len(c.fills), len(c.revals), c.running
	s.estWhole = c.sketch.Estimate(c.keyHash(k.Bucket, ekey{k.Object, whole}))
	s.estS0 = c.sketch.Estimate(c.keyHash(k.Bucket, ekey{k.Object, 0}))
	s.estS1 = c.sketch.Estimate(c.keyHash(k.Bucket, ekey{k.Object, 1}))
	if c.ghost != nil {
		s.ghostLen = c.ghost.Len()
	}
	s.usedBytes, s.reservedBytes, s.entries = c.used, c.reserved, c.entries
	c.mu.Unlock()
	if o != nil {
		s.fetches, s.ranges = o.fetches.Load(), o.ranges.Load()
	}
	return s
}

// drained waits until c runs no fill or revalidation.
func storedOnlyDrained(t *testing.T, c *Cache) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

// storedOnlyMiss asserts that a Get (n == 0) or GetRange [off, off+n) of k
// without a fetcher is ErrMiss and changes nothing.
func storedOnlyMiss(t *testing.T, c *Cache, o *origin, k Key, off, n int64, opts GetOptions) {
	t.Helper()
	storedOnlyDrained(t, c)
	before := storedOnlySnap(c, o, k)
	var (
		r   *Reader
		st  Status
		err error
	)
	what := "Get"
	if n == 0 {
		r, st, err = c.Get(context.Background(), k, nil, opts)
	} else {
		what = "GetRange"
		r, st, err = c.GetRange(context.Background(), k, off, n, nil, opts)
	}
	if r != nil {
		b, _ := io.ReadAll(r)
		r.Close()
		t.Fatalf("%s without a fetcher served %d bytes (status %v, err %v), want ErrMiss", what, len(b), st, err)
	}
	if !errors.Is(err, ErrMiss) {
		t.Fatalf("%s without a fetcher = %v, %v; want ErrMiss", what, st, err)
	}
	if after := storedOnlySnap(c, o, k); !reflect.DeepEqual(after, before) {
		t.Fatalf("%s without a fetcher missed and changed the cache:\nbefore %+v\nafter  %+v", what, before, after)
	}
}

// storedOnlyRead reads k (n == 0) or [off, off+n) of it without a fetcher.
func storedOnlyRead(t *testing.T, c *Cache, k Key, off, n int64, opts GetOptions) ([]byte, Status) {
	t.Helper()
	var (
		r   *Reader
		st  Status
		err error
	)
	if n == 0 {
		r, st, err = c.Get(context.Background(), k, nil, opts)
	} else {
		r, st, err = c.GetRange(context.Background(), k, off, n, nil, opts)
	}
	if err != nil {
		t.Fatalf("stored-only read of %v [%d, +%d) = %v", k, off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("stored-only read of %v: read: %v", k, err)
	}
	return b, st
}

// TestStoredOnlyNeverStored: a key the cache never stored is ErrMiss; no
// fill starts (nothing fetched, nothing to wait for), nothing is counted,
// and a later Get with a fetcher is the first miss, as if nothing had
// asked before.
func TestStoredOnlyNeverStored(t *testing.T) {
	c := openTest(t, t.TempDir(), rangeOpts())
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "cold"}
	want := pattern(40, 3*testSlice+7)
	o.put(k, want) // the origin has it: only a fetcher could get it

	storedOnlyMiss(t, c, o, k, 0, 0, GetOptions{})
	storedOnlyMiss(t, c, o, k, 0, 10, GetOptions{})
	storedOnlyMiss(t, c, o, k, testSlice+5, -1, GetOptions{})
	storedOnlyMiss(t, c, o, Key{"other-bucket", "x"}, 0, 0, GetOptions{})
	if s := c.Stats(); s.Hits+s.Misses+s.Coalesced+s.Bypass+s.Stale != 0 {
		t.Fatalf("stats after stored-only misses: %+v", s)
	}

	got, st := get(t, c, k, o)
	mustEqual(t, "first Get with a fetcher", got, want)
	if st != Miss || o.fetches.Load() != 1 {
		t.Fatalf("first Get with a fetcher: %v, %d fetches; want MISS, 1", st, o.fetches.Load())
	}
	<-done
	if s := c.Stats(); s.Misses != 1 || s.Hits != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

// TestStoredOnlyFillInProgress: while a fill of k runs, a stored-only Get
// neither joins it (Coalesced) nor waits for it.
func TestStoredOnlyFillInProgress(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "slow"}
	want := pattern(41, 100<<10)
	o.put(k, want)
	o.gate, o.gateAt = make(chan struct{}), 10<<10

	r, st, err := c.Get(context.Background(), k, o, GetOptions{})
	if err != nil || st != Miss {
		t.Fatalf("Get with a fetcher: %v, %v", st, err)
	}
	defer r.Close()
	ret := make(chan error, 1)
	go func() {
		r2, _, err := c.Get(context.Background(), k, nil, GetOptions{})
		if r2 != nil {
			r2.Close()
		}
		ret <- err
	}()
	select {
	case err := <-ret:
		if !errors.Is(err, ErrMiss) {
			t.Fatalf("stored-only Get during a fill = %v, want ErrMiss", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stored-only Get waited for a fill")
	}
	if s := c.Stats(); s.Coalesced != 0 || s.Misses != 1 {
		t.Fatalf("stats: %+v", s)
	}
	close(o.gate)
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "filled body", got, want)
	<-done
	got, st = storedOnlyRead(t, c, k, 0, 0, GetOptions{})
	mustEqual(t, "stored-only hit after the fill", got, want)
	if st != Hit || o.fetches.Load() != 1 {
		t.Fatalf("stored-only Get after the fill: %v, %d fetches", st, o.fetches.Load())
	}
}

// TestStoredOnlyHit: a stored whole object is a HIT with the stored bytes,
// counted once, for Get and for GetRange; a range beyond its end is
// ErrInvalidRange as with a fetcher.
func TestStoredOnlyHit(t *testing.T) {
	c := openTest(t, t.TempDir(), rangeOpts())
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "whole"}
	want := pattern(42, testSlice+300) // below SliceThreshold: stored whole
	o.put(k, want)
	get(t, c, k, o)
	<-done
	storedOnlyDrained(t, c)
	s0 := c.Stats()

	got, st := storedOnlyRead(t, c, k, 0, 0, GetOptions{})
	mustEqual(t, "stored-only Get", got, want)
	if st != Hit {
		t.Fatalf("stored-only Get: %v, want HIT", st)
	}
	if s := c.Stats(); s.Hits != s0.Hits+1 || s.Misses != s0.Misses || s.BytesFromCache != s0.BytesFromCache+int64(len(want)) {
		t.Fatalf("stats after a stored-only hit: %+v (before %+v)", s, s0)
	}

	got, st = storedOnlyRead(t, c, k, 1000, 200, GetOptions{})
	mustEqual(t, "stored-only GetRange", got, want[1000:1200])
	if st != Hit {
		t.Fatalf("stored-only GetRange: %v, want HIT", st)
	}
	got, _ = storedOnlyRead(t, c, k, 5, -1, GetOptions{})
	mustEqual(t, "stored-only GetRange to the end", got, want[5:])
	if s := c.Stats(); s.Hits != s0.Hits+3 || s.Misses != s0.Misses {
		t.Fatalf("stats after three stored-only hits: %+v (before %+v)", s, s0)
	}
	if _, _, err := c.GetRange(context.Background(), k, int64(len(want)), 1, nil, GetOptions{}); !errors.Is(err, ErrInvalidRange) {
		t.Fatalf("stored-only GetRange beyond the end = %v, want ErrInvalidRange", err)
	}
	if o.fetches.Load() != 1 || o.ranges.Load() != 0 {
		t.Fatalf("fetches %d, ranges %d; want 1, 0", o.fetches.Load(), o.ranges.Load())
	}
}

// TestStoredOnlyHitEmptyObject: a stored empty object is a stored whole
// object like any other: a Get without a fetcher serves it (HIT, 0 bytes),
// as a Get with one does.
func TestStoredOnlyHitEmptyObject(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "empty"}
	o.put(k, []byte{})
	get(t, c, k, o)
	<-done
	if m, ok := c.Stat(k); !ok || m.Size != 0 {
		t.Fatalf("empty object not stored: %+v, %v", m, ok)
	}
	if got, st := get(t, c, k, o); st != Hit || len(got) != 0 {
		t.Fatalf("Get with a fetcher: %v, %d bytes; want HIT, 0", st, len(got))
	}
	r, st, err := c.Get(context.Background(), k, nil, GetOptions{})
	if err != nil {
		t.Fatalf("Get without a fetcher of a stored empty object = %v, %v; want HIT", st, err)
	}
	defer r.Close()
	if b, err := io.ReadAll(r); err != nil || len(b) != 0 || st != Hit {
		t.Fatalf("Get without a fetcher of a stored empty object: %v, %d bytes, %v", st, len(b), err)
	}
}

// TestStoredOnlyHitRecordsLikeAHit: a hit without a fetcher records the
// access in the admission sketch under the object's key, as a hit with a
// fetcher does; otherwise objects read through the proxy's hit path look
// cold to TinyLFU when they are the eviction candidate.
func TestStoredOnlyHitRecordsLikeAHit(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "hot"}
	o.put(k, pattern(43, 10<<10))
	get(t, c, k, o)
	<-done
	est := func() (wholeEst, slice0Est int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sketch.Estimate(c.keyHash(k.Bucket, ekey{k.Object, whole})),
			c.sketch.Estimate(c.keyHash(k.Bucket, ekey{k.Object, 0}))
	}
	w0, _ := est()
	get(t, c, k, o) // a hit with a fetcher
	w1, s1 := est()
	if w1 <= w0 {
		t.Fatalf("a hit with a fetcher did not raise the object's estimate: %d -> %d", w0, w1)
	}
	storedOnlyRead(t, c, k, 0, 0, GetOptions{})
	w2, s2 := est()
	if w2-w1 != w1-w0 {
		t.Fatalf("a stored-only hit raised the object's (whole) estimate by %d, a hit with a fetcher by %d; "+
			"slice 0's estimate went %d -> %d", w2-w1, w1-w0, s1, s2)
	}
}

// TestStoredOnlyStale: an entry due for revalidation is ErrMiss without a
// fetcher, Validate not called; a Get with one then revalidates as ever,
// and the renewed entry is a stored-only hit again.
func TestStoredOnlyStale(t *testing.T) {
	clk := newClock()
	c := openTest(t, t.TempDir(), Options{Now: clk.Now})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "mutable"}
	want := pattern(44, 2000)
	o.put(k, want)
	get(t, c, k, o)
	<-done
	var validations atomic.Int64
	opts := GetOptions{MaxAge: time.Millisecond, Validate: func(ctx context.Context, k Key, m Meta) (bool, error) {
		validations.Add(1)
		return true, nil
	}}
	got, st := storedOnlyRead(t, c, k, 0, 0, opts)
	mustEqual(t, "fresh", got, want)
	if st != Hit || validations.Load() != 0 {
		t.Fatalf("fresh stored-only Get: %v, %d validations", st, validations.Load())
	}

	clk.Advance(time.Second)
	storedOnlyMiss(t, c, o, k, 0, 0, opts)
	storedOnlyMiss(t, c, o, k, 100, 50, opts)
	if n := validations.Load(); n != 0 {
		t.Fatalf("stored-only Get of a stale entry ran Validate %d times", n)
	}
	if _, ok := c.Stat(k); !ok {
		t.Fatal("stored-only Get of a stale entry dropped it")
	}

	r, st, err := c.Get(context.Background(), k, o, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(r)
	r.Close()
	mustEqual(t, "revalidated", got, want)
	if st != Hit || validations.Load() != 1 || o.fetches.Load() != 1 {
		t.Fatalf("Get with a fetcher after a stored-only miss: %v, %d validations, %d fetches; want HIT, 1, 1",
			st, validations.Load(), o.fetches.Load())
	}
	got, st = storedOnlyRead(t, c, k, 0, 0, opts)
	mustEqual(t, "renewed", got, want)
	if st != Hit || validations.Load() != 1 {
		t.Fatalf("stored-only Get after the revalidation: %v, %d validations", st, validations.Load())
	}
}

// TestStoredOnlySlices: an object stored only in slices, partly or wholly,
// is not a stored whole object: ErrMiss for Get and GetRange without a
// fetcher, even over slices that are stored.
func TestStoredOnlySlices(t *testing.T) {
	t.Run("ranges", func(t *testing.T) {
		c := openTest(t, t.TempDir(), rangeOpts())
		done := fillDone(c)
		o := newOrigin()
		k := Key{"b", "video"}
		obj := pattern(45, 5*testSlice+500)
		o.put(k, obj)
		got, _ := readRange(t, c, k, 1500, 1000, o) // slices 1 and 2
		mustEqual(t, "range", got, obj[1500:2500])
		<-done
		<-done
		storedOnlyMiss(t, c, o, k, 1500, 1000, GetOptions{})
		storedOnlyMiss(t, c, o, k, 2048, 10, GetOptions{})
		storedOnlyMiss(t, c, o, k, 0, 10, GetOptions{})
		storedOnlyMiss(t, c, o, k, 0, 0, GetOptions{})
		got, st := readRange(t, c, k, 1500, 1000, o)
		mustEqual(t, "range with a fetcher", got, obj[1500:2500])
		if st != Hit || o.ranges.Load() != 2 {
			t.Fatalf("range with a fetcher after stored-only misses: %v, %d ranges", st, o.ranges.Load())
		}
	})
	t.Run("large Get", func(t *testing.T) {
		c := openTest(t, t.TempDir(), rangeOpts())
		done := fillDone(c)
		o := newOrigin()
		k := Key{"b", "big"}
		obj := pattern(46, 10*testSlice+1)
		o.put(k, obj)
		get(t, c, k, o)
		<-done
		if n := c.Stats().Entries; n != 11 {
			t.Fatalf("%d entries, want 11 slices", n)
		}
		storedOnlyMiss(t, c, o, k, 0, 0, GetOptions{})
		storedOnlyMiss(t, c, o, k, 5*testSlice-3, 2*testSlice, GetOptions{})
	})
}

// TestStoredOnlyCorrupt: a stored file damaged behind the cache's back is
// never served by a stored-only Get: ErrMiss, no fetch; a Get with a
// fetcher then refetches it.
func TestStoredOnlyCorrupt(t *testing.T) {
	for _, damage := range []string{"flip", "truncate", "remove"} {
		t.Run(damage, func(t *testing.T) {
			want := pattern(47, 50<<10)
			c, o, k := storedThenDamaged(t, damage, want)
			done := fillDone(c)
			for _, n := range []int64{0, 100} { // Get, then GetRange
				var (
					r   *Reader
					st  Status
					err error
				)
				if n == 0 {
					r, st, err = c.Get(context.Background(), k, nil, GetOptions{})
				} else {
					r, st, err = c.GetRange(context.Background(), k, 0, n, nil, GetOptions{})
				}
				if r != nil {
					got, rerr := io.ReadAll(r)
					r.Close()
					if rerr == nil {
						mustEqual(t, "stored-only read of a damaged file", got, want[:len(got)])
					}
					t.Fatalf("stored-only read of a damaged file: %v, %v; %d bytes, read error %v; want ErrMiss", st, err, len(got), rerr)
				}
				if !errors.Is(err, ErrMiss) {
					t.Fatalf("stored-only read of a damaged file = %v, %v; want ErrMiss", st, err)
				}
			}
			if s := c.Stats(); o.fetches.Load() != 1 || s.Hits != 0 || s.Misses != 0 {
				t.Fatalf("after stored-only reads of a damaged file: %d fetches, %+v", o.fetches.Load(), s)
			}
			got, st := get(t, c, k, o)
			mustEqual(t, "refetched", got, want)
			if st != Miss || o.fetches.Load() != 2 {
				t.Fatalf("Get with a fetcher: %v, %d fetches; want a refetch", st, o.fetches.Load())
			}
			<-done
			got, st = storedOnlyRead(t, c, k, 0, 0, GetOptions{})
			mustEqual(t, "stored-only Get after the refetch", got, want)
			if st != Hit {
				t.Fatalf("stored-only Get after the refetch: %v", st)
			}
		})
	}
}

// TestStoredOnlyMissIsNotAdmissionHistory: with second-hit admission, a
// stored-only miss is not the object's first miss: the next real miss on a
// full cache is (BYPASS, not stored), and the one after it is admitted.
// With TinyLFU, the miss adds nothing to the sketch (storedOnlyMiss checks
// the estimates).
func TestStoredOnlyMissIsNotAdmissionHistory(t *testing.T) {
	const size = 8 << 10
	for _, withStoredOnly := range []bool{false, true} {
		name := "plain"
		if withStoredOnly {
			name = "after stored-only misses"
		}
		t.Run(name, func(t *testing.T) {
			c := openTest(t, t.TempDir(), Options{MaxBytes: 2 * size, MaxObjectSize: size, Admission: AdmitSecondHit})
			done := fillDone(c)
			o := newOrigin()
			key := func(i int) Key { return Key{"b", string(rune('a' + i))} }
			for i := range 3 {
				o.put(key(i), pattern(50+i, size))
			}
			for i := range 2 {
				get(t, c, key(i), o)
				<-done
			}
			if s := c.Stats(); s.UsedBytes != 2*size {
				t.Fatalf("cache not full: %+v", s)
			}
			k := key(2)
			if withStoredOnly {
				for range 3 {
					storedOnlyMiss(t, c, o, k, 0, 0, GetOptions{})
				}
			}
			got, st := get(t, c, k, o)
			mustEqual(t, "first miss", got, pattern(52, size))
			<-done
			if _, stored := c.Stat(k); st != Bypass || stored {
				t.Fatalf("first real miss on a full cache: %v, stored %v; want BYPASS, not stored", st, stored)
			}
			_, st = get(t, c, k, o)
			<-done
			if _, stored := c.Stat(k); st != Miss || !stored {
				t.Fatalf("second real miss: %v, stored %v; want MISS, stored", st, stored)
			}
		})
	}
	t.Run("tinylfu", func(t *testing.T) {
		c := openTest(t, t.TempDir(), Options{MaxBytes: 2 * size, MaxObjectSize: size})
		o := newOrigin()
		k := Key{"b", "never"}
		o.put(k, pattern(60, size))
		for range 5 {
			storedOnlyMiss(t, c, o, k, 0, 0, GetOptions{})
			storedOnlyMiss(t, c, o, k, 0, 10, GetOptions{})
		}
		c.mu.Lock()
		est := c.sketch.Estimate(c.keyHash(k.Bucket, ekey{k.Object, whole}))
		c.mu.Unlock()
		if est != 0 {
			t.Fatalf("sketch estimate after stored-only misses = %d, want 0", est)
		}
	})
}
