package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3edge/s3edge/cache/blob"
)

func TestStageCommit(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{SliceSize: 64 << 10, SliceThreshold: 128 << 10})
	o := newOrigin()
	for _, size := range []int{0, 1000, 100 << 10, 300 << 10} { // empty, small, whole, sliced
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			k := Key{"b", fmt.Sprint("upload-", size)}
			want := pattern(size, size)
			p, err := c.Stage(k, int64(size))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Write(want); err != nil {
				t.Fatal(err)
			}
			spooled, err := io.ReadAll(io.NewSectionReader(p, 0, p.Size()))
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, "spool", spooled, want)
			if err := p.Commit(Meta{Size: int64(size), ETag: `"up"`}); err != nil {
				t.Fatal(err)
			}
			got, st := get(t, c, k, o)
			mustEqual(t, "get", got, want)
			if st != Hit || o.fetches.Load()+o.ranges.Load() != 0 {
				t.Fatalf("Get after Commit: %v, %d fetches", st, o.fetches.Load()+o.ranges.Load())
			}
		})
	}
	if s := c.Stats(); s.ReservedBytes != 0 {
		t.Fatalf("ReservedBytes = %d after commits", s.ReservedBytes)
	}
}

// TestGenerations: a fill or an upload that started before Invalidate
// never stores over it.
func TestGenerations(t *testing.T) {
	t.Run("fill", func(t *testing.T) {
		c := openTest(t, t.TempDir(), Options{})
		done := fillDone(c)
		o := newOrigin()
		k := Key{"b", "racing"}
		old := pattern(5, 100<<10)
		o.put(k, old)
		o.gate, o.gateAt = make(chan struct{}), 10
		r, _, err := c.Get(context.Background(), k, o, GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.Invalidate(k) // a PUT arrived
		close(o.gate)
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, "reader of the old fill", got, old)
		<-done
		if _, ok := c.Stat(k); ok {
			t.Fatal("fill that started before Invalidate was stored")
		}
		if s := c.Stats(); s.UsedBytes != 0 || s.ReservedBytes != 0 {
			t.Fatalf("Stats after stale fill: %+v", s)
		}
	})
	t.Run("stage", func(t *testing.T) {
		c := openTest(t, t.TempDir(), Options{})
		k := Key{"b", "put-put"}
		p1, _ := c.Stage(k, 3)
		p1.Write([]byte("one"))
		c.Invalidate(k) // a second PUT
		p2, _ := c.Stage(k, 3)
		p2.Write([]byte("two"))
		if err := p2.Commit(Meta{Size: 3, ETag: `"2"`}); err != nil {
			t.Fatal(err)
		}
		// The first upload finishes last upstream: which write won is
		// unknown, so the entry is dropped rather than kept or replaced.
		if err := p1.Commit(Meta{Size: 3, ETag: `"1"`}); err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Stat(k); ok {
			t.Fatal("entry kept after a stale stage committed")
		}
	})
}

// TestEviction fills past MaxBytes: the bytes on disk stay within budget,
// the least recently used entries go, and a file being read stays on disk
// until its reader closes, even when its entry is dropped.
func TestEviction(t *testing.T) {
	dir := t.TempDir()
	const size, slots = 10 << 10, 8
	c := openTest(t, dir, Options{MaxBytes: slots * size, MaxObjectSize: size, Admission: AdmitAll})
	done := fillDone(c)
	o := newOrigin()
	key := func(i int) Key { return Key{"b", fmt.Sprint(i)} }
	for i := range 3 * slots {
		o.put(key(i), pattern(i, size))
	}
	get(t, c, key(0), o)
	<-done
	open, _, err := c.Get(context.Background(), key(0), o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := contentPath(dir, open.Meta().SHA256)
	for i := 1; i < 3*slots; i++ {
		get(t, c, key(i), o)
		<-done
		if s := c.Stats(); s.UsedBytes+s.ReservedBytes > slots*size {
			t.Fatalf("after %d fills: used %d + reserved %d > %d", i, s.UsedBytes, s.ReservedBytes, slots*size)
		}
	}
	if s := c.Stats(); s.Evictions == 0 || s.Entries != slots {
		t.Fatalf("Stats = %+v", s)
	}
	for i := 1; i < 2*slots+1; i++ {
		if _, ok := c.Stat(key(i)); ok {
			t.Fatalf("old entry %d still stored", i)
		}
	}
	if _, ok := c.Stat(key(0)); !ok {
		t.Fatal("the entry being read was evicted")
	}
	c.Invalidate(key(0)) // dropped from the index while open
	if !exists(path) {
		t.Fatal("file unlinked under its reader")
	}
	got, err := io.ReadAll(open)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "open reader", got, pattern(0, size))
	open.Close()
	if exists(path) {
		t.Fatal("file of a dropped entry kept after its reader closed")
	}
	if got, want := len(files(t, dir, "objects")), slots-1; got != want {
		t.Fatalf("%d files on disk, want %d", got, want)
	}
}

