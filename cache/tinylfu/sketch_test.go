package tinylfu

import "testing"

func TestSketch(t *testing.T) {
	s := New(1024)
	hot, cold := uint64(0xfeed), uint64(0xbeef)
	for range 10 {
		s.Add(hot)
	}
	s.Add(cold)
	if got := s.Estimate(hot); got != 10 {
		t.Fatalf("Estimate(hot) = %d, want 10", got)
	}
	if got := s.Estimate(cold); got != 1 {
		t.Fatalf("Estimate(seen once) = %d, want 1 (the doorkeeper)", got)
	}
	if got := s.Estimate(0x1234); got != 0 {
		t.Fatalf("Estimate(never seen) = %d, want 0", got)
	}
	for range 40 {
		s.Add(hot)
	}
	if got := s.Estimate(hot); got != 16 {
		t.Fatalf("Estimate saturates at 15+1, got %d", got)
	}
}

func TestSketchAges(t *testing.T) {
	s := New(64)
	old := uint64(42)
	for range 9 {
		s.Add(old)
	}
	for i := range s.sampleSize { // fills the sample: one reset
		s.Add(uint64(i) * 0x9e3779b97f4a7c15)
	}
	if got := s.Estimate(old); got > 4 {
		t.Fatalf("Estimate after a reset = %d, want ≤ 4 (halved)", got)
	}
}

func BenchmarkAddEstimate(b *testing.B) {
	s := New(1 << 16)
	var h uint64
	for b.Loop() {
		h += 0x9e3779b97f4a7c15
		s.Add(h)
		s.Estimate(h)
	}
}
