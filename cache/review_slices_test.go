package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"
)

// Review of slices and ranges: ranges over stored, filling and missing
// slices, version changes at the origin, invalidation, failures, eviction
// and restart in the middle of sliced reads.

// rsOrigin is a fake upstream of one object with per-slice control: a gate
// per range offset (the body blocks after gateAt bytes until it is closed),
// one-shot resets and short bodies per offset, and a record of every
// range fetch and the If-Match it carried.
type rsOrigin struct {
	mu      sync.Mutex
	data    []byte
	etag    string
	gen     int
	honor   bool // answer a mismatching If-Match with an error (S3's 412); else ignore it
	gates   map[int64]chan struct{}
	gateAt  int
	fails   map[int64]int // off → reset after n bytes (once)
	shorts  map[int64]int // off → clean EOF after n bytes (once)
	calls   map[int64]int
	ifMatch map[int64][]string
	wholes  int
}

// errRSPrecondition is the fake upstream's 412. It wraps ErrChanged, so
// that the cache can tell "the object changed" from a failed transfer (the
// proxy's RangeFetcher would map upstream.ErrPreconditionFailed to it).
var errRSPrecondition = fmt.Errorf("fake upstream: 412 precondition failed: %w", ErrChanged)

func newRSOrigin(data []byte) *rsOrigin {
	o := &rsOrigin{honor: true, gates: map[int64]chan struct{}{}, fails: map[int64]int{},
		shorts: map[int64]int{}, calls: map[int64]int{}, ifMatch: map[int64][]string{}}
	o.set(data)
	return o
}

// set replaces the object at the origin (a new version, a new ETag).
func (o *rsOrigin) set(data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.gen++
	o.data = data
	o.etag = fmt.Sprintf(`"v%d-%d"`, o.gen, len(data))
}

func (o *rsOrigin) currentETag() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.etag
}

func (o *rsOrigin) gate(off int64) chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	ch := make(chan struct{})
	o.gates[off] = ch
	return ch
}

func (o *rsOrigin) callsAt(off int64) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls[off]
}

func (o *rsOrigin) snapshot() (map[int64]int, map[int64][]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := map[int64]int{}
	m := map[int64][]string{}
	for k, v := range o.calls {
		c[k] = v
	}
	for k, v := range o.ifMatch {
		m[k] = append([]string(nil), v...)
	}
	return c, m
}

func (o *rsOrigin) FetchRange(ctx context.Context, k Key, off, n int64, ifMatch string) (Meta, io.ReadCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls[off]++
	o.ifMatch[off] = append(o.ifMatch[off], ifMatch)
	size := int64(len(o.data))
	if o.honor && ifMatch != "" && ifMatch != o.etag {
		return Meta{}, nil, errRSPrecondition
	}
	if off >= size {
		return Meta{}, nil, ErrInvalidRange
	}
	m := Meta{Size: size, ETag: o.etag, ContentType: "application/octet-stream"}
	b := &body{ctx: ctx, data: o.data[off:min(off+n, size)]}
	if g := o.gates[off]; g != nil {
		b.gate, b.gateAt = g, o.gateAt
	}
	if f, ok := o.fails[off]; ok {
		b.failAt = f
		delete(o.fails, off)
	}
	if s, ok := o.shorts[off]; ok {
		b.short = s
		delete(o.shorts, off)
	}
	return m, b, nil
}

func (o *rsOrigin) Fetch(ctx context.Context, k Key) (Meta, io.ReadCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.wholes++
	m := Meta{Size: int64(len(o.data)), ETag: o.etag, ContentType: "application/octet-stream"}
	return m, &body{ctx: ctx, data: o.data}, nil
}