// TestBucketShares: a bucket hammering the cache evicts its own entries
// once the other bucket is within its share.
func TestBucketShares(t *testing.T) {
	const size = 4 << 10
	c := openTest(t, t.TempDir(), Options{
		MaxBytes: 20 * size, Admission: AdmitAll,
		Buckets: map[string]BucketLimits{"big": {Weight: 3}, "capped": {MaxBytes: 2 * size}},
	})
	done := fillDone(c)
	o := newOrigin()
	fill := func(bucket string, from, n int) {
		for i := from; i < from+n; i++ {
			k := Key{bucket, fmt.Sprint(i)}
			o.put(k, pattern(int(bucket[0])*1000+i, size)) // no dedup across buckets
			get(t, c, k, o)
			<-done
		}
	}
	fill("b", 0, 4)
	fill("a", 0, 100) // a hammers
	s := c.Stats()
	if s.Buckets["b"].Entries != 4 {
		t.Fatalf("b has %d entries, want its 4 (below its share)", s.Buckets["b"].Entries)
	}
	fill("b", 4, 100) // now b hammers: it may take a's bytes down to half
	s = c.Stats()
	if a, b := s.Buckets["a"].Entries, s.Buckets["b"].Entries; a != 10 || b != 10 {
		t.Fatalf("entries a=%d b=%d, want 10 and 10", a, b)
	}
	fill("big", 0, 100) // weight 3 of 5
	s = c.Stats()
	if a, b, big := s.Buckets["a"].Entries, s.Buckets["b"].Entries, s.Buckets["big"].Entries; big != 12 || a != 4 || b != 4 {
		t.Fatalf("entries a=%d b=%d big=%d, want 4 4 12", a, b, big)
	}
	fill("capped", 0, 5)
	if n := c.Stats().Buckets["capped"].Entries; n != 2 {
		t.Fatalf("capped bucket holds %d entries, want 2", n)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	const size = 8 << 10
	opts := Options{MaxBytes: 2 * size, MaxObjectSize: size, Admission: AdmitAll, SliceSize: 4 << 10, SliceThreshold: 4 << 10}
	c := openTest(t, dir, opts)
	done := fillDone(c)
	o := newOrigin()
	key := func(i int) Key { return Key{"b", fmt.Sprint(i)} }
	for i := range 2 {
		o.put(key(i), pattern(i, size))
		get(t, c, key(i), o) // sliced: 2 slices each
		<-done
	}
	get(t, c, key(0), o) // 0 is now more recent than 1
	c.Close()

	// A crash left a temp file and a file no entry names.
	os.WriteFile(filepath.Join(dir, "tmp", "fill-123"), []byte("torn"), 0o644)
	orphan := contentPath(dir, [32]byte{1, 2, 3})
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	os.WriteFile(orphan, []byte("orphan"), 0o644)

	c = openTest(t, dir, opts)
	done = fillDone(c)
	<-c.scrubbed
	if f := files(t, dir, "tmp"); len(f) != 0 || exists(orphan) {
		t.Fatalf("after Open: temp files %v, orphan kept %v", f, exists(orphan))
	}
	before := o.fetches.Load() + o.ranges.Load()
	for i := range 2 {
		got, st := get(t, c, key(i), o)
		mustEqual(t, "after restart", got, pattern(i, size))
		if st != Hit {
			t.Fatalf("Get(%d) after restart = %v, want HIT", i, st)
		}
	}
	if n := o.fetches.Load() + o.ranges.Load(); n != before {
		t.Fatalf("fetches after restart: %d", n-before)
	}
	// Recency survived: 1 was read last now; storing a third object
	// evicts 0, the least recently used.
	get(t, c, key(1), o)
	o.put(key(2), pattern(2, size))
	get(t, c, key(2), o)
	<-done
	if _, ok := c.Stat(key(0)); ok {
		t.Fatal("least recently used entry kept")
	}
	if _, ok := c.Stat(key(1)); !ok {
		t.Fatal("recently used entry evicted")
	}
}

// storedThenDamaged stores want under one key in a new cache, closes it,
// damages the stored file behind its back ("flip" a byte, "truncate" it or
// "remove" it) and opens the cache again.
func storedThenDamaged(t *testing.T, damage string, want []byte) (*Cache, *origin, Key) {
	t.Helper()
	dir := t.TempDir()
	c := openTest(t, dir, Options{})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "k"}
	o.put(k, want)
	get(t, c, k, o)
	<-done
	m, ok := c.Stat(k)
	if !ok {
		t.Fatalf("not stored: %+v", c.Stats())
	}
	c.Close()
	path := contentPath(dir, m.SHA256)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch damage {
	case "flip":
		b[len(b)/2] ^= 0x40
		err = os.WriteFile(path, b, 0o644)
	case "truncate":
		err = os.WriteFile(path, b[:len(b)-1], 0o644)
	case "remove":
		err = os.Remove(path)
	default:
		t.Fatalf("unknown damage %q", damage)
	}
	if err != nil {
		t.Fatal(err)
	}
	return openTest(t, dir, Options{}), o, k
}

