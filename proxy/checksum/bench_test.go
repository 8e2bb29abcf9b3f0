package checksum

import (
	"bytes"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"testing"
)

// BenchmarkReader measures a 4 MiB payload read in 32 KiB reads through a
// Reader checking one algorithm. (The writer hides io.Discard's ReadFrom,
// which would impose its own 8 KiB reads.)
func BenchmarkReader(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18)
	buf := make([]byte, 32<<10)
	for a := CRC32; a <= MD5; a++ {
		b.Run(a.String(), func(b *testing.B) {
			h := a.New()
			h.Write(data)
			want := []Expect{{Algorithm: a, Digest: h.Sum(nil)}}
			rd := bytes.NewReader(data)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(data)
				r, _ := NewReader(rd, want, Options{})
				if _, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, r, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCRC64NVMEWrite compares crc64.go with hash/crc64 and the same
// table, at write sizes network reads produce.
func BenchmarkCRC64NVMEWrite(b *testing.B) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	for _, w := range []int{1 << 10, 8 << 10, 32 << 10} {
		for _, impl := range []struct {
			name string
			new  func() hash.Hash
		}{{"slicing8", func() hash.Hash { return newCRC64NVME() }}, {"hash-crc64", func() hash.Hash { return crc64.New(crc64NVME) }}} {
			b.Run(fmt.Sprintf("%s/%dKiB", impl.name, w>>10), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					h := impl.new()
					for p := data; len(p) > 0; p = p[w:] {
						h.Write(p[:w])
					}
				}
			})
		}
	}
}
