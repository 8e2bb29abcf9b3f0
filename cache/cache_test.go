package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"sync"
	"testing"
)

func TestHitAfterMiss(t *testing.T) {
	dir := t.TempDir()
	c := openTest(t, dir, Options{})
	o := newOrigin()
	k := Key{"media", "local_content/ab/cd/xyz"}
	want := pattern(1, 300<<10)
	o.put(k, want)
	done := fillDone(c)

	got, st := get(t, c, k, o)
	mustEqual(t, "miss", got, want)
	if st != Miss {
		t.Fatalf("first Get status = %v, want MISS", st)
	}
	<-done
	for range 3 {
		got, st = get(t, c, k, o)
		mustEqual(t, "hit", got, want)
		if st != Hit {
			t.Fatalf("Get status = %v, want HIT", st)
		}
	}
	if n := o.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	s := c.Stats()
	if s.Hits != 3 || s.Misses != 1 || s.BytesFromCache != 3*int64(len(want)) || s.BytesFilled != int64(len(want)) {
		t.Fatalf("Stats = %+v", s)
	}
	if s.Buckets["media"].Entries != 1 || s.Buckets["media"].Bytes != int64(len(want)) {
		t.Fatalf("bucket stats = %+v", s.Buckets)
	}
	if m, ok := c.Stat(k); !ok || m.Size != int64(len(want)) || m.Header["X-Amz-Meta-K"] != k.Object {
		t.Fatalf("Stat = %+v, %v", m, ok)
	}
	if left := files(t, dir, "tmp"); len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

// TestCoalesce64 has 64 callers miss on one cold key while the fetch is
// held half-way: exactly one fetch, every reader gets the first half before
// the fetch can finish, and every body is complete.
func TestCoalesce64(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	o := newOrigin()
	k := Key{"b", "cold"}
	want := pattern(2, 1<<20)
	o.put(k, want)
	o.gate, o.gateAt = make(chan struct{}), len(want)/2

	const n = 64
	var firstHalf, all sync.WaitGroup
	firstHalf.Add(n)
	statuses := make([]Status, n)
	errs := make([]error, n)
	for i := range n {
		all.Go(func() {
			r, st, err := c.Get(context.Background(), k, o, GetOptions{})
			if err != nil {
				errs[i] = err
				firstHalf.Done()
				return
			}
			defer r.Close()
			statuses[i] = st
			buf := make([]byte, len(want))
			if _, err := io.ReadFull(r, buf[:len(want)/2]); err != nil {
				errs[i] = err
				firstHalf.Done()
				return
			}
			firstHalf.Done()
			if _, err := io.ReadFull(r, buf[len(want)/2:]); err != nil {
				errs[i] = err
				return
			}
			if string(buf) != string(want) {
				errs[i] = errors.New("wrong bytes")
			}
		})
	}
	firstHalf.Wait() // the fetch cannot have finished: its body is held at half
	close(o.gate)
	all.Wait()
	misses := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("reader %d: %v", i, errs[i])
		}
		if statuses[i] == Miss {
			misses++
		} else if statuses[i] != Coalesced {
			t.Fatalf("reader %d status = %v", i, statuses[i])
		}
	}
	if f := o.fetches.Load(); f != 1 || misses != 1 {
		t.Fatalf("fetches = %d, misses = %d; want 1, 1", f, misses)
	}
}

// TestLeaderLeaves: the caller that started the fill cancels and closes
// early; the others complete and the object is stored.
func TestLeaderLeaves(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "k"}
	want := pattern(3, 200<<10)
	o.put(k, want)
	o.gate, o.gateAt = make(chan struct{}), 1000

	ctx, cancel := context.WithCancel(context.Background())
	leader, st, err := c.Get(ctx, k, o, GetOptions{})
	if err != nil || st != Miss {
		t.Fatalf("leader Get = %v, %v", st, err)
	}
	joiner, st, err := c.Get(context.Background(), k, o, GetOptions{})
	if err != nil || st != Coalesced {
		t.Fatalf("joiner Get = %v, %v", st, err)
	}
	buf := make([]byte, 100)
	if _, err := io.ReadFull(leader, buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := io.ReadAll(leader); !errors.Is(err, context.Canceled) {
		t.Fatalf("leader read after cancel = %v, want context.Canceled", err)
	}
	leader.Close()
	close(o.gate)
	got, err := io.ReadAll(joiner)
	joiner.Close()
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "joiner", got, want)
	<-done
	if _, st := get(t, c, k, o); st != Hit {
		t.Fatalf("after fill: status %v, want HIT", st)
	}
	if f := o.fetches.Load(); f != 1 {
		t.Fatalf("fetches = %d, want 1", f)
	}
}

