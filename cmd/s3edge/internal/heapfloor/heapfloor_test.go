package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// These tests change the process's garbage collector; none runs in parallel.

const floor = 64 << 20

func readUint(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// collect runs a cycle and waits until the floor has tuned for the next one.
func collect(t *testing.T, f *Floor) {
	t.Helper()
	before := gcPercent()
	runtime.GC()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no tuning after a collection: GOGC stayed %d", before)
		}
		f.mu.Lock()
		tuned := f.tunes
		f.mu.Unlock()
		if tuned > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

var sink []byte

// cycles allocates n bytes of garbage and returns how many collections ran.
func cycles(n int) uint64 {
	start := readUint("/gc/cycles/total:gc-cycles")
	for range n / (64 << 10) {
		sink = make([]byte, 64<<10)
	}
	sink = nil
	return readUint("/gc/cycles/total:gc-cycles") - start
}

func TestFloorSkipsCollectionsOfASmallHeap(t *testing.T) {
	base := gcPercent()
	f := Start(floor)
	if f == nil {
		t.Fatal("Start returned nil with GC on")
	}
	f.mu.Lock()
	f.tunes = 0
	f.mu.Unlock()
	collect(t, f)
	goal := readUint("/gc/heap/goal:bytes")
	if goal < floor*95/100 || goal > floor*13/10 {
		t.Errorf("heap goal %d MiB with a floor of %d MiB", goal>>20, floor>>20)
	}
	with := cycles(512 << 20)
	f.Stop()
	if p := gcPercent(); p != base {
		t.Errorf("GOGC %d after Stop, want %d", p, base)
	}
	runtime.GC()
	if goal := readUint("/gc/heap/goal:bytes"); goal > floor/4 {
		t.Errorf("heap goal %d MiB after Stop, want Go's own (a few MiB)", goal>>20)
	}
	without := cycles(512 << 20)
	// Cycles overshoot their goal while the allocating loop outruns a
	// concurrent mark, more so on a loaded machine: the bounds are loose.
	t.Logf("512 MiB of garbage: %d collections with a %d MiB floor, %d without", with, floor>>20, without)
	if with > 16 {
		t.Errorf("%d collections with the floor, want about one per %d MiB", with, floor>>20)
	}
	if without <= with {
		t.Errorf("%d collections without the floor against %d with it: the floor changed nothing", without, with)
	}
}

func TestFloorStepsAsideForALargeHeap(t *testing.T) {
	base := gcPercent()
	live := make([][]byte, 0, 2*floor>>20)
	for range cap(live) {
		live = append(live, make([]byte, 1<<20))
	}
	f := Start(floor)
	defer f.Stop()
	f.mu.Lock()
	f.tunes = 0
	f.mu.Unlock()
	collect(t, f)
	if p := gcPercent(); p != base {
		t.Errorf("GOGC %d with a live heap of twice the floor, want the base %d", p, base)
	}
	runtime.KeepAlive(live)
}

func TestNoFloor(t *testing.T) {
	if f := Start(0); f != nil {
		t.Error("Start(0) set a floor")
	}
	off := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(off)
	if f := Start(floor); f != nil {
		t.Error("Start set a floor with GOGC=off")
	}
	if p := gcPercent(); p != -1 {
		t.Errorf("GOGC %d, want it left off", p)
	}
	var f *Floor
	f.Stop() // a nil Floor stops as a no-op
}
