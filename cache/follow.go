package cache

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"sync"
)

// Readers following a fill: cursors, the memory window of fills that are
// not stored, and attaching and detaching readers.

// chunk is window memory holding fill bytes [off, off+len(b)).
type chunk struct {
	off int64
	b   []byte
	buf *[]byte // pooled backing array
}

// cursor is a reader's position in a fill, for releasing window memory.
type cursor struct{ pos int64 }

const (
	chunkSize = 64 << 10
	maxWindow = 1 << 20 // memory a bypassing fill may run ahead of its slowest reader
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// toBypass stops storing: the rest of the body goes through the window.
// Callers may still join until the window releases its first bytes.
func (f *fill) toBypass() {
	c := f.c
	f.mu.Lock()
	f.bypass = true
	f.winStart = f.written
	f.mu.Unlock()
	c.mu.Lock()
	c.reserveLocked(f.b, -f.reserved)
	f.reserved = 0
	c.mu.Unlock()
}

// appendWindow adds p to the window, waiting while the slowest reader is
// more than maxWindow behind.
func (f *fill) appendWindow(p []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		f.dropWindowLocked()
		if f.written-f.winStart < maxWindow {
			break
		}
		f.writerWaiting = true
		wait := f.wake
		f.mu.Unlock()
		select {
		case <-wait:
		case <-f.ctx.Done():
			f.mu.Lock()
			return f.ctx.Err()
		}
		f.mu.Lock()
	}
	f.writerWaiting = false
	bp := chunkPool.Get().(*[]byte)
	n := copy(*bp, p)
	f.win = append(f.win, chunk{off: f.written, b: (*bp)[:n], buf: bp})
	f.written += int64(n)
	f.wakeLocked()
	return nil
}

// dropWindowLocked releases window chunks every reader has passed.
func (f *fill) dropWindowLocked() {
	low := f.written
	for cur := range f.cursors {
		low = min(low, cur.pos)
	}
	i := 0
	for ; i < len(f.win) && f.win[i].off+int64(len(f.win[i].b)) <= low; i++ {
		chunkPool.Put(f.win[i].buf)
	}
	if i > 0 {
		f.win = append(f.win[:0], f.win[i:]...)
	}
	if len(f.win) > 0 {
		f.winStart = f.win[0].off
	} else {
		f.winStart = f.written
	}
}

// read copies fill bytes at fill offset rel into p. It blocks until some
// bytes are there, the fill ends or fails, or ctx is done.
func (f *fill) read(ctx context.Context, cur *cursor, p []byte, rel int64) (int, error) {
	if err := f.waitLocking(ctx, rel); err != nil {
		return 0, err
	}
	n := min(int64(len(p)), f.written-rel)
	if rel >= f.diskEnd {
		if rel < f.winStart {
			f.mu.Unlock()
			return 0, ErrGone
		}
		copied := int64(0)
		for _, ch := range f.win { // contiguous, from winStart ≤ rel
			pos := rel + copied
			if copied == n {
				break
			}
			if ch.off+int64(len(ch.b)) > pos {
				copied += int64(copy(p[copied:n], ch.b[pos-ch.off:]))
			}
		}
		cur.pos = rel + copied
		if f.writerWaiting {
			f.wakeLocked()
		}
		f.mu.Unlock()
		return int(copied), nil
	}
	n = min(n, f.diskEnd-rel)
	seg := f.segAtLocked(rel)
	n = min(n, seg.off+seg.n-rel)
	cur.pos = rel + n
	f.mu.Unlock()
	m, err := seg.t.ReadAt(p[:n], rel-seg.off)
	if int64(m) == n {
		return m, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	f.c.noteDiskError("read", err)
	return m, fmt.Errorf("cache: read fill: %w", err)
}

// waitLocking locks f.mu and waits until the byte at fill offset rel has
// arrived; it returns with f.mu held, or with an error (io.EOF past the end
// of the fill) and f.mu unlocked.
func (f *fill) waitLocking(ctx context.Context, rel int64) error {
	f.mu.Lock()
	for rel >= f.written || f.err != nil {
		if f.err != nil {
			err := f.err
			f.mu.Unlock()
			return err
		}
		if f.done {
			f.mu.Unlock()
			return io.EOF
		}
		wait := f.wake
		f.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
		f.mu.Lock()
	}
	return nil
}

// onDisk waits until the byte at fill offset rel has arrived, then returns
// the segment file holding it and how many bytes from rel that file has. A
// nil segment means the bytes are in the window (the fill is not stored).
func (f *fill) onDisk(ctx context.Context, cur *cursor, rel int64) (*segment, int64, error) {
	if err := f.waitLocking(ctx, rel); err != nil {
		return nil, 0, err
	}
	defer f.mu.Unlock()
	if rel >= f.diskEnd {
		return nil, 0, nil
	}
	seg := f.segAtLocked(rel)
	n := min(f.diskEnd, seg.off+seg.n) - rel
	cur.pos = rel + n
	return seg, n, nil
}

// passed moves cur past the end: its reader will not read f again (unless
// it seeks back), so window memory need not be kept for it.
func (f *fill) passed(cur *cursor) {
	f.mu.Lock()
	cur.pos = math.MaxInt64
	if f.writerWaiting {
		f.wakeLocked()
	}
	f.mu.Unlock()
}

// segAtLocked returns the segment holding fill offset rel.
func (f *fill) segAtLocked(rel int64) *segment {
	i := sort.Search(len(f.segs), func(i int) bool { return f.segs[i].off+f.segs[i].n > rel })
	return f.segs[i]
}

// attachLocked adds a reader at fill offset pos. It returns nil if f is
// nil, or if f can no longer serve a new reader all its bytes: it is not
// stored and window memory was released already; then f stops being
// joinable.
func (c *Cache) attachLocked(f *fill, pos int64) *cursor {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	if f.bypass && f.winStart > f.diskEnd {
		f.mu.Unlock()
		c.unjoinLocked(f)
		return nil
	}
	cur := &cursor{pos: pos}
	if f.cursors == nil {
		f.cursors = make(map[*cursor]struct{})
	}
	f.cursors[cur] = struct{}{}
	f.mu.Unlock()
	f.readers++
	return cur
}

// detachLocked removes a reader. A fill that will not be stored is canceled
// when its last reader leaves: nobody would get its bytes.
func (c *Cache) detachLocked(f *fill, cur *cursor) func() {
	f.readers--
	f.mu.Lock()
	delete(f.cursors, cur)
	if f.writerWaiting {
		f.wakeLocked()
	}
	unstored := f.bypass
	f.mu.Unlock()
	if f.readers == 0 && (unstored || f.stale.Load()) {
		c.abandonLocked(f)
	}
	return c.releaseFillLocked(f)
}

// abandonLocked cancels a fill whose bytes nobody will get.
func (c *Cache) abandonLocked(f *fill) {
	c.unjoinLocked(f)
	f.abandoned.Store(true)
	f.cancel()
}