// TestCorruptRefetched flips a byte of a stored file, or truncates it,
// behind the cache's back: it is never served; the object is refetched.
func TestCorruptRefetched(t *testing.T) {
	for _, damage := range []string{"flip", "truncate", "remove"} {
		t.Run(damage, func(t *testing.T) {
			want := pattern(9, 50<<10)
			c, o, k := storedThenDamaged(t, damage, want)
			got, st := get(t, c, k, o)
			mustEqual(t, "after corruption", got, want)
			if st != Miss || o.fetches.Load() != 2 {
				t.Fatalf("status %v, fetches %d; want a refetch", st, o.fetches.Load())
			}
			if damage != "remove" && c.Stats().Corrupt != 1 {
				t.Fatalf("Corrupt = %d", c.Stats().Corrupt)
			}
		})
	}
}

func TestDedup(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, Options{})
	done := fillDone(c)
	o := newOrigin()
	same := pattern(11, 40<<10)
	a, b := Key{"tenant1", "remote_content/x"}, Key{"tenant2", "remote_content/y"}
	o.put(a, same)
	o.put(b, same)
	get(t, c, a, o)
	<-done
	get(t, c, b, o)
	<-done
	if n := len(files(t, dir, "objects")); n != 1 {
		t.Fatalf("%d files for identical bytes, want 1", n)
	}
	if s := c.Stats(); s.UsedBytes != int64(len(same)) || s.Entries != 2 {
		t.Fatalf("Stats = %+v", s)
	}
	c.Invalidate(a)
	got, st := get(t, c, b, o)
	mustEqual(t, "other key", got, same)
	if st != Hit || len(files(t, dir, "objects")) != 1 {
		t.Fatalf("after dropping one key: %v, %d files", st, len(files(t, dir, "objects")))
	}
	c.Invalidate(b)
	if n := len(files(t, dir, "objects")); n != 0 || c.Stats().UsedBytes != 0 {
		t.Fatalf("%d files, %d bytes after dropping both keys", n, c.Stats().UsedBytes)
	}
}

// TestDiskTrouble: with writes failing, fills stream through as BYPASS,
// the trouble is counted, and storing resumes once the disk recovers.
func TestDiskTrouble(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EROFS, syscall.EIO} {
		t.Run(errno.Error(), func(t *testing.T) {
			dir := t.TempDir()
			ds, _ := blob.NewDisk(dir)
			fs := &faultStore{Store: ds}
			clk := newClock()
			c := openTest(t, dir, Options{Store: fs, Now: clk.Now})
			done := fillDone(c)
			o := newOrigin()
			k := Key{"b", "k"}
			want := pattern(12, 3<<20)
			o.put(k, want)
			fs.fail(errno)
			for i := range 2 {
				got, st := get(t, c, k, o)
				mustEqual(t, "pass-through", got, want)
				<-done
				// The first fill is admitted, then its writes fail: MISS or
				// BYPASS depending on when the caller looks. Then the cache
				// does not try the disk for a while: BYPASS.
				if st != Bypass && (i > 0 || st != Miss) {
					t.Fatalf("Get %d = %v, want BYPASS", i, st)
				}
			}
			s := c.Stats()
			if s.DiskErrors == 0 || s.Entries != 0 || s.UsedBytes != 0 || s.ReservedBytes != 0 {
				t.Fatalf("Stats with a failing disk = %+v", s)
			}
			if left := files(t, dir, "tmp"); len(left) != 0 {
				t.Fatalf("temp files left: %v", left)
			}
			if _, err := c.Stage(k, 10); err != ErrUnavailable {
				t.Fatalf("Stage on a failing disk = %v", err)
			}
			fs.fail(nil)
			clk.Advance(diskRetryAfter + time.Second)
			get(t, c, k, o)
			<-done
			if _, st := get(t, c, k, o); st != Hit {
				t.Fatalf("after recovery: %v, want HIT", st)
			}
		})
	}
}

