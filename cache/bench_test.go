package cache

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// BenchmarkHit measures the hit path: Get, copy the body, Close, with the
// disk store (page-cache hot files), from parallel goroutines over 64 keys.
//
//	go test -run '^$' -bench BenchmarkHit -benchmem ./cache/
func BenchmarkHit(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10, 256 << 10, 4 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) { benchmarkHit(b, size) })
	}
}

func benchmarkHit(b *testing.B, size int) {
	c := openTest(b, b.TempDir(), Options{MaxBytes: 1 << 30, SliceThreshold: 8 << 20})
	done := fillDone(c)
	o := newOrigin()
	const nkeys = 64
	keys := make([]Key, nkeys)
	for i := range keys {
		keys[i] = Key{"bench", fmt.Sprintf("local_content/%02x/%02x/object-%d", i, i*7%256, i)}
		o.put(keys[i], pattern(i, size))
		get(b, c, keys[i], o)
		<-done
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r, st, err := c.Get(context.Background(), keys[i%nkeys], o, GetOptions{})
			if err != nil || st != Hit {
				b.Fatalf("Get = %v, %v", st, err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
			r.Close()
			i++
		}
	})
}

// BenchmarkHitLookup isolates the cache's own cost per hit (index, pins,
// Reader) with the in-memory store: no open or read system calls.
func BenchmarkHitLookup(b *testing.B) {
	c := openTest(b, b.TempDir(), Options{Store: newMemStore()})
	done := fillDone(c)
	o := newOrigin()
	keys := make([]Key, 1024)
	for i := range keys {
		keys[i] = Key{"bench", fmt.Sprint("k", i)}
		o.put(keys[i], pattern(i, 64))
		get(b, c, keys[i], o)
		<-done
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r, _, err := c.Get(context.Background(), keys[i%len(keys)], o, GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			r.Close()
			i++
		}
	})
}

// BenchmarkHitTCP serves hits into a loopback TCP connection with io.Copy,
// the way the proxy will: the Reader's WriteTo hands the file to the
// connection's ReadFrom, which uses sendfile.
func BenchmarkHitTCP(b *testing.B) {
	for _, size := range []int{4 << 10, 64 << 10, 256 << 10, 4 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) { benchmarkHitTCP(b, size) })
	}
}

func benchmarkHitTCP(b *testing.B, size int) {
	c := openTest(b, b.TempDir(), Options{MaxBytes: 1 << 30, SliceThreshold: 8 << 20})
	done := fillDone(c)
	o := newOrigin()
	k := Key{"bench", "object"}
	o.put(k, pattern(1, size))
	get(b, c, k, o)
	<-done
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var sink sync.WaitGroup
	sink.Go(func() {
		conn, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, conn)
			conn.Close()
		}
	})
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		r, _, err := c.Get(context.Background(), k, o, GetOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(conn, r); err != nil || n != int64(size) {
			b.Fatalf("copied %d, %v", n, err)
		}
		r.Close()
	}
	conn.Close()
	sink.Wait()
}