// rsWait polls cond (bounded, generous: CI may be busy).
func rsWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rsFillReaders returns the readers attached to the registered fill of
// slice idx of k and how many bytes it has received (-1, -1: none).
func rsFillReaders(c *Cache, k Key, idx int64) (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.fills[fillKey{k, idx}]
	if f == nil {
		return -1, -1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.readers, f.written
}

// rsStoredSlices lists the stored slices of k and their version's ETag.
func rsStoredSlices(c *Cache, k Key) ([]int64, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buckets[k.Bucket]
	if b == nil || b.sliced[k.Object] == nil {
		return nil, ""
	}
	v := b.sliced[k.Object]
	var idx []int64
	for i := range v.slices {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	return idx, v.etag
}

// rsRead reads a whole range; it returns the bytes, status and the first
// error of GetRange or the reads. With copyTo, it reads through WriteTo
// into a bytes.Buffer (a ReaderFrom: the sendfile path).
func rsRead(c *Cache, k Key, off, n int64, rf RangeFetcher, copyTo bool) ([]byte, Status, error) {
	r, st, err := c.GetRange(context.Background(), k, off, n, rf, GetOptions{})
	if err != nil {
		return nil, st, err
	}
	defer r.Close()
	if copyTo {
		var buf bytes.Buffer
		_, err = io.Copy(&buf, r)
		return buf.Bytes(), st, err
	}
	b, err := io.ReadAll(r)
	return b, st, err
}

type rsResult struct {
	b   []byte
	err error
}

// TestReviewSliceMixedRange: a range over slices that are stored, being
// filled by another reader, and missing (including the short last one)
// returns exactly its bytes, fetching each missing slice once and joining
// the fill in progress.
func TestReviewSliceMixedRange(t *testing.T) {
	const S = testSlice
	for _, copyTo := range []bool{false, true} {
		t.Run(fmt.Sprint("copyTo=", copyTo), func(t *testing.T) {
			dir := t.TempDir()
			c := openTest(t, dir, Options{SliceSize: S, SliceThreshold: 2 * S, Admission: AdmitAll})
			k := Key{"b", "mixed"}
			obj := pattern(31, 7*S+300) // 8 slices, the last 300 bytes
			o := newRSOrigin(obj)
			// Slices 1 and 4 stored.
			for _, rg := range [][2]int64{{S + 10, 5}, {4 * S, S}} {
				got, _, err := rsRead(c, k, rg[0], rg[1], o, false)
				if err != nil {
					t.Fatal(err)
				}
				mustEqual(t, "pre-store", got, obj[rg[0]:rg[0]+rg[1]])
			}
			settle(t, c)
			// Slice 2 being filled by B, which waits at its gate.
			g2 := o.gate(2 * S)
			o.gateAt = 100
			bOut := make(chan rsResult, 1)
			rb, _, err := c.GetRange(context.Background(), k, 2*S+500, 10, o, GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				b, err := io.ReadAll(rb)
				rb.Close() // before the result: the test checks files next
				bOut <- rsResult{b, err}
			}()
			rsWait(t, "B's fill of slice 2", func() bool { n, w := rsFillReaders(c, k, 2); return n >= 1 && w >= 100 })
			// A: from the middle of slice 0 to the end.
			aOut := make(chan rsResult, 1)
			go func() {
				b, _, err := rsRead(c, k, S/2, -1, o, copyTo)
				aOut <- rsResult{b, err}
			}()
			rsWait(t, "A joining B's fill", func() bool { n, _ := rsFillReaders(c, k, 2); return n >= 2 })
			close(g2)
			b := <-bOut
			a := <-aOut
			if b.err != nil || a.err != nil {
				t.Fatalf("B: %v, A: %v", b.err, a.err)
			}
			mustEqual(t, "B", b.b, obj[2*S+500:2*S+510])
			mustEqual(t, "A", a.b, obj[S/2:])
			settle(t, c)
			calls, ifm := o.snapshot()
			etag := o.currentETag()
			for i := int64(0); i < 8; i++ {
				if calls[i*S] != 1 {
					t.Errorf("slice %d fetched %d times, want 1", i, calls[i*S])
				}
				if i != 1 && i != 4 && (len(ifm[i*S]) != 1 || ifm[i*S][0] != etag) {
					t.Errorf("slice %d fetched with If-Match %q, want %q", i, ifm[i*S], etag)
				}
			}
			if idx, _ := rsStoredSlices(c, k); len(idx) != 8 {
				t.Errorf("stored slices %v, want all 8", idx)
			}
			whole, st := get(t, c, k, o)
			mustEqual(t, "whole from slices", whole, obj)
			if st != Hit || o.wholes != 0 {
				t.Errorf("whole Get of a sliced object: %v, %d whole fetches", st, o.wholes)
			}
			reviewCheck(t, c, dir)
		})
	}
}

// TestReviewSliceEdges: ranges starting and ending on and next to slice
// boundaries, the last (short) slice, size-1, to the end, past the end, an
// empty object; cold and warm, read and copied; every slice fetched once.
func TestReviewSliceEdges(t *testing.T) {
	const S = testSlice
	dir := t.TempDir()
	c := openTest(t, dir, Options{SliceSize: S, SliceThreshold: 2 * S, Admission: AdmitAll})
	for _, size := range []int64{1, S - 1, S, S + 1, 3 * S, 3*S + 1, 3*S + 100} {
		k := Key{"b", fmt.Sprint("edge-", size)}
		obj := pattern(int(size), int(size))
		o := newRSOrigin(obj)
		// Past the end, cold.
		for _, off := range []int64{size, size + 1, size + S, size + 10*S} {
			if _, _, err := c.GetRange(context.Background(), k, off, 1, o, GetOptions{}); !errors.Is(err, ErrInvalidRange) {
				t.Errorf("size %d: cold GetRange(%d, 1) = %v, want ErrInvalidRange", size, off, err)
			}
		}
		settle(t, c)
		type rg struct{ off, n int64 }
		var rgs []rg
		for _, off := range []int64{0, 1, S - 1, S, S + 1, 2*S - 1, 2 * S, 3*S - 1, 3 * S, size - 1, size / 2} {
			if off < 0 || off >= size {
				continue
			}
			for _, n := range []int64{1, 2, S - 1, S, S + 1, 2 * S, size - off, size - off - 1, size - off + 1, -1, math.MaxInt64} {
				if n == 0 {
					continue
				}
				rgs = append(rgs, rg{off, n})
			}
		}
		for pass := range 2 {
			for i, r := range rgs {
				want := obj[r.off:]
				if r.n >= 0 && r.n < size-r.off {
					want = obj[r.off : r.off+r.n]
				}
				got, st, err := rsRead(c, k, r.off, r.n, o, i%2 == 1)
				if err != nil {
					t.Fatalf("size %d pass %d: GetRange(%d, %d): %v", size, pass, r.off, r.n, err)
				}
				mustEqual(t, fmt.Sprintf("size %d pass %d: GetRange(%d, %d)", size, pass, r.off, r.n), got, want)
				if pass == 1 && st != Hit {
					t.Errorf("size %d: second pass GetRange(%d, %d) = %v, want HIT", size, r.off, r.n, st)
				}
				settle(t, c)
			}
		}
		// Past the end, warm.
		for _, off := range []int64{size, size + S} {
			if _, _, err := c.GetRange(context.Background(), k, off, -1, o, GetOptions{}); !errors.Is(err, ErrInvalidRange) {
				t.Errorf("size %d: warm GetRange(%d, -1) = %v, want ErrInvalidRange", size, off, err)
			}
		}
		// Each slice once (offsets past the end are the 416s above).
		calls, _ := o.snapshot()
		for off := int64(0); off < size; off += S {
			if calls[off] != 1 {
				t.Errorf("size %d: slice at %d fetched %d times, want 1", size, off, calls[off])
			}
		}
		for off := range calls {
			if off%S != 0 {
				t.Errorf("size %d: fetch at unaligned offset %d", size, off)
			}
		}
	}
	// An empty object: no range is satisfiable; the whole object is.
	k := Key{"b", "empty"}
	o := newRSOrigin([]byte{})
	for _, n := range []int64{1, -1} {
		if _, _, err := c.GetRange(context.Background(), k, 0, n, o, GetOptions{}); !errors.Is(err, ErrInvalidRange) {
			t.Errorf("empty object: GetRange(0, %d) = %v, want ErrInvalidRange", n, err)
		}
	}
	got, _ := get(t, c, k, o)
	if len(got) != 0 {
		t.Errorf("empty object: Get = %d bytes", len(got))
	}
	settle(t, c)
	reviewCheck(t, c, dir)
}

// TestReviewSliceChangedRecovers: the object changes at the origin while
// some of its slices are stored. A read needing a missing slice may fail
// (never mix versions), but retrying must read the new version (doc of
// ErrChanged: "retrying reads the new version"), whether the origin
// refuses the stale If-Match (S3: 412) or ignores it (the cache checks
// the ETag itself).
func TestReviewSliceChangedRecovers(t *testing.T) {
	const S = testSlice
	for _, honor := range []bool{true, false} {
		for _, whole := range []bool{false, true} {
			t.Run(fmt.Sprintf("honorIfMatch=%v/wholeGet=%v", honor, whole), func(t *testing.T) {
				dir := t.TempDir()
				c := openTest(t, dir, Options{SliceSize: S, SliceThreshold: 2 * S, Admission: AdmitAll})
				k := Key{"b", "changes"}
				v1, v2 := pattern(41, 4*S+10), pattern(42, 4*S+10)
				o := newRSOrigin(v1)
				o.honor = honor
				if got, _, err := rsRead(c, k, 10, 20, o, false); err != nil { // slice 0 of v1 stored
					t.Fatal(err)
				} else {
					mustEqual(t, "v1 range", got, v1[10:30])
				}
				settle(t, c)
				o.set(v2)
				var lastErr error
				ok := false
				for attempt := range 3 {
					var got []byte
					var err error
					if whole {
						var r *Reader
						r, _, err = c.Get(context.Background(), k, o, GetOptions{})
						if err == nil {
							got, err = io.ReadAll(r)
							r.Close()
						}
					} else {
						got, _, err = rsRead(c, k, 0, -1, o, false)
					}
					settle(t, c)
					if err != nil {
						lastErr = err
						continue
					}
					if !bytes.Equal(got, v1) && !bytes.Equal(got, v2) {
						t.Fatalf("attempt %d: %d bytes, neither version (mixed?)", attempt, len(got))
					}
					if bytes.Equal(got, v2) {
						ok = true
						break
					}
				}
				if !ok {
					idx, etag := rsStoredSlices(c, k)
					t.Fatalf("3 reads after the object changed never read the new version; last error: %v; stored: slices %v of %s (origin has %s)",
						lastErr, idx, etag, o.currentETag())
				}
				reviewCheck(t, c, dir)
			})
		}
	}
}

// TestReviewSliceOlderFillDoesNotReplaceNewer: a slice fill that got its
// answer before the object changed at the origin must not, when its slow
// body ends, replace the newer version's slices already stored by a later
// fill: the cache would go back to the old version and lose the new one.
func TestReviewSliceOlderFillDoesNotReplaceNewer(t *testing.T) {
	const S = testSlice
	dir := t.TempDir()
	c := openTest(t, dir, Options{SliceSize: S, SliceThreshold: 2 * S, Admission: AdmitAll})
	k := Key{"b", "race"}
	v1, v2 := pattern(51, 2*S), pattern(52, 2*S)
	o := newRSOrigin(v1)
	g := o.gate(S)
	o.gateAt = 10
	// A: slice 1 of v1, its body slow.
	ra, _, err := c.GetRange(context.Background(), k, S, 100, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	if ra.Meta().ETag == "" {
		t.Fatal("no ETag")
	}
	o.set(v2)
	// B: slice 0 of v2, stored.
	got, _, err := rsRead(c, k, 0, 100, o, false)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "B (v2)", got, v2[:100])
	rsWait(t, "slice 0 of v2 stored", func() bool { idx, etag := rsStoredSlices(c, k); return len(idx) == 1 && etag == o.currentETag() })
	close(g)
	readClose(t, ra, v1[S:S+100], "A (v1)")
	settle(t, c)
	idx, etag := rsStoredSlices(c, k)
	if etag != o.currentETag() {
		t.Errorf("after A's v1 slice fill ended, stored: slices %v of %s; the newer %s (slice 0) was dropped for it", idx, etag, o.currentETag())
	}
	got, st, err := rsRead(c, k, 0, 100, o, false)
	if err != nil || !bytes.Equal(got, v2[:100]) {
		t.Errorf("reading slice 0 again (stored as v2 before): %v, %v, v2 bytes %v", st, err, bytes.Equal(got, v2[:100]))
	}
	settle(t, c)
	reviewCheck(t, c, dir)
}

// TestReviewSliceWriteDuringFills: Invalidate, Purge, and the commit of an
// upload of the key while a multi-slice read is filling slices: the reader
// gets the old version's bytes or an error, never a mix; no slice fill
// that started before the write stores afterwards; the next read gets the
// new version.
func TestReviewSliceWriteDuringFills(t *testing.T) {
	const S = testSlice
	for _, how := range []string{"invalidate", "purge", "commit"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			c := openTest(t, dir, Options{SliceSize: S, SliceThreshold: 2 * S, Admission: AdmitAll})
			k := Key{"b", "obj-" + how}
			v1, v2 := pattern(61, 4*S+100), pattern(62, 4*S+100)
			o := newRSOrigin(v1)
			// Slice 0 stored, so A's read is a sliced read of a known version.
			if _, _, err := rsRead(c, k, 0, 10, o, false); err != nil {
				t.Fatal(err)
			}
			settle(t, c)
			g, g2 := o.gate(S), o.gate(2*S)
			o.gateAt = 300
			aOut := make(chan rsResult, 1)
			ra, _, err := c.GetRange(context.Background(), k, 0, -1, o, GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				b, err := io.ReadAll(ra)
				ra.Close() // before the result: the test checks files next
				aOut <- rsResult{b, err}
			}()
			// A waits in slice 1; slice 2 was started ahead; both wait
			// at their gates.
			rsWait(t, "A in slice 1", func() bool { n, w := rsFillReaders(c, k, 1); return n >= 1 && w >= 300 })
			rsWait(t, "slice 2 started ahead", func() bool { n, w := rsFillReaders(c, k, 2); return n >= 1 && w >= 300 })
			var before []int64
			c.mu.Lock()
			for fk := range c.fills {
				if fk.Key == k {
					before = append(before, fk.idx)
				}
			}
			c.mu.Unlock()
			switch how {
			case "invalidate":
				c.Invalidate(k)
			case "purge":
				c.Purge("b", "obj-")
			case "commit":
				p, err := c.Stage(k, int64(len(v2)))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := p.Write(v2); err != nil {
					t.Fatal(err)
				}
				o.set(v2) // the upstream took the write
				if err := p.Commit(Meta{Size: int64(len(v2)), ETag: o.currentETag()}); err != nil {
					t.Fatal(err)
				}
			}
			close(g)
			close(g2)
			a := <-aOut
			t.Logf("fills in progress at the %s: slices %v; reader: %d bytes, %v", how, before, len(a.b), a.err)
			if a.err == nil && !bytes.Equal(a.b, v1) {
				t.Fatalf("reader across the %s: %d bytes, not v1 (equal prefix %d)", how, len(a.b), commonPrefix(a.b, v1))
			}
			if how == "invalidate" || how == "purge" {
				// Nothing changed at the origin: the reader reads on.
				if a.err != nil {
					t.Errorf("reader across the %s: %v", how, a.err)
				}
			}
			settle(t, c)
			idx, etag := rsStoredSlices(c, k)
			if how != "commit" {
				for _, i := range before {
					for _, j := range idx {
						if i == j {
							t.Errorf("slice %d, whose fill started before the %s, is stored (stored: %v)", i, how, idx)
						}
					}
				}
			} else if len(idx) > 0 && etag != o.currentETag() {
				t.Errorf("after the commit, slices %v of the old version %s are stored", idx, etag)
			}
			if how == "commit" {
				if etag != o.currentETag() || len(idx) != 5 {
					t.Errorf("after the commit: stored slices %v of %s, want 5 of %s", idx, etag, o.currentETag())
				}
				calls, _ := o.snapshot()
				got, st, err := rsRead(c, k, 0, -1, o, true)
				if err != nil || !bytes.Equal(got, v2) || st != Hit {
					t.Errorf("read after the commit: %v, %v, v2 %v", st, err, bytes.Equal(got, v2))
				}
				if calls2, _ := o.snapshot(); fmt.Sprint(calls2) != fmt.Sprint(calls) {
					t.Errorf("read of the committed upload fetched: %v -> %v", calls, calls2)
				}
			} else {
				got, _, err := rsRead(c, k, 0, -1, o, false)
				if err != nil {
					t.Fatal(err)
				}
				mustEqual(t, "read after the "+how, got, v1)
			}
			settle(t, c)
			reviewCheck(t, c, dir)
		})
	}
}