func TestRevalidate(t *testing.T) {
	clk := newClock()
	c := openTest(t, t.TempDir(), Options{Now: clk.Now})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "mutable"}
	o.put(k, pattern(13, 1000))
	get(t, c, k, o)
	<-done
	validations := 0
	var verdict bool
	var verr error
	opts := GetOptions{MaxAge: time.Minute, Validate: func(ctx context.Context, k Key, m Meta) (bool, error) {
		validations++
		return verdict, verr
	}}
	read := func() (Status, error) {
		r, st, err := c.Get(context.Background(), k, o, opts)
		if err == nil {
			io.Copy(io.Discard, r)
			r.Close()
		}
		return st, err
	}
	if st, _ := read(); st != Hit || validations != 0 {
		t.Fatalf("fresh: %v, %d validations", st, validations)
	}
	clk.Advance(2 * time.Minute)
	verdict = true
	if st, _ := read(); st != Hit || validations != 1 {
		t.Fatalf("unchanged: %v, %d validations", st, validations)
	}
	if st, _ := read(); st != Hit || validations != 1 {
		t.Fatalf("renewed: %v, %d validations", st, validations)
	}
	clk.Advance(2 * time.Minute)
	verr = fmt.Errorf("upstream down")
	if _, err := read(); err == nil {
		t.Fatal("failed revalidation without StaleIfError served the entry")
	}
	opts.StaleIfError = true
	if st, err := read(); st != Stale || err != nil {
		t.Fatalf("StaleIfError: %v, %v", st, err)
	}
	verr, verdict = nil, false
	o.put(k, pattern(14, 1000))
	if st, _ := read(); st != Miss || o.fetches.Load() != 2 {
		t.Fatalf("changed: %v, %d fetches", st, o.fetches.Load())
	}
}

// TestMinFreeDisk: the cache evicts to keep the device's free space, even
// below MaxBytes.
func TestMinFreeDisk(t *testing.T) {
	const size = 10 << 10
	disk := smallDisk{newMemStore(), 100 << 10}
	c := openTest(t, t.TempDir(), Options{MaxBytes: 1 << 30, MinFreeDisk: 40 << 10, Store: disk, Admission: AdmitAll})
	done := fillDone(c)
	o := newOrigin()
	for i := range 20 {
		k := Key{"b", fmt.Sprint(i)}
		o.put(k, pattern(i, size))
		get(t, c, k, o)
		<-done
		if free, _ := disk.Free(); free < 40<<10 {
			t.Fatalf("after %d objects: %d bytes free, want ≥ %d", i+1, free, 40<<10)
		}
	}
	if n := c.Stats().Entries; n != 6 {
		t.Fatalf("%d entries, want 6 (60 KiB of a 100 KiB disk)", n)
	}
}

// TestScrub: after a restart, files no entry names are removed and entries
// whose file is gone are dropped, in the background.
func TestScrub(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, Options{})
	done := fillDone(c)
	o := newOrigin()
	for i := range 3 {
		k := Key{"b", fmt.Sprint(i)}
		o.put(k, pattern(40+i, 1000))
		get(t, c, k, o)
		<-done
	}
	m, _ := c.Stat(Key{"b", "1"})
	c.Close()
	os.Remove(contentPath(dir, m.SHA256))
	orphan := contentPath(dir, [32]byte{9})
	os.MkdirAll(filepath.Dir(orphan), 0o755)
	os.WriteFile(orphan, []byte("orphan"), 0o644)

	c = openTest(t, dir, Options{})
	<-c.scrubbed
	if exists(orphan) {
		t.Fatal("orphan file kept")
	}
	if s := c.Stats(); s.Entries != 2 || s.UsedBytes != 2000 {
		t.Fatalf("after scrub: %d entries, %d bytes; want 2, 2000", s.Entries, s.UsedBytes)
	}
	if _, ok := c.Stat(Key{"b", "1"}); ok {
		t.Fatal("entry without a file kept")
	}
}

