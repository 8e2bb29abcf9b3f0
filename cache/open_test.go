package cache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"github.com/s3edge/s3edge/cache/blob"
	"github.com/s3edge/s3edge/cache/indexdb"
)

var openDir = flag.String("cache.opendir", "", "reuse (or build once) TestOpenLarge's cache in this directory")

var openProfile = flag.String("cache.openprofile", "", "write a CPU profile of Open")

var bigOpen = flag.Int("cache.bigopen", 0, "entries for TestOpenLarge (e.g. 1000000); 0 skips it")

// TestOpenLarge builds an index of -cache.bigopen entries (Synapse-like
// keys, one distinct file each) and measures Open (reading index.db and
// rebuilding the LRU; the files are listed by the background scrub, timed
// separately) and the index's memory per entry.
//
//	go test -run TestOpenLarge -cache.bigopen=1000000 -v ./cache/
func TestOpenLarge(t *testing.T) {
	n := *bigOpen
	if n == 0 {
		t.Skip("set -cache.bigopen=N")
	}
	dir := *openDir
	if dir == "" {
		dir = t.TempDir()
	}
	if _, err := os.Stat(filepath.Join(dir, "index.db")); err != nil {
		start := time.Now()
		buildIndex(t, dir, n)
		t.Logf("built %d entries and files in %v", n, time.Since(start).Round(time.Millisecond))
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	if *openProfile != "" {
		f, _ := os.Create(*openProfile)
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	c, err := Open(dir, Options{MaxBytes: 1 << 50})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	<-c.scrubbed
	scrubbed := time.Since(start)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	s := c.Stats()
	t.Logf("Open with %d entries: %v (background scrub done after %v); index memory %.0f bytes/entry (heap %d MiB)",
		s.Entries, took.Round(time.Millisecond), scrubbed.Round(time.Millisecond),
		float64(after.HeapAlloc-before.HeapAlloc)/float64(n), (after.HeapAlloc-before.HeapAlloc)>>20)
	if s.Entries != int64(n) {
		t.Fatalf("Open kept %d entries, want %d", s.Entries, n)
	}
	if took > 5*time.Second {
		t.Errorf("Open took %v, want < 5s", took)
	}
	runtime.KeepAlive(c)
	c.Close()
}

func buildIndex(t *testing.T, dir string, n int) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := indexdb.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var writer sync.WaitGroup
	writer.Go(func() { db.Run(ctx, func(err error) { t.Error(err) }) })
	sum := func(i int) [32]byte {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		return sha256.Sum256(b[:])
	}
	var last uint64
	for i := range n {
		s := sum(i)
		m := Meta{Size: 32 << 10, ETag: fmt.Sprintf(`"%x"`, s[14:30]), ContentType: "image/jpeg",
			LastModified: time.Unix(1700000000+int64(i), 0), StoredAt: time.Unix(1750000000+int64(i), 0)}
		last = db.Put(&indexdb.Record{
			Bucket: "media", Object: fmt.Sprintf("local_thumbnails/%02x/%02x/%x/scale-320-240-image-jpeg", s[0], s[1], s[2:14]),
			Slice: whole, Sum: s, Size: m.Size, Seq: uint64(i*7919%n + 1), Meta: encodeMeta(&m),
		})
		if i%50000 == 0 {
			db.Wait(ctx, last) // bounded queue
		}
	}
	db.Wait(ctx, last)
	cancel()
	writer.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// The files: empty, since Open lists names and checks sizes lazily.
	ds, err := blob.NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				p := ds.Path(sum(i))
				f, err := os.Create(p)
				if err != nil {
					os.MkdirAll(filepath.Dir(p), 0o755)
					f, err = os.Create(p)
				}
				if err != nil {
					t.Error(err)
					return
				}
				f.Close()
			}
		})
	}
	wg.Wait()
}
