package cache

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3edge/s3edge/cache/blob"
)

// countingStore counts the content files the cache opens.
type countingStore struct {
	*blob.Disk
	opens atomic.Int64
}

func (s *countingStore) Open(sum [32]byte) (File, error) {
	s.opens.Add(1)
	return s.Disk.Open(sum)
}

// countingCache opens a cache in a new directory whose store counts opens.
func countingCache(t *testing.T, o Options) (*Cache, *countingStore, string) {
	t.Helper()
	dir := t.TempDir()
	disk, err := blob.NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Disk: disk}
	o.Store = store
	return openTest(t, dir, o), store, dir
}

// openUnder lists this process's file descriptors open on files under dir,
// removed ones included (their link ends in " (deleted)").
func openUnder(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			out = append(out, target)
		}
	}
	return out
}

func TestOpenFilesAreSharedBoundedAndClosedOnRemoval(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts file descriptors through /proc")
	}
	const openFiles = 4
	c, store, dir := countingCache(t, Options{OpenFiles: openFiles})
	done := fillDone(c)
	o := newOrigin()
	objects := filepath.Join(dir, "objects")

	keys := make([]Key, 10)
	for i := range keys {
		keys[i] = Key{"b", fmt.Sprint("k", i)}
		o.put(keys[i], pattern(i, 4096+i))
		get(t, c, keys[i], o)
		<-done
		got, st := get(t, c, keys[i], o)
		if st != Hit {
			t.Fatalf("%v: second read is %v, want HIT", keys[i], st)
		}
		mustEqual(t, keys[i].Object, got, pattern(i, 4096+i))
	}
	if open := openUnder(t, objects); len(open) > openFiles {
		t.Fatalf("%d content files open, want at most OpenFiles=%d: %v", len(open), openFiles, open)
	}

	// The most recently read objects are open already: hits on them open
	// nothing, whether one reader or several at once read them.
	before := store.opens.Load()
	var readers []*Reader
	for _, k := range keys[len(keys)-openFiles:] {
		for range 3 {
			r, st, err := c.Get(context.Background(), k, o, GetOptions{})
			if err != nil || st != Hit {
				t.Fatalf("Get(%v) = %v, %v", k, st, err)
			}
			readers = append(readers, r)
		}
	}
	for i, r := range readers {
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		k := len(keys) - openFiles + i/3
		mustEqual(t, keys[k].Object, b, pattern(k, 4096+k))
	}
	if n := store.opens.Load() - before; n != 0 {
		t.Fatalf("hits on open files opened %d files, want 0", n)
	}

	// Removing the entries closes their files, but not under a reader
	// that still has one: its file stays in place and it reads on; its
	// Close lets go, and the file goes.
	held := readers[len(readers)-1]
	for _, r := range readers[:len(readers)-1] {
		r.Close()
	}
	for _, k := range keys {
		c.Invalidate(k)
	}
	open := openUnder(t, objects)
	if len(open) != 1 {
		t.Fatalf("after invalidation, open content files = %v, want only the held reader's", open)
	}
	if _, err := held.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	last := len(keys) - 1
	b, err := io.ReadAll(held)
	if err != nil {
		t.Fatalf("reader holding a removed file: %v", err)
	}
	mustEqual(t, "held reader", b, pattern(last, 4096+last))
	held.Close()
	if open := openUnder(t, objects); len(open) != 0 {
		t.Fatalf("after the last reader closed, open content files = %v, want none", open)
	}
	if exists(open[0]) {
		t.Fatalf("%s still on disk after its last reader closed", open[0])
	}
}

