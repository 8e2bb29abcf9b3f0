package cache

import "testing"

func TestSlicesOf(t *testing.T) {
	tests := []struct {
		off, end, S int64
		want        []span
	}{
		{0, 1, 4, []span{{0, 0, 1}}},
		{0, 4, 4, []span{{0, 0, 4}}},
		{3, 5, 4, []span{{0, 3, 4}, {1, 4, 5}}},
		{4, 12, 4, []span{{1, 4, 8}, {2, 8, 12}}},
		{5, 6, 4, []span{{1, 5, 6}}},
	}
	for _, tt := range tests {
		var got []span
		for sp := range slicesOf(tt.off, tt.end, tt.S) {
			got = append(got, sp)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("slicesOf(%d, %d, %d) = %v, want %v", tt.off, tt.end, tt.S, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("slicesOf(%d, %d, %d) = %v, want %v", tt.off, tt.end, tt.S, got, tt.want)
			}
		}
	}
}

// FuzzSlices checks the slice arithmetic: the spans of a range tile it
// exactly, in order, each inside its aligned slice; and the segments a fill
// cuts its data into are the same slices.
func FuzzSlices(f *testing.F) {
	f.Add(int64(0), int64(1), int64(10), int64(4))
	f.Add(int64(5), int64(100), int64(1000), int64(7))
	f.Add(int64(4<<20-1), int64(2), int64(8<<20), int64(4<<20))
	f.Fuzz(func(t *testing.T, off, n, size, S int64) {
		if S <= 0 || S > 1<<40 || size <= 0 || size > 1<<50 || off < 0 || n <= 0 || off >= size {
			t.Skip()
		}
		end := off + min(n, size-off)
		pos := off
		count := int64(0)
		for sp := range slicesOf(off, end, S) {
			if sp.start != pos || sp.end <= sp.start || sp.start < sp.idx*S || sp.end > (sp.idx+1)*S {
				t.Fatalf("slicesOf(%d, %d, %d): span %+v at %d", off, end, S, sp, pos)
			}
			pos = sp.end
			if count++; count > 1<<16 {
				t.Skip() // too many slices to walk
			}
		}
		if pos != end || count != (end-1)/S-off/S+1 {
			t.Fatalf("slicesOf(%d, %d, %d) covers to %d in %d spans", off, end, S, pos, count)
		}
		// A fill of slice off/S's data, and of a whole object, cut at the
		// slice boundaries.
		for _, base := range []int64{0, off / S * S} {
			length := size - base
			if base != 0 {
				length = min(S, size-base)
			}
			p := int64(0)
			for k := 0; p < length; k++ {
				l := segmentLen(base, p, length, S)
				if l <= 0 || (base+p)%S != 0 || (base+p+l)%S != 0 && base+p+l != base+length {
					t.Fatalf("segmentLen(%d, %d, %d, %d) = %d", base, p, length, S, l)
				}
				p += l
				if k > 1<<16 {
					t.Skip()
				}
			}
		}
	})
}
