// Package heapfloor keeps Go's garbage collector from running while the heap
// is small.
//
// A proxy's live heap is a few megabytes while it serves hits, and each hit
// leaves a few kilobytes of garbage (most of it net/http's). With GOGC=100
// the collector then runs dozens of times a second, and each cycle costs CPU
// (mark workers, assists, write barriers) and puts its pause in the latency
// tail. Letting the heap grow to a floor before collecting trades a bounded
// amount of memory for most of those cycles. Go has no such knob (GOMEMLIMIT
// is a ceiling), so after every cycle the floor sets GOGC for the next one:
// high while the live heap is far below the floor, the operator's own once it
// is above. GOMEMLIMIT still wins, as the collector's goal is the lower of
// the two.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Floor holds the garbage collector's heap goal at or above a size.
type Floor struct {
	size uint64
	base int // the GOGC in effect when the floor was set: the goal above it

	mu      sync.Mutex
	stopped bool
	tunes   int // collections tuned after
	samples []metrics.Sample
}

// metric names, in the order of Floor.samples.
var names = []string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Start sets a heap floor of size bytes until Stop. It returns nil, and sets
// nothing, when size is 0 or garbage collection is off (GOGC=off).
func Start(size uint64) *Floor {
	gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(gogc)
	base := int(int64(gogc[0].Value.Uint64())) // GOGC=off reads as -1
	if size == 0 || base < 0 {
		return nil
	}
	f := &Floor{size: size, base: base, samples: make([]metrics.Sample, len(names))}
	for i, n := range names {
		f.samples[i].Name = n
	}
	f.mu.Lock()
	f.tune()
	f.mu.Unlock()
	f.arm()
	return f
}

// arm runs tune after the next garbage collection. A cleanup runs once the
// collector has found its object unreachable, which only a cycle does; the
// object is large enough to stay out of the tiny allocator, whose blocks
// may outlive it.
func (f *Floor) arm() {
	runtime.AddCleanup(new([64]byte), (*Floor).collected, f)
}

func (f *Floor) collected() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.tune()
	f.tunes++
	f.arm()
}

// tune sets GOGC so that the next goal is the floor or the base GOGC's goal,
// whichever is higher. The runtime's goal is the larger of
// live + (live + stacks + globals) × GOGC/100 and a minimum heap of
// 4 MiB × GOGC/100 (runtime.defaultHeapMinimum), so GOGC is also capped where
// that minimum reaches the floor: above, a small heap would grow past it.
func (f *Floor) tune() {
	metrics.Read(f.samples)
	live := f.samples[0].Value.Uint64()
	scanned := live + f.samples[1].Value.Uint64() + f.samples[2].Value.Uint64()
	percent := uint64(f.base)
	if live < f.size {
		need := f.size * 100 / heapMinimum
		if scanned > 0 {
			need = min(need, (f.size-live)*100/scanned)
		}
		percent = max(percent, need)
	}
	debug.SetGCPercent(int(percent))
}

// heapMinimum is the runtime's minimum heap goal at GOGC=100.
const heapMinimum = 4 << 20

// Stop restores the GOGC in effect at Start. It is safe on a nil Floor.
func (f *Floor) Stop() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = true
	debug.SetGCPercent(f.base)
}
