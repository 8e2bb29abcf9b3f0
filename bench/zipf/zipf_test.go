package zipf

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestNewRejectsBadInput(t *testing.T) {
	for _, tt := range []struct {
		n int
		s float64
	}{{0, 1}, {-1, 1}, {10, -0.5}, {10, math.NaN()}, {10, math.Inf(1)}} {
		if _, err := New(tt.n, tt.s); err == nil {
			t.Errorf("New(%d, %v) = nil error, want one", tt.n, tt.s)
		}
	}
}

func TestProbSumsToOne(t *testing.T) {
	z, err := New(5000, 1.0)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for k := range z.N() {
		sum += z.Prob(k)
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("sum of probabilities = %v, want 1", sum)
	}
	// P(0) for s = 1 is 1/H(n); H(5000) ≈ ln(5000) + γ + 1/(2·5000).
	h := math.Log(5000) + 0.5772156649 + 1.0/10000
	if got, want := z.Prob(0), 1/h; math.Abs(got-want) > 1e-6 {
		t.Errorf("Prob(0) = %v, want %v", got, want)
	}
	if got, want := z.Prob(9)/z.Prob(0), 0.1; math.Abs(got-want) > 1e-9 {
		t.Errorf("Prob(9)/Prob(0) = %v, want %v", got, want)
	}
}

// TestDistribution draws many ranks and checks that the empirical
// frequencies of the head ranks, and of the whole tail, match the model
// within a few standard deviations (binomial), for s = 1 (which
// math/rand/v2 cannot do) and for s = 0 (uniform).
func TestDistribution(t *testing.T) {
	for _, s := range []float64{0, 0.8, 1.0, 1.3} {
		const n, draws = 1000, 400_000
		z, err := New(n, s)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		counts := make([]int, n)
		for range draws {
			k := z.Rank(r)
			if k < 0 || k >= n {
				t.Fatalf("s=%v: rank %d out of range", s, k)
			}
			counts[k]++
		}
		check := func(name string, got int, p float64) {
			want := p * draws
			sd := math.Sqrt(draws * p * (1 - p))
			if math.Abs(float64(got)-want) > 5*sd+1 {
				t.Errorf("s=%v %s: %d draws, want %.0f ± %.0f", s, name, got, want, 5*sd)
			}
		}
		for k := range 10 {
			check("rank "+string(rune('0'+k)), counts[k], z.Prob(k))
		}
		tail, pTail := 0, 0.0
		for k := n / 2; k < n; k++ {
			tail += counts[k]
			pTail += z.Prob(k)
		}
		check("tail", tail, pTail)
	}
}

func TestDeterministic(t *testing.T) {
	z, _ := New(100, 1)
	a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for i := range 1000 {
		if x, y := z.Rank(a), z.Rank(b); x != y {
			t.Fatalf("draw %d: %d != %d with the same seed", i, x, y)
		}
	}
}

func BenchmarkRank(b *testing.B) {
	z, _ := New(5000, 1)
	r := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	for b.Loop() {
		z.Rank(r)
	}
}