// TestTaggedEntriesSurviveRestart: entries stored with a Tag, whole and in
// slices, are kept by a restart with their tag (a tagged record is the
// second meta format).
func TestTaggedEntriesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	opts := Options{MaxBytes: 1 << 20, Admission: AdmitAll, SliceSize: 4 << 10, SliceThreshold: 8 << 10}
	c := openTest(t, dir, opts)
	done := fillDone(c)
	o := newOrigin()
	o.tag = "sse-c:t1"
	whole, sliced := Key{"b", "whole"}, Key{"b", "sliced"}
	o.put(whole, pattern(1, 5<<10))
	o.put(sliced, pattern(2, 20<<10))
	for _, k := range []Key{whole, sliced} {
		get(t, c, k, o)
		<-done
	}
	c.Close()

	c = openTest(t, dir, opts)
	before := o.fetches.Load() + o.ranges.Load()
	for i, k := range []Key{whole, sliced} {
		r, st, err := c.Get(context.Background(), k, o, GetOptions{})
		if err != nil || st != Hit {
			t.Fatalf("Get(%v) after restart = %v, %v; want HIT", k, st, err)
		}
		if tag := r.Meta().Tag; tag != "sse-c:t1" {
			t.Errorf("%v: tag after restart %q, want sse-c:t1", k, tag)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		mustEqual(t, k.Object, got, pattern(i+1, []int{5 << 10, 20 << 10}[i]))
	}
	if m, ok := c.Stat(whole); !ok || m.Tag != "sse-c:t1" {
		t.Errorf("Stat after restart = %+v, %v", m, ok)
	}
	if n := o.fetches.Load() + o.ranges.Load(); n != before {
		t.Errorf("%d fetches after restart, want 0", n-before)
	}
}

// TestDrain: on shutdown, a fill whose only client has left still commits
// if Drain is given the time; one still blocked when Drain gives up is
// cancelled by Close and leaves nothing behind.
func TestDrain(t *testing.T) {
	for _, finish := range []bool{true, false} {
		t.Run(fmt.Sprintf("finish=%v", finish), func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{Admission: AdmitAll}
			c := openTest(t, dir, opts)
			o := newOrigin()
			k := Key{"b", "k"}
			want := pattern(7, 300<<10)
			o.put(k, want)
			o.gate, o.gateAt = make(chan struct{}), 1000

			r, st, err := c.Get(context.Background(), k, o, GetOptions{})
			if err != nil || st != Miss {
				t.Fatalf("Get = %v, %v", st, err)
			}
			if _, err := io.ReadFull(r, make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
			r.Close() // the client leaves; the fill is the cache's

			drained := make(chan error, 1)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { drained <- c.Drain(ctx) }()
			select {
			case err := <-drained:
				t.Fatalf("Drain returned %v with a fill blocked", err)
			case <-time.After(50 * time.Millisecond):
			}
			if finish {
				close(o.gate)
				if err := <-drained; err != nil {
					t.Fatalf("Drain = %v", err)
				}
			} else {
				cancel()
				if err := <-drained; !errors.Is(err, context.Canceled) {
					t.Fatalf("Drain = %v, want context.Canceled", err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if !finish {
				close(o.gate)
			}

			c = openTest(t, dir, opts)
			if f := files(t, dir, "tmp"); len(f) != 0 {
				t.Fatalf("temp files left: %v", f)
			}
			fetches := o.fetches.Load()
			got, st := get(t, c, k, o)
			mustEqual(t, "after restart", got, want)
			switch {
			case finish && (st != Hit || o.fetches.Load() != fetches):
				t.Fatalf("drained fill: Get after restart = %v with %d fetches, want a HIT", st, o.fetches.Load()-fetches)
			case !finish && st != Miss:
				t.Fatalf("cancelled fill: Get after restart = %v, want MISS", st)
			}
		})
	}
}

// TestMissTimeout: an origin that never answers holds a miss no longer than
// MissTimeout; the fill goes on and serves the next caller once it answers.
func TestMissTimeout(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{Admission: AdmitAll, MissTimeout: 100 * time.Millisecond})
	done := fillDone(c)
	answer := make(chan struct{})
	want := pattern(9, 10<<10)
	var fetches atomic.Int64
	fetch := FetchFunc(func(ctx context.Context, k Key) (Meta, io.ReadCloser, error) {
		fetches.Add(1)
		select {
		case <-answer:
		case <-ctx.Done():
			return Meta{}, nil, ctx.Err()
		}
		return Meta{Size: int64(len(want)), ETag: `"e"`}, io.NopCloser(bytes.NewReader(want)), nil
	})
	k := Key{"b", "k"}
	start := time.Now()
	_, _, err := c.Get(context.Background(), k, fetch, GetOptions{})
	if !errors.Is(err, ErrMissTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with the origin silent = %v, want ErrMissTimeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the miss took %v to time out", d)
	}
	close(answer)
	<-done
	got, st := get(t, c, k, fetch)
	mustEqual(t, "after the origin answered", got, want)
	if st != Hit || fetches.Load() != 1 {
		t.Fatalf("Get after the fill = %v with %d fetches, want a HIT from the one fetch", st, fetches.Load())
	}
}
