package indexdb

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
)

func TestOrderAndLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var run sync.WaitGroup
	run.Go(func() { d.Run(ctx, func(err error) { t.Error(err) }) })
	put := func(obj string, slice int64, seq uint64) uint64 {
		return d.Put(&Record{Bucket: "b", Object: obj, Slice: slice, Sum: [32]byte{byte(seq)}, Size: 10, Seq: seq, Meta: []byte("m")})
	}
	put("a", -1, 1)
	put("a", 0, 2)
	put("gone", -1, 3)
	d.Delete("b", "gone", -1) // queued after its put: it wins
	put("drop", -1, 4)
	d.Wait(ctx, put("a", -1, 5)) // rewritten with a new access clock
	cancel()
	run.Wait()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = d.Load(func(r *Raw) bool {
		got = append(got, string(r.Object))
		if string(r.Object) == "a" && r.Slice == -1 && (r.Seq != 5 || r.Size != 10 || string(r.Meta) != "m" || string(r.Bucket) != "b") {
			t.Errorf("record a = %+v", r)
		}
		return string(r.Object) != "drop"
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "a", "drop"}; len(got) != len(want) || got[0] != "a" || got[2] != "drop" {
		t.Fatalf("Load saw %v, want %v", got, want)
	}
	got = nil
	d.Load(func(r *Raw) bool { got = append(got, string(r.Object)); return true })
	if len(got) != 2 {
		t.Fatalf("after Load dropped one: %v", got)
	}
	d.Close()
}

func TestKeyOrder(t *testing.T) {
	// A whole object sorts before its slices, and slices in order.
	a, b, c := Key("bk", "obj", -1), Key("bk", "obj", 0), Key("bk", "obj", 1)
	if !(string(a) < string(b) && string(b) < string(c)) {
		t.Fatalf("keys out of order: %q %q %q", a, b, c)
	}
	r, ok := parse(Key("bucket", "x/y", 7), make([]byte, header))
	if !ok || string(r.Bucket) != "bucket" || string(r.Object) != "x/y" || r.Slice != 7 {
		t.Fatalf("parse(Key) = %+v, %v", r, ok)
	}
}