// TestReviewSliceFillFails: a slice fill whose body resets or ends short
// in the middle: the reader gets an error (not io.EOF), nothing of that
// slice is stored, no temporary file stays, and the next read fetches
// only that slice again.
func TestReviewSliceFillFails(t *testing.T) {
	const S = testSlice
	for _, how := range []string{"reset", "short"} {
		for _, copyTo := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/copyTo=%v", how, copyTo), func(t *testing.T) {
				dir := t.TempDir()
				c := openTest(t, dir, Options{SliceSize: S, SliceThreshold: 2 * S, Admission: AdmitAll})
				k := Key{"b", "fails"}
				obj := pattern(71, 3*S+200)
				o := newRSOrigin(obj)
				if how == "reset" {
					o.fails[S] = 300
				} else {
					o.shorts[S] = 300
				}
				got, _, err := rsRead(c, k, 100, -1, o, copyTo)
				if err == nil {
					t.Fatalf("read over a failing slice: no error (%d bytes)", len(got))
				}
				if len(got) > S-100+300 || !bytes.Equal(got, obj[100:100+len(got)]) {
					t.Fatalf("read over a failing slice: %d bytes before the error, equal prefix %d", len(got), commonPrefix(got, obj[100:]))
				}
				settle(t, c)
				if idx, _ := rsStoredSlices(c, k); bytes.Contains([]byte(fmt.Sprint(idx)), []byte("1")) {
					t.Errorf("stored slices %v include the failed slice 1", idx)
				}
				reviewCheck(t, c, dir)
				before, _ := o.snapshot()
				got, _, err = rsRead(c, k, 100, -1, o, copyTo)
				if err != nil {
					t.Fatal(err)
				}
				mustEqual(t, "read again", got, obj[100:])
				settle(t, c)
				after, _ := o.snapshot()
				if after[S] != before[S]+1 {
					t.Errorf("slice 1 fetched %d more times, want 1", after[S]-before[S])
				}
				for _, off := range []int64{0, 2 * S, 3 * S} {
					if after[off] != 1 {
						t.Errorf("slice at %d fetched %d times, want 1", off, after[off])
					}
				}
				reviewCheck(t, c, dir)
			})
		}
	}
}

