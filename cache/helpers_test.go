package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3edge/s3edge/cache/blob"
)

// origin is the fake upstream: objects in memory, calls counted. Its bodies
// can block before byte gateAt until gate is closed (so a test can see
// readers get bytes before the fetch ends), fail after failAt bytes (a
// connection reset), or end cleanly after shortAt bytes (a short body): the
// three ways real upstream bodies misbehave.
type origin struct {
	mu     sync.Mutex
	objs   map[Key][]byte
	etags  map[Key]string
	gate   chan struct{}
	gateAt int
	failAt int
	short  int
	tag    string // Meta.Tag of what it answers

	fetches, ranges atomic.Int64
}

var errReset = errors.New("connection reset by fake upstream")

func newOrigin() *origin { return &origin{objs: map[Key][]byte{}, etags: map[Key]string{}} }

func (o *origin) put(k Key, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.objs[k] = data
	o.etags[k] = fmt.Sprintf("%q", fmt.Sprint(len(data), data[:min(8, len(data))], time.Now().UnixNano()))
}

func (o *origin) meta(k Key) (Meta, []byte, *body, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	data, ok := o.objs[k]
	if !ok {
		return Meta{}, nil, nil, fs.ErrNotExist
	}
	m := Meta{Size: int64(len(data)), ETag: o.etags[k], ContentType: "application/octet-stream",
		Header: map[string]string{"X-Amz-Meta-K": k.Object}, Tag: o.tag}
	return m, data, &body{gate: o.gate, gateAt: o.gateAt, failAt: o.failAt, short: o.short}, nil
}

func (o *origin) Fetch(ctx context.Context, k Key) (Meta, io.ReadCloser, error) {
	o.fetches.Add(1)
	m, data, b, err := o.meta(k)
	if err != nil {
		return Meta{}, nil, err
	}
	b.ctx, b.data = ctx, data
	return m, b, nil
}

func (o *origin) FetchRange(ctx context.Context, k Key, off, n int64, ifMatch string) (Meta, io.ReadCloser, error) {
	o.ranges.Add(1)
	m, data, b, err := o.meta(k)
	if err != nil {
		return Meta{}, nil, err
	}
	if ifMatch != "" && ifMatch != m.ETag {
		return Meta{}, nil, errors.New("precondition failed")
	}
	if off >= m.Size {
		return Meta{}, nil, ErrInvalidRange
	}
	b.ctx, b.data = ctx, data[off:min(off+n, m.Size)]
	return m, b, nil
}

type body struct {
	ctx                   context.Context
	data                  []byte
	pos                   int
	gate                  chan struct{}
	gateAt, failAt, short int
}

func (b *body) Read(p []byte) (int, error) {
	if b.gate != nil && b.pos >= b.gateAt {
		select {
		case <-b.gate:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
	}
	end := len(b.data)
	if b.gate != nil && b.pos < b.gateAt {
		end = min(end, b.gateAt)
	}
	if b.failAt > 0 && b.pos >= b.failAt {
		return 0, errReset
	}
	if b.failAt > 0 {
		end = min(end, b.failAt)
	}
	if b.short != 0 && b.pos >= max(b.short, 0) {
		return 0, io.EOF
	}
	if b.short > 0 {
		end = min(end, b.short)
	}
	if b.pos >= end {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.pos:end])
	b.pos += n
	return n, nil
}

func (b *body) Close() error { return nil }

// clock is a settable Options.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// fillDone returns a channel receiving every fill's end.
func fillDone(c *Cache) <-chan struct{} {
	ch := make(chan struct{}, 1024)
	c.hookFillEnd = func() { ch <- struct{}{} }
	return ch
}

func openTest(t testing.TB, dir string, o Options) *Cache {
	t.Helper()
	if o.MaxBytes == 0 {
		o.MaxBytes = 64 << 20
	}
	c, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func pattern(seed, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed*2654435761 + 1)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

// get reads k whole and returns the bytes and status.
func get(t testing.TB, c *Cache, k Key, f Fetcher) ([]byte, Status) {
	t.Helper()
	r, st, err := c.Get(context.Background(), k, f, GetOptions{})
	if err != nil {
		t.Fatalf("Get(%v) = %v", k, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("Get(%v): read: %v", k, err)
	}
	return b, st
}

func mustEqual(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes, want %d (equal prefix %d)", what, len(got), len(want), commonPrefix(got, want))
	}
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// files lists the files under dir/sub.
func files(t testing.TB, dir, sub string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func contentPath(dir string, sum [32]byte) string {
	d, _ := blob.NewDisk(dir)
	return d.Path(sum)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
