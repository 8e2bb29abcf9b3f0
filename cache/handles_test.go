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