// TestReviewSliceEvictedMidRead: while a reader is in the middle of a
// multi-slice range, slices stored after it started are evicted; its
// pinned slice stays on disk; it refetches the evicted ones and reads the
// right bytes.
func TestReviewSliceEvictedMidRead(t *testing.T) {
	const S = testSlice
	dir := t.TempDir()
	c := openTest(t, dir, Options{MaxBytes: 6 * S, MaxObjectSize: 2 * S, SliceSize: S, SliceThreshold: 2 * S, Admission: AdmitAll})
	k := Key{"b", "x"}
	obj := pattern(81, 6*S)
	o := newRSOrigin(obj)
	if _, _, err := rsRead(c, k, 0, S, o, false); err != nil {
		t.Fatal(err)
	}
	settle(t, c)
	ra, _, err := c.GetRange(context.Background(), k, 0, -1, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	head := make([]byte, 10)
	if _, err := io.ReadFull(ra, head); err != nil {
		t.Fatal(err)
	}
	// Slices 3 and 4 stored by another reader after A started.
	if _, _, err := rsRead(c, k, 3*S, 2*S, o, false); err != nil {
		t.Fatal(err)
	}
	settle(t, c)
	if idx, _ := rsStoredSlices(c, k); len(idx) != 3 {
		t.Fatalf("stored slices %v, want 0, 3, 4", idx)
	}
	c.mu.Lock()
	slice0 := c.buckets["b"].sliced[k.Object].slices[0].ct.sum
	c.mu.Unlock()
	// Other objects push them out.
	other := newOrigin()
	for i := range 8 {
		ko := Key{"b", fmt.Sprint("other-", i)}
		other.put(ko, pattern(800+i, S))
		get(t, c, ko, other)
		settle(t, c)
	}
	idx, _ := rsStoredSlices(c, k)
	for _, i := range idx {
		if i == 3 || i == 4 {
			t.Fatalf("slices %v still stored: the test did not evict them", idx)
		}
	}
	if !exists(contentPath(dir, slice0)) {
		t.Fatal("slice 0's file, pinned by a reader, was unlinked")
	}
	rest, err := io.ReadAll(ra)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "reader across evictions", append(head, rest...), obj)
	ra.Close()
	if n := o.callsAt(3 * S); n != 2 {
		t.Errorf("slice 3 fetched %d times, want 2 (again after its eviction)", n)
	}
	settle(t, c)
	reviewCheck(t, c, dir)
}

