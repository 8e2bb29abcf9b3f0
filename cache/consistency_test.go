package cache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3edge/s3edge/cache/blob"
	"github.com/s3edge/s3edge/cache/indexdb"
)

// TestCommitBeatsEarlierFill: the proxy's PUT is Invalidate(k), Stage(k),
// the upload, Pending.Commit. A GET miss between the Invalidate and the
// upstream's acknowledgement fetches the old version; its fill must not
// store over the committed upload when its body ends later (immutable
// mode would serve the old bytes for good). Found by review.
func TestCommitBeatsEarlierFill(t *testing.T) {
	c := openTest(t, t.TempDir(), Options{})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"b", "put-vs-get"}
	old := pattern(1, 50<<10)
	o.put(k, old)

	// PUT starts: invalidate, stage, spool the new body.
	c.Invalidate(k)
	newer := pattern(2, 50<<10)
	p, err := c.Stage(k, int64(len(newer)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(newer); err != nil {
		t.Fatal(err)
	}

	// Concurrent GET: upstream still has the old object; the body is slow.
	o.gate, o.gateAt = make(chan struct{}), 10
	r, _, err := c.Get(context.Background(), k, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Upstream acknowledges the PUT; the proxy commits the staged body.
	o.put(k, newer)
	if err := p.Commit(Meta{Size: int64(len(newer)), ETag: `"new"`}); err != nil {
		t.Fatal(err)
	}
	// The old GET's body now finishes and its fill commits.
	close(o.gate)
	io.ReadAll(r)
	r.Close()
	<-done

	got, st := get(t, c, k, nil)
	if st != Hit {
		t.Fatalf("status %v", st)
	}
	if m, _ := c.Stat(k); m.ETag != `"new"` {
		t.Errorf("after the PUT committed, the stored entry has ETag %s (old version)", m.ETag)
	}
	mustEqual(t, "bytes served after the upload committed", got, newer)
}

// TestSliceSizeChangeDropsSlices: a slice's offset is its index times the
// slice size, so slices stored under another cache.slice_size must not be
// served after a restart (they were, from the wrong offset, hash-valid).
// Found by review.
func TestSliceSizeChangeDropsSlices(t *testing.T) {
	dir := t.TempDir()
	o := newOrigin()
	k := Key{"b", "video"}
	data := pattern(3, 300<<10)
	o.put(k, data)

	c := openTest(t, dir, Options{SliceSize: 64 << 10})
	done := fillDone(c)
	r, _, err := c.GetRange(context.Background(), k, 64<<10, 64<<10, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(r)
	r.Close()
	<-done
	c.Close()

	c = openTest(t, dir, Options{SliceSize: 128 << 10})
	r, st, err := c.GetRange(context.Background(), k, 128<<10, 1000, o, GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || st == Hit {
		t.Errorf("read after the restart: status %v, err %v; want a refetch", st, err)
	}
	mustEqual(t, "bytes [128K, 128K+1000) after restart with a larger slice size", got, data[128<<10:128<<10+1000])
}

// TestLoadDropsOlderSliceVersion: when index.db holds slices of two
// versions of one object (slice 0 of the newer, slice 1 of an older one),
// load keeps the newer and counts nothing of the older: its bytes were once
// counted in UsedBytes for good, beyond eviction's reach. Found by review.
func TestLoadDropsOlderSliceVersion(t *testing.T) {
	dir := t.TempDir()
	const size = 64 << 10
	db, err := indexdb.Open(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SaveSetting(sliceSizeSetting, binary.BigEndian.AppendUint64(nil, size)); err != nil {
		t.Fatal(err)
	}
	// The files exist: scrub, running in the background from Open, drops
	// entries whose file is missing and would race the count below.
	store, err := blob.NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range []struct {
		etag   string
		stored int64
	}{{`"new"`, 2000}, {`"old"`, 1000}} {
		body := pattern(i, size)
		sum := sha256.Sum256(body)
		tmp, err := store.Create()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tmp.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := tmp.Commit(sum); err != nil {
			t.Fatal(err)
		}
		tmp.Close()
		m := Meta{Size: 4 * size, ETag: v.etag, StoredAt: time.Unix(v.stored, 0)}
		db.Put(&indexdb.Record{Bucket: "b", Object: "v", Slice: int64(i), Sum: sum, Size: size, Seq: uint64(i + 1), Meta: encodeMeta(&m)})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	c := openTest(t, dir, Options{SliceSize: size})
	if s := c.Stats(); s.Entries != 1 || s.UsedBytes != size {
		t.Errorf("after load: %d entries, %d bytes used; want 1 entry of %d bytes", s.Entries, s.UsedBytes, size)
	}
}
