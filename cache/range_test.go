package cache

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
)

const testSlice = 1 << 10

func rangeOpts() Options {
	return Options{SliceSize: testSlice, SliceThreshold: 2 * testSlice}
}

func readRange(t *testing.T, c *Cache, k Key, off, n int64, rf RangeFetcher) ([]byte, Status) {
	t.Helper()
	r, st, err := c.GetRange(context.Background(), k, off, n, rf, GetOptions{})
	if err != nil {
		t.Fatalf("GetRange(%d, %d) = %v", off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("GetRange(%d, %d): read: %v", off, n, err)
	}
	return b, st
}

func TestGetRange(t *testing.T) {
	c := openTest(t, t.TempDir(), rangeOpts())
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "video"}
	obj := pattern(20, 5*testSlice+500)
	o.put(k, obj)

	got, st := readRange(t, c, k, 1500, 1000, o)
	mustEqual(t, "range", got, obj[1500:2500])
	<-done
	<-done
	if st != Miss || o.ranges.Load() != 2 {
		t.Fatalf("first range: %v, %d range fetches; want MISS, 2 (slices 1 and 2)", st, o.ranges.Load())
	}
	got, st = readRange(t, c, k, 1500, 1000, o)
	mustEqual(t, "same range", got, obj[1500:2500])
	if st != Hit || o.ranges.Load() != 2 {
		t.Fatalf("second range: %v, %d range fetches; want HIT, 2", st, o.ranges.Load())
	}
	got, st = readRange(t, c, k, 2048, 10, o)
	mustEqual(t, "inner range", got, obj[2048:2058])
	if st != Hit {
		t.Fatalf("range inside stored slices: %v", st)
	}
	got, _ = readRange(t, c, k, 100, -1, o) // to the end: slices 0, 3, 4, 5 missing
	mustEqual(t, "open range", got, obj[100:])
	for range 4 {
		<-done
	}
	if n := o.ranges.Load(); n != 6 {
		t.Fatalf("range fetches = %d, want 6 (each slice once)", n)
	}
	whole, st := get(t, c, k, o)
	mustEqual(t, "whole from slices", whole, obj)
	if st != Hit || o.fetches.Load() != 0 {
		t.Fatalf("Get of a fully sliced object: %v, %d fetches", st, o.fetches.Load())
	}
	got, _ = readRange(t, c, k, int64(len(obj))-1, 100, o)
	mustEqual(t, "last byte", got, obj[len(obj)-1:])
	for _, off := range []int64{int64(len(obj)), int64(len(obj)) + testSlice} {
		if _, _, err := c.GetRange(context.Background(), k, off, 1, o, GetOptions{}); !errors.Is(err, ErrInvalidRange) {
			t.Fatalf("GetRange(%d) beyond the end = %v, want ErrInvalidRange", off, err)
		}
	}
	// ReadAt and Seek across slice boundaries.
	r, _, err := c.GetRange(context.Background(), k, 500, 3000, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 1500)
	if n, err := r.ReadAt(buf, 700); n != 1500 || err != nil {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	mustEqual(t, "ReadAt", buf, obj[1200:2700])
	if _, err := r.Seek(-10, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(r)
	mustEqual(t, "Seek", tail, obj[3490:3500])
}

func TestGetRangeUnknownObjectCold(t *testing.T) {
	c := openTest(t, t.TempDir(), rangeOpts())
	o := newOrigin()
	k := Key{"b", "cold"}
	obj := pattern(21, 3*testSlice)
	o.put(k, obj)
	// A range starting beyond the end of an object not seen yet.
	if _, _, err := c.GetRange(context.Background(), k, 3*testSlice+5, 10, o, GetOptions{}); !errors.Is(err, ErrInvalidRange) {
		t.Fatalf("GetRange beyond the end of a cold object = %v", err)
	}
	got, _ := readRange(t, c, k, testSlice-1, 2, o)
	mustEqual(t, "straddling range", got, obj[testSlice-1:testSlice+1])
}

// TestRangesCoalesce: concurrent ranges over one slice fetch it once.
func TestRangesCoalesce(t *testing.T) {
	c := openTest(t, t.TempDir(), rangeOpts())
	o := newOrigin()
	k := Key{"b", "seek"}
	obj := pattern(22, 8*testSlice)
	o.put(k, obj)
	o.gate, o.gateAt = make(chan struct{}), 0
	var wg sync.WaitGroup
	var started sync.WaitGroup
	errs := make([]error, 8)
	for i := range 8 {
		started.Add(1)
		wg.Go(func() {
			off := int64(3*testSlice + i*100)
			r, _, err := c.GetRange(context.Background(), k, off, 50, o, GetOptions{})
			started.Done()
			if err != nil {
				errs[i] = err
				return
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err == nil && string(got) != string(obj[off:off+50]) {
				err = errors.New("wrong bytes")
			}
			errs[i] = err
		})
	}
	started.Wait() // every range has its reader: all joined the one fill
	close(o.gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("range %d: %v", i, err)
		}
	}
	if n := o.ranges.Load(); n != 1 {
		t.Fatalf("range fetches = %d, want 1", n)
	}
}

// TestLargeGetStoredAsSlices: a plain GET of a large object is fetched once
// and stored as slices, which later ranges hit.
func TestLargeGetStoredAsSlices(t *testing.T) {
	c := openTest(t, t.TempDir(), rangeOpts())
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "big"}
	obj := pattern(23, 10*testSlice+1)
	o.put(k, obj)
	got, st := get(t, c, k, o)
	mustEqual(t, "whole", got, obj)
	<-done
	if st != Miss || c.Stats().Entries != 11 {
		t.Fatalf("large Get: %v, %d entries; want 11 slices", st, c.Stats().Entries)
	}
	got, st = readRange(t, c, k, 5*testSlice-3, 2*testSlice, o)
	mustEqual(t, "range", got, obj[5*testSlice-3:7*testSlice-3])
	if st != Hit || o.ranges.Load() != 0 || o.fetches.Load() != 1 {
		t.Fatalf("range after large Get: %v, %d ranges, %d fetches", st, o.ranges.Load(), o.fetches.Load())
	}
}

// TestRangeChanged: a range spanning slices never mixes two versions.
func TestRangeChanged(t *testing.T) {
	c := openTest(t, t.TempDir(), rangeOpts())
	o := newOrigin()
	k := Key{"b", "changing"}
	o.put(k, pattern(24, 4*testSlice))
	r, _, err := c.GetRange(context.Background(), k, 0, -1, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, testSlice)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	o.put(k, pattern(25, 4*testSlice)) // new ETag upstream
	if _, err := io.ReadAll(r); err == nil {
		t.Fatal("read across a version change succeeded")
	}
}