// TestBadBodies: a body that fails or ends early is an error for every
// reader (never a clean EOF), nothing is stored, no temp file is left, and
// the next Get fetches again.
func TestBadBodies(t *testing.T) {
	sliced := Options{SliceSize: 64 << 10, SliceThreshold: 128 << 10}
	tests := []struct {
		name    string
		o       Options
		set     func(o *origin, n int)
		wantErr error
	}{
		{"reset mid-body", Options{}, func(o *origin, n int) { o.failAt = n / 2 }, errReset},
		{"short body", Options{}, func(o *origin, n int) { o.short = n - 1 }, io.ErrUnexpectedEOF},
		{"empty body", Options{}, func(o *origin, n int) { o.short = -1 }, ErrShortBody},
		// A sliced object keeps the slices it completed: they are valid.
		{"sliced, short at a slice edge", sliced, func(o *origin, n int) { o.short = 64 << 10 }, ErrShortBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c := openTest(t, dir, tt.o)
			done := fillDone(c)
			o := newOrigin()
			k := Key{"b", "bad"}
			want := pattern(4, 300<<10)
			o.put(k, want)
			tt.set(o, len(want))
			o.gate, o.gateAt = make(chan struct{}), 0
			var readers []*Reader
			for range 4 {
				r, _, err := c.Get(context.Background(), k, o, GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				readers = append(readers, r)
			}
			close(o.gate)
			for i, r := range readers {
				got, err := io.ReadAll(r)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("reader %d: ReadAll = %d bytes, %v; want error %v", i, len(got), err, tt.wantErr)
				}
				r.Close()
			}
			<-done
			if _, ok := c.Stat(k); ok != (tt.o.SliceSize > 0) {
				t.Fatalf("Stat after a bad body: stored = %v", ok)
			}
			if s := c.Stats(); s.UsedBytes != int64(o.short) && tt.o.SliceSize > 0 || s.UsedBytes != 0 && tt.o.SliceSize == 0 {
				t.Fatalf("UsedBytes after a bad body = %d", s.UsedBytes)
			}
			if left := files(t, dir, "tmp"); len(left) != 0 {
				t.Fatalf("temp files left: %v", left)
			}
			if c.Stats().FillErrors != 1 {
				t.Fatalf("FillErrors = %d, want 1", c.Stats().FillErrors)
			}
			o.failAt, o.short, o.gate = 0, 0, nil
			got, st := get(t, c, k, o)
			mustEqual(t, "refetch", got, want)
			if st != Miss || o.fetches.Load()+o.ranges.Load() < 2 {
				t.Fatalf("refetch: status %v, fetches %d, ranges %d", st, o.fetches.Load(), o.ranges.Load())
			}
		})
	}
}

func TestFetchErrorBeforeMeta(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	if _, _, err := c.Get(context.Background(), Key{"b", "k"}, nil, GetOptions{}); !errors.Is(err, ErrMiss) {
		t.Fatalf("Get without a fetcher = %v, want ErrMiss", err)
	}
	o := newOrigin()
	_, _, err := c.Get(context.Background(), Key{"b", "missing"}, o, GetOptions{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get(missing) = %v, want the fetcher's error", err)
	}
}

// TestBypass: objects that are not stored still stream to every caller
// that joined before the decision, through a bounded window, and are
// fetched once for them.
func TestBypass(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{MaxObjectSize: 1 << 20})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "too-large"}
	want := pattern(30, 5<<20) // five times the window
	o.put(k, want)
	o.gate, o.gateAt = make(chan struct{}), 0
	var readers []*Reader
	for range 3 {
		r, _, err := c.Get(context.Background(), k, o, GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
	}
	close(o.gate)
	var wg sync.WaitGroup
	for i, r := range readers {
		wg.Go(func() {
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil || string(got) != string(want) {
				t.Errorf("reader %d: %d bytes, %v", i, len(got), err)
			}
		})
	}
	wg.Wait()
	<-done
	s := c.Stats()
	if o.fetches.Load() != 1 || s.Bypass != 1 || s.Coalesced != 2 || s.Entries != 0 || s.UsedBytes != 0 {
		t.Fatalf("fetches %d, Stats %+v", o.fetches.Load(), s)
	}
}

func TestOddBodies(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	done := fillDone(c)
	body := []byte("0123456789")
	tests := []struct {
		name     string
		size     int64
		wantErr  error
		wantSize int64
	}{
		{"unknown size streams to EOF", -1, nil, -1},
		{"longer than declared", 5, ErrLongBody, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := FetchFunc(func(ctx context.Context, k Key) (Meta, io.ReadCloser, error) {
				return Meta{Size: tt.size}, io.NopCloser(bytes.NewReader(body)), nil
			})
			k := Key{"b", tt.name}
			r, _, err := c.Get(context.Background(), k, f, GetOptions{})
			if err != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Get = %v", err)
				}
				return
			}
			got, err := io.ReadAll(r)
			r.Close()
			<-done
			if !errors.Is(err, tt.wantErr) || (err == nil && string(got) != string(body)) || r.Size() != tt.wantSize {
				t.Fatalf("read %q, %v; Size %d", got, err, r.Size())
			}
			if _, ok := c.Stat(k); ok {
				t.Fatal("stored")
			}
		})
	}
}

// TestCloseDuringFill: Close cancels fills, their readers get an error, and
// Close returns once every goroutine of the cache has stopped.
func TestCloseDuringFill(t *testing.T) {
	c, err := Open(t.TempDir(), Options{MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	o := newOrigin()
	k := Key{"b", "k"}
	o.put(k, pattern(50, 100<<10))
	o.gate, o.gateAt = make(chan struct{}), 10
	r, _, err := c.Get(context.Background(), k, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); err == nil {
		t.Fatal("read of a fill canceled by Close succeeded")
	}
	r.Close()
	if _, _, err := c.Get(context.Background(), k, o, GetOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close = %v", err)
	}
	c.Invalidate(k) // no-op, no hang
}
