package cache

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// zipfTrace returns n requests over objects ids 0..objects-1 drawn from a
// Zipf distribution with exponent s (math/rand/v2's Zipf needs s > 1),
// deterministically from seed.
func zipfTrace(seed uint64, n, objects int, s float64) []int {
	cdf := make([]float64, objects)
	sum := 0.0
	for i := range objects {
		sum += 1 / math.Pow(float64(i+1), s)
		cdf[i] = sum
	}
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	perm := r.Perm(objects) // popularity rank → object id
	out := make([]int, n)
	for i := range out {
		out[i] = perm[sort.SearchFloat64s(cdf, r.Float64()*sum)]
	}
	return out
}

// zeroFetcher serves objects of size bytes: the id, then zeros, so that
// every object has its own content hash.
type zeroFetcher struct{ size int64 }

func (z zeroFetcher) Fetch(_ context.Context, k Key) (Meta, io.ReadCloser, error) {
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], hashString(0, k.Object))
	body := io.MultiReader(bytes.NewReader(id[:]), io.LimitReader(zeros{}, z.size-8))
	return Meta{Size: z.size, ETag: `"` + k.Object + `"`}, io.NopCloser(body), nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// replay runs the trace through a Cache (in-memory store) with the given
// admission filter and returns the byte hit ratio.
func replay(t testing.TB, trace []int, size, maxBytes int64, adm Admission) float64 {
	c, err := Open(t.TempDir(), Options{MaxBytes: maxBytes, Admission: adm, Store: newMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.salt = 0 // reproducible
	done := fillDone(c)
	f := zeroFetcher{size}
	var hitBytes, allBytes int64
	for _, id := range trace {
		r, st, err := c.Get(context.Background(), Key{"b", fmt.Sprint("obj-", id)}, f, GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil || n != size {
			t.Fatalf("read %d bytes, %v", n, err)
		}
		allBytes += n
		if st == Hit {
			hitBytes += n
		} else {
			<-done
		}
	}
	return float64(hitBytes) / float64(allBytes)
}

// TestZipfHitRatio replays a Zipf (s = 1.0) trace of 20,000 requests over
// 5,000 objects of 64 KiB with the cache at 10% of the working set, and
// compares the admission filters. The target is a byte hit ratio
// of at least 69% (exact LRU: ~63.8%, W-TinyLFU simulation: 69.3%).
//
//	go test -run TestZipfHitRatio -v ./cache/
func TestZipfHitRatio(t *testing.T) {
	if testing.Short() {
		t.Skip("replays 20,000 requests")
	}
	const size, objects, requests = 64 << 10, 5000, 20000
	trace := zipfTrace(1, requests, objects, 1.0)
	maxBytes := int64(objects * size / 10)
	got := map[Admission]float64{}
	for _, adm := range []Admission{AdmitAll, AdmitSecondHit, AdmitTinyLFU} {
		got[adm] = replay(t, trace, size, maxBytes, adm)
		t.Logf("admission %-10s byte hit ratio %.2f%%", adm, 100*got[adm])
	}
	if got[AdmitTinyLFU] < 0.69 || got[AdmitTinyLFU] <= got[AdmitAll] {
		t.Fatalf("TinyLFU byte hit ratio %.4f, LRU %.4f: want ≥ 0.69 and above LRU", got[AdmitTinyLFU], got[AdmitAll])
	}
}
