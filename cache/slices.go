package cache

import "iter"

// span is the part [start, end) of slice idx (object bytes
// [idx*S, (idx+1)*S)) that a read covers.
type span struct{ idx, start, end int64 }

// slicesOf yields, in order, the slices of size S overlapping object bytes
// [off, end), each clipped to that interval. 0 ≤ off < end, S > 0.
func slicesOf(off, end, S int64) iter.Seq[span] {
	return func(yield func(span) bool) {
		for idx := off / S; idx*S < end; idx++ {
			if !yield(span{idx, max(off, idx*S), min(end, (idx+1)*S)}) {
				return
			}
		}
	}
}

// segmentLen is the length of the segment at data offset pos of data that
// starts at object offset base and is length bytes long, cut at slice
// boundaries of size S.
func segmentLen(base, pos, length, S int64) int64 {
	return min(S-(base+pos)%S, length-pos)
}
