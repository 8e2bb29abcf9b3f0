// Package lrusim is an exact, byte-budgeted LRU cache simulator: the
// yardstick the benchmark reports beside every caching participant's hit
// ratio, computed on the very trace the participant was given.
//
// Semantics are those of a textbook LRU with a byte budget: a hit moves the
// entry to the front; a miss inserts the object (unless it alone exceeds the
// budget) and evicts from the back until the bytes fit.
package lrusim

import "container/list"

// Cache is a simulated LRU. It is not safe for concurrent use.
type Cache struct {
	max, used int64
	ll        *list.List // front = most recently used; values are *entry
	items     map[string]*list.Element
}

type entry struct {
	key  string
	size int64
}

// New returns an empty cache holding at most maxBytes.
func New(maxBytes int64) *Cache {
	return &Cache{max: maxBytes, ll: list.New(), items: make(map[string]*list.Element)}
}

// Access records a read of key (of size bytes) and reports whether it hit.
func (c *Cache) Access(key string, size int64) bool {
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		return true
	}
	if size > c.max {
		return false
	}
	c.items[key] = c.ll.PushFront(&entry{key, size})
	c.used += size
	for c.used > c.max {
		back := c.ll.Back()
		ev := back.Value.(*entry)
		c.ll.Remove(back)
		delete(c.items, ev.key)
		c.used -= ev.size
	}
	return false
}

// Len returns the number of entries.
func (c *Cache) Len() int { return c.ll.Len() }

// Used returns the bytes held.
func (c *Cache) Used() int64 { return c.used }

// Access is one read in a trace.
type Access struct {
	Key  string
	Size int64
}

// Result is what a trace did to a cache.
type Result struct {
	Requests, Hits  int64
	Bytes, HitBytes int64
}

// HitRatio is Hits/Requests (0 for an empty trace).
func (r Result) HitRatio() float64 { return ratio(r.Hits, r.Requests) }

// ByteHitRatio is HitBytes/Bytes (0 for an empty trace).
func (r Result) ByteHitRatio() float64 { return ratio(r.HitBytes, r.Bytes) }

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Simulate replays trace through an empty cache of maxBytes.
func Simulate(maxBytes int64, trace []Access) Result {
	c := New(maxBytes)
	var r Result
	for _, a := range trace {
		r.Requests++
		r.Bytes += a.Size
		if c.Access(a.Key, a.Size) {
			r.Hits++
			r.HitBytes += a.Size
		}
	}
	return r
}
