package cache

import "github.com/hashicorp/golang-lru/v2/simplelru"

// defaultOpenFiles is Options.OpenFiles' default, lowered to an eighth of
// the process's limit on open files: with as many spares, the cache may
// hold twice that, and client connections need the rest.
const defaultOpenFiles = 1024

func openFilesDefault() int {
	if l := fdLimit(); l > 0 && l/8 < defaultOpenFiles {
		return max(int(l/8), 16)
	}
	return defaultOpenFiles
}

// handle is a content file kept open for positioned reads (ReadAt) by any
// number of readers: a hit on a small object then costs one pread instead
// of open, fstat, pread and close. Sendfile moves a file's offset, so it
// needs a descriptor of its own (Reader.WriteTo); those are kept too, as
// spares, and the next sendfile hit takes one instead of opening the file.
//
// refs, spares and evicted are guarded by Cache.mu. A handle leaves the set
// when it is least recently used, when its content is unlinked (so that a
// removed file's space is freed) or found corrupt; its spares are closed
// then, and its file once the last reader holding it lets go, never under a
// reader.
type handle struct {
	f       File
	refs    int32
	spares  []File // private descriptors not in use, at unknown offsets
	evicted bool
}

// handles is the set of open content files, by content.
type handles struct {
	lru *simplelru.LRU[*content, *handle] // nil: none kept open
	// toClose collects files whose last reference went while c.mu was
	// held; they are closed after it is released.
	toClose []File
	spares  int // spare descriptors of all handles, at most the LRU's size
	max     int
}

func newHandles(n int) *handles {
	hs := &handles{max: n}
	if n <= 0 {
		return hs
	}
	hs.lru, _ = simplelru.NewLRU(n, func(_ *content, h *handle) {
		h.evicted = true
		hs.toClose = append(hs.toClose, h.spares...)
		hs.spares -= len(h.spares)
		h.spares = nil
		if h.refs == 0 {
			hs.toClose = append(hs.toClose, h.f)
		}
	})
	return hs
}

// handleLocked returns ct's open handle, referenced, or nil.
func (c *Cache) handleLocked(ct *content) *handle {
	if c.handles.lru == nil {
		return nil
	}
	h, ok := c.handles.lru.Get(ct)
	if !ok {
		return nil
	}
	h.refs++
	return h
}

// openHandle returns a referenced handle on ct's file, opening the file (and
// checking it, see openContent) if no reader has it open.
func (c *Cache) openHandle(ct *content) (*handle, error) {
	c.mu.Lock()
	h := c.handleLocked(ct)
	c.mu.Unlock()
	if h != nil {
		return h, nil
	}
	f, err := c.openContent(ct)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if h = c.handleLocked(ct); h != nil { // another reader opened it meanwhile
		c.mu.Unlock()
		f.Close()
		return h, nil
	}
	h = &handle{f: f, refs: 1}
	if c.handles.lru != nil && ct.live && !ct.bad && !c.closed {
		c.handles.lru.Add(ct, h)
	} else {
		h.evicted = true // private: closed on release
	}
	closing := c.takeClosingLocked()
	c.mu.Unlock()
	closeFiles(closing)
	return h, nil
}

// releaseHandleLocked drops a reader's reference; the caller closes the
// files takeClosingLocked returns once c.mu is released.
func (c *Cache) releaseHandleLocked(h *handle) {
	h.refs--
	if h.refs == 0 && h.evicted {
		c.handles.toClose = append(c.handles.toClose, h.f)
	}
}

// spareLocked takes a spare private descriptor of h, or returns nil.
func (c *Cache) spareLocked(h *handle) File {
	n := len(h.spares)
	if n == 0 {
		return nil
	}
	f := h.spares[n-1]
	h.spares = h.spares[:n-1]
	c.handles.spares--
	return f
}

// putSpareLocked keeps a reader's private descriptor of h for the next
// reader, or queues it for closing when h is gone or the spares are full.
func (c *Cache) putSpareLocked(h *handle, f File) {
	if h.evicted || c.handles.spares >= c.handles.max {
		c.handles.toClose = append(c.handles.toClose, f)
		return
	}
	h.spares = append(h.spares, f)
	c.handles.spares++
}

// dropHandleLocked closes ct's handle as soon as no reader holds it: its
// file is being removed or is corrupt.
func (c *Cache) dropHandleLocked(ct *content) {
	if c.handles.lru != nil {
		c.handles.lru.Remove(ct)
	}
}

// dropHandlesLocked lets go of every open file, for Close.
func (c *Cache) dropHandlesLocked() {
	if c.handles.lru != nil {
		c.handles.lru.Purge()
	}
}

func (c *Cache) takeClosingLocked() []File {
	fs := c.handles.toClose
	c.handles.toClose = nil
	return fs
}

func closeFiles(fs []File) {
	for _, f := range fs {
		f.Close()
	}
}