func TestOpenFilesClosedWithTheCache(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts file descriptors through /proc")
	}
	dir := t.TempDir()
	c, err := Open(dir, Options{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	done := fillDone(c)
	o := newOrigin()
	for i := range 3 {
		k := Key{"b", fmt.Sprint("k", i)}
		o.put(k, pattern(i, 1000))
		get(t, c, k, o)
		<-done
		get(t, c, k, o)
	}
	if open := openUnder(t, filepath.Join(dir, "objects")); len(open) == 0 {
		t.Fatal("no content file kept open after hits")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if open := openUnder(t, filepath.Join(dir, "objects")); len(open) != 0 {
		t.Fatalf("after Close, open content files = %v", open)
	}
}

// TestSendfileDescriptorsAreReused: WriteTo (sendfile) needs a descriptor
// of its own; the next reader reuses it, from wherever the last one left
// its offset, and removing the entry closes it.
func TestSendfileDescriptorsAreReused(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts file descriptors through /proc")
	}
	c, store, dir := countingCache(t, Options{})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "video"}
	data := pattern(9, 300<<10)
	o.put(k, data)
	get(t, c, k, o)
	<-done

	read := func(off, n int64) []byte {
		t.Helper()
		r, st, err := c.GetRange(context.Background(), k, off, n, o, GetOptions{})
		if err != nil || st != Hit {
			t.Fatalf("GetRange(%d, %d) = %v, %v", off, n, st, err)
		}
		defer r.Close()
		var buf bytes.Buffer // has ReadFrom: WriteTo takes its file path
		if _, err := r.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	mustEqual(t, "first", read(0, -1), data)
	before := store.opens.Load()
	for i, rg := range [][2]int64{{1000, 5000}, {0, -1}, {200 << 10, -1}, {7, 1}} {
		end := int64(len(data))
		if rg[1] >= 0 {
			end = rg[0] + rg[1]
		}
		mustEqual(t, fmt.Sprint("read ", i), read(rg[0], rg[1]), data[rg[0]:end])
	}
	if n := store.opens.Load() - before; n != 0 {
		t.Errorf("sendfile reads after the first opened %d files, want 0 (a spare reused)", n)
	}
	c.Invalidate(k)
	if open := openUnder(t, filepath.Join(dir, "objects")); len(open) != 0 {
		t.Errorf("after invalidation, open content files = %v", open)
	}
}

// fileSink is an io.ReaderFrom that counts the bytes it is handed as a file
// (what a TCP connection sends with sendfile) apart from the rest.
type fileSink struct {
	buf                 bytes.Buffer
	fileBytes, memBytes atomic.Int64
}

func (s *fileSink) Write(p []byte) (int, error) {
	s.memBytes.Add(int64(len(p)))
	return s.buf.Write(p)
}

func (s *fileSink) ReadFrom(r io.Reader) (int64, error) {
	src := r
	if lr, ok := r.(*io.LimitedReader); ok {
		src = lr.R
	}
	if _, ok := src.(*os.File); !ok {
		return io.Copy(struct{ io.Writer }{s}, r)
	}
	n, err := s.buf.ReadFrom(r)
	s.fileBytes.Add(n)
	return n, err
}

// TestFillFilesAreSentAndClosed: a reader following a fill hands its bytes
// to the destination as files, slice by slice, as they arrive (before the
// fetch ends); its descriptors are closed with it; a fill that fails
// mid-body fails the reader.
func TestFillFilesAreSentAndClosed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reopens fill files and counts descriptors through /proc")
	}
	c, _, dir := countingCache(t, Options{SliceSize: 1 << 20})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "sliced"}
	data := pattern(11, 6<<20+123) // above the slice threshold
	o.put(k, data)
	o.gate, o.gateAt = make(chan struct{}), 1<<20+300<<10

	r, st, err := c.Get(context.Background(), k, o, GetOptions{})
	if err != nil || st != Miss {
		t.Fatalf("Get = %v, %v", st, err)
	}
	var sink fileSink
	copied := make(chan error, 1)
	go func() {
		_, err := r.WriteTo(&sink)
		copied <- err
	}()
	for sink.fileBytes.Load() < int64(o.gateAt) {
		select {
		case err := <-copied:
			t.Fatalf("WriteTo returned before the fetch ended: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	close(o.gate)
	if err := <-copied; err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "sent", sink.buf.Bytes(), data)
	if f, m := sink.fileBytes.Load(), sink.memBytes.Load(); f != int64(len(data)) || m != 0 {
		t.Errorf("%d bytes sent as files, %d from memory; want all %d as files", f, m, len(data))
	}
	r.Close()
	<-done
	for _, sub := range []string{"objects", "tmp"} {
		if open := openUnder(t, filepath.Join(dir, sub)); len(open) != 0 {
			t.Errorf("after the reader and the fill ended, open files = %v", open)
		}
	}

	// A fill that fails mid-body fails its reader: never a short body.
	k2 := Key{"b", "fails"}
	o.put(k2, data)
	o.gate, o.failAt = nil, 2<<20+5
	r, _, err = c.Get(context.Background(), k2, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var sink2 fileSink
	if n, err := r.WriteTo(&sink2); err == nil || n >= int64(len(data)) {
		t.Errorf("WriteTo of a failing fill = %d, %v; want an error before the end", n, err)
	}
	r.Close()
	<-done
}