// TestReviewSliceRestartPartial: after a restart, a partially sliced
// object serves its stored slices and fetches the missing ones with
// If-Match of the stored version, once each.
func TestReviewSliceRestartPartial(t *testing.T) {
	const S = testSlice
	dir := t.TempDir()
	opts := Options{SliceSize: S, SliceThreshold: 2 * S, Admission: AdmitAll}
	c := openTest(t, dir, opts)
	k := Key{"b", "partial"}
	obj := pattern(91, 4*S+200)
	o := newRSOrigin(obj)
	for _, off := range []int64{0, 2 * S} {
		if _, _, err := rsRead(c, k, off+5, 10, o, false); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openTest(t, dir, opts)
	<-c.scrubbed
	if idx, etag := rsStoredSlices(c, k); len(idx) != 2 || etag != o.currentETag() {
		t.Fatalf("after restart: slices %v of %s", idx, etag)
	}
	before, _ := o.snapshot()
	got, st, err := rsRead(c, k, 0, -1, o, true)
	if err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "after restart", got, obj)
	if st != Miss {
		t.Errorf("status %v, want MISS (slice 1 missing)", st)
	}
	settle(t, c)
	after, ifm := o.snapshot()
	for i := int64(0); i < 5; i++ {
		want := 1
		if i == 0 || i == 2 {
			want = 0
		}
		if d := after[i*S] - before[i*S]; d != want {
			t.Errorf("slice %d fetched %d times after restart, want %d", i, d, want)
		}
		if want == 1 && ifm[i*S][len(ifm[i*S])-1] != o.currentETag() {
			t.Errorf("slice %d fetched with If-Match %q", i, ifm[i*S])
		}
	}
	reviewCheck(t, c, dir)
}

