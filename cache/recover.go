package cache

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"unsafe"

	"github.com/s3edge/s3edge/cache/indexdb"
)

// sliceSizeSetting names the slice size saved in index.db.
const sliceSizeSetting = "slice_size"

// load rebuilds the index from index.db at Open, in the saved recency
// order. Files are not looked at here (listing 65536 directories after a
// reboot is seconds of disk seeks): a missing or damaged file is found when
// it is first opened, and scrub reconciles files and entries in the
// background.
func (c *Cache) load() error {
	// A slice's offset is its index times the slice size: slices stored
	// under another size (cache.slice_size changed) would be served from
	// the wrong offset. They are dropped, as are those of an index that
	// predates the saved size.
	saved, err := c.j.Setting(sliceSizeSetting)
	if err != nil {
		return fmt.Errorf("cache: read index: %w", err)
	}
	size := binary.BigEndian.AppendUint64(nil, uint64(c.o.SliceSize))
	keepSlices := bytes.Equal(saved, size)
	var all []*entry
	var cur *bucket
	err = c.j.Load(func(r *indexdb.Raw) bool {
		if !knownMetaFormat(r.Meta) || r.Slice != whole && !keepSlices {
			return false
		}
		if cur == nil || cur.name != string(r.Bucket) {
			cur = c.bucketLocked(string(r.Bucket))
		}
		ct := c.contents[r.Sum]
		if ct != nil && ct.size != r.Size {
			return false
		}
		var ver *version
		var object string
		if r.Slice != whole {
			// Before anything is counted: a slice of an older version
			// than one already loaded is dropped.
			object = string(r.Object)
			if ver = c.loadVersionLocked(cur, object, r.Meta); ver == nil {
				return false
			}
		}
		var e *entry
		switch {
		case ct == nil:
			// One allocation for a new file's entry and content.
			both := &struct {
				e  entry
				ct content
			}{}
			e, ct = &both.e, &both.ct
			ct.sum, ct.size, ct.live, ct.loaded = r.Sum, r.Size, true, true
			c.contents[r.Sum] = ct
			c.used += r.Size
		default:
			e = &entry{}
		}
		e.b, e.ct, e.seq = cur, ct, r.Seq
		c.tick = max(c.tick, r.Seq)
		if r.Slice == whole {
			// One allocation for the name and the meta; the name aliases
			// it (neither is ever modified).
			buf := make([]byte, len(r.Object)+len(r.Meta))
			copy(buf, r.Object)
			copy(buf[len(r.Object):], r.Meta)
			e.k = ekey{unsafe.String(unsafe.SliceData(buf), len(r.Object)), whole}
			e.meta = buf[len(r.Object):]
		} else {
			e.k = ekey{object, r.Slice}
			e.ver = ver
			e.ver.slices[r.Slice] = e
		}
		ct.refs++
		all = append(all, e)
		return true
	})
	if err != nil {
		return fmt.Errorf("cache: read index: %w", err)
	}
	if !keepSlices {
		// After the old slices' removal is written.
		if err := c.j.SaveSetting(sliceSizeSetting, size); err != nil {
			return fmt.Errorf("cache: read index: %w", err)
		}
	}
	slices.SortFunc(all, func(a, b *entry) int { return cmp.Compare(a.seq, b.seq) })
	count := make(map[*bucket]int)
	for _, e := range all {
		count[e.b]++
	}
	for b, n := range count {
		b.index = make(map[ekey]*entry, n) // no rehashing while loading
	}
	for _, e := range all {
		if e.gone { // lost to a newer version of its object
			e.ct.refs--
			c.j.Delete(e.b.name, e.k.object, e.k.idx)
			continue
		}
		e.b.add(e)
		e.b.bytes += e.ct.size
		c.entries++
	}
	kept := all[:0]
	for _, e := range all {
		if !e.gone {
			kept = append(kept, e)
		} else if e.ct.refs == 0 && c.contents[e.ct.sum] == e.ct {
			delete(c.contents, e.ct.sum)
			c.used -= e.ct.size
		}
	}
	c.loaded = kept
	return nil
}

// loadVersionLocked returns the version a loaded slice belongs to. Slices of
// one object with different ETags (a crash while the object changed) are
// resolved in favour of the most recently stored version; it returns nil if
// the slice loses. meta is only valid during the load.
func (c *Cache) loadVersionLocked(b *bucket, object string, meta []byte) *version {
	var m Meta
	if decodeMeta(meta, &m) != nil {
		return nil
	}
	v := b.sliced[object]
	if v != nil && v.etag == m.ETag {
		return v
	}
	if v != nil {
		if !m.StoredAt.After(metaStoredAt(v.meta)) {
			return nil
		}
		for _, e := range v.slices {
			e.gone = true
		}
	}
	meta = bytes.Clone(meta)
	_ = decodeMeta(meta, &m) // so that m.ETag aliases the copy
	v = &version{meta: meta, etag: m.ETag, size: m.Size, slices: make(map[int64]*entry)}
	b.sliced[object] = v
	return v
}

// scrub reconciles the files with the index loaded at Open, in the
// background: files no entry names (a crash between a file's rename and its
// record) are removed, and entries whose file is missing are dropped. It
// works in batches so that Cache.mu is never held for long.
func (c *Cache) scrub() {
	defer close(c.scrubbed)
	defer c.recoverGoroutine("scrub")
	var files [][32]byte
	if err := c.store.Walk(func(sum [32]byte) { files = append(files, sum) }); err != nil {
		c.log.Warn("cache: scanning files failed; orphans stay until the next start", "err", err)
		return
	}
	const batch = 4096
	orphans, missing := 0, 0
	for len(files) > 0 && c.ctx.Err() == nil {
		n := min(batch, len(files))
		var victims []*content
		c.mu.Lock()
		for _, sum := range files[:n] {
			if ct := c.contents[sum]; ct != nil {
				ct.seen = true
				continue
			}
			// Block commits of this name until the file is gone.
			ct := &content{sum: sum, unlinking: make(chan struct{})}
			c.contents[sum] = ct
			victims = append(victims, ct)
		}
		c.mu.Unlock()
		orphans += len(victims)
		c.unlink(victims)
		files = files[n:]
	}
	c.mu.Lock()
	loaded := c.loaded
	c.loaded = nil
	c.mu.Unlock()
	for len(loaded) > 0 && c.ctx.Err() == nil {
		n := min(batch, len(loaded))
		var victims []*content
		c.mu.Lock()
		for _, e := range loaded[:n] {
			// A file written since Open is not "loaded" any more.
			if !e.gone && e.ct.loaded && !e.ct.seen {
				victims = append(victims, c.removeEntryLocked(e, false))
				missing++
			}
		}
		c.mu.Unlock()
		c.unlink(victims)
		loaded = loaded[n:]
	}
	if orphans > 0 || missing > 0 {
		c.log.Info("cache: files reconciled with the index", "orphans_removed", orphans, "entries_without_file", missing)
	}
}
