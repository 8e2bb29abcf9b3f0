// Package tinylfu is the frequency sketch behind the cache's admission
// filter: a count-min sketch of 4-bit counters with a doorkeeper Bloom
// filter in front and periodic halving ("aging"), after Einziger, Friedman
// and Manes, "TinyLFU: A Highly Efficient Cache Admission Policy" (2017).
//
// The sketch is not safe for concurrent use; the cache calls it under its
// own mutex. It never allocates after New.
package tinylfu

import "math/bits"

// Sketch estimates how often each key (given as a 64-bit hash) was seen in
// the recent past. Estimates saturate at 15 plus the doorkeeper bit.
type Sketch struct {
	table      []uint64 // 16 four-bit counters per word
	tableMask  uint64
	door       []uint64 // doorkeeper: a Bloom filter of keys seen once
	doorMask   uint64
	additions  int
	sampleSize int
}

// New returns a sketch sized for about capacity distinct keys of interest
// (the cache's entry count): one 16-counter word and 16 doorkeeper bits per
// key. Counters are halved every 20*capacity additions so that old
// popularity fades.
func New(capacity int) *Sketch {
	s := &Sketch{}
	s.Grow(capacity)
	return s
}

// Grow resizes the sketch for a new capacity. The history is lost, as after
// a reset of everything.
func (s *Sketch) Grow(capacity int) {
	capacity = max(capacity, 64)
	words := 1 << bits.Len(uint(capacity-1)) // next power of two ≥ capacity
	doorBits := words * 16
	*s = Sketch{
		table:      make([]uint64, words),
		tableMask:  uint64(words - 1),
		door:       make([]uint64, doorBits/64),
		doorMask:   uint64(doorBits - 1),
		sampleSize: 20 * capacity,
	}
}

// rehash mixes h for row i (splitmix64 finaliser with a per-row seed).
func rehash(h uint64, i int) uint64 {
	h += uint64(i+1) * 0x9e3779b97f4a7c15
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9
	h = (h ^ (h >> 27)) * 0x94d049bb133111eb
	return h ^ (h >> 31)
}

// doorkeeper reports whether h was seen since the last reset, and records
// it when set is true.
func (s *Sketch) doorkeeper(h uint64, set bool) bool {
	a, b := rehash(h, 8)&s.doorMask, rehash(h, 9)&s.doorMask
	wa, ba := a/64, uint64(1)<<(a%64)
	wb, bb := b/64, uint64(1)<<(b%64)
	seen := s.door[wa]&ba != 0 && s.door[wb]&bb != 0
	if set {
		s.door[wa] |= ba
		s.door[wb] |= bb
	}
	return seen
}

// Add records one occurrence of the key hashed to h.
func (s *Sketch) Add(h uint64) {
	// The first sighting since the last reset only sets the doorkeeper, so
	// one-hit wonders never reach the counters.
	if s.doorkeeper(h, true) {
		start := (h & 3) << 2
		for i := range 4 {
			idx := rehash(h, i) & s.tableMask
			shift := (start + uint64(i)) << 2
			if (s.table[idx]>>shift)&0xf < 15 {
				s.table[idx] += 1 << shift
			}
		}
	}
	s.additions++
	if s.additions >= s.sampleSize {
		s.reset()
	}
}

// Estimate returns the approximate number of recent occurrences of h.
func (s *Sketch) Estimate(h uint64) int {
	start := (h & 3) << 2
	m := uint64(15)
	for i := range 4 {
		idx := rehash(h, i) & s.tableMask
		shift := (start + uint64(i)) << 2
		m = min(m, (s.table[idx]>>shift)&0xf)
	}
	if s.doorkeeper(h, false) {
		m++
	}
	return int(m)
}

// reset halves every counter and clears the doorkeeper.
func (s *Sketch) reset() {
	for i, w := range s.table {
		s.table[i] = (w >> 1) & 0x7777777777777777
	}
	clear(s.door)
	s.additions /= 2
}