// TestReviewSliceConcurrentRanges: many readers of random ranges at once,
// reading and copying: each gets its bytes, each slice is fetched once.
func TestReviewSliceConcurrentRanges(t *testing.T) {
	const S = testSlice
	dir := t.TempDir()
	c := openTest(t, dir, Options{SliceSize: S, SliceThreshold: 2 * S, Admission: AdmitAll})
	k := Key{"b", "busy"}
	obj := pattern(101, 16*S+77)
	size := int64(len(obj))
	o := newRSOrigin(obj)
	g := o.gate(5 * S)
	o.gateAt = 500
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 12 {
				off := rng.Int64N(size)
				n := rng.Int64N(4*S) + 1
				if i%5 == 0 {
					n = -1
				}
				got, _, err := rsRead(c, k, off, n, o, (w+i)%2 == 0)
				want := obj[off:]
				if n > 0 && n < size-off {
					want = obj[off : off+n]
				}
				if err != nil {
					errs <- fmt.Errorf("GetRange(%d, %d): %v", off, n, err)
				} else if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("GetRange(%d, %d): wrong bytes (%d, equal prefix %d)", off, n, len(got), commonPrefix(got, want))
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	close(g)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	settle(t, c)
	calls, _ := o.snapshot()
	for off, n := range calls {
		if n != 1 {
			t.Errorf("slice at %d fetched %d times, want 1", off, n)
		}
	}
	reviewCheck(t, c, dir)
}
