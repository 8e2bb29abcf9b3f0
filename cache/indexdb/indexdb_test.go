package indexdb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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

// TestWriteFailureRetried: a batch whose transaction fails is not reported
// written (Wait is false), stays queued ahead of later ops and is written
// by a later attempt after a pause, so index.db still holds a prefix of
// the history. Found by review: failed ops were dropped and reported
// durable.
func TestWriteFailureRetried(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Put(&Record{Bucket: "b", Object: "k", Slice: -1, Size: 1, Seq: 1, Meta: []byte{1}})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(path); err != nil {
		t.Fatal(err)
	}
	if err := db.Load(func(*Raw) bool { return true }); err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	failing.Store(true)
	db.failWrite = func() error {
		if failing.Load() {
			return errors.New("disk gone")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 16)
	ran := make(chan struct{})
	go func() { db.Run(ctx, func(err error) { errs <- err }); close(ran) }()

	del := db.Delete("b", "k", -1) // what Invalidate(k) queues
	if db.Wait(context.Background(), del) {
		t.Fatal("Wait reported a Delete written whose batch failed")
	}
	<-errs
	put := db.Put(&Record{Bucket: "b", Object: "k", Slice: -1, Size: 2, Seq: 3, Meta: []byte{2}})
	db.Put(&Record{Bucket: "b", Object: "other", Slice: -1, Size: 1, Seq: 4, Meta: []byte{1}})
	del2 := db.Delete("b", "other", -1)
	if db.Wait(context.Background(), del2) {
		t.Fatal("Wait reported an op written while writes fail")
	}
	failing.Store(false)
	start := time.Now()
	for !db.Wait(context.Background(), del2) { // false at once until the retry
		if time.Since(start) > 5*retryMin {
			t.Fatal("the retry did not write the queued ops")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !db.Wait(context.Background(), del) || !db.Wait(context.Background(), put) {
		t.Fatal("the retry wrote the later ops, not the failed ones")
	}
	if d := time.Since(start); d < retryMin/2 {
		t.Errorf("retried after %v, want a pause of about %v", d, retryMin)
	}
	cancel()
	<-ran
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	if db, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var left []string
	if err := db.Load(func(r *Raw) bool { left = append(left, fmt.Sprintf("%s:%d", r.Object, r.Size)); return true }); err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0] != "k:2" {
		t.Errorf("index.db after the retry holds %q, want [k:2] (the ops' final state)", left)
	}
}

// TestUnstorableKeyNotQueued: a key over bbolt's limit is not queued, so it
// cannot fail every batch after it.
func TestUnstorableKeyNotQueued(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 16)
	ran := make(chan struct{})
	go func() { db.Run(ctx, func(err error) { errs <- err }); close(ran) }()
	db.Put(&Record{Bucket: "b", Object: strings.Repeat("x", 40<<10), Slice: -1, Size: 1, Meta: []byte{1}})
	if !db.Wait(context.Background(), db.Put(&Record{Bucket: "b", Object: "k", Slice: -1, Size: 1, Meta: []byte{1}})) {
		t.Fatalf("a write after an unstorable key failed: %v", <-errs)
	}
	cancel()
	<-ran
	db.Close()
}

func TestLastPerKey(t *testing.T) {
	k := func(s string) []byte { return []byte(s) }
	ops := []op{{k("a"), k("1")}, {k("b"), k("1")}, {k("a"), nil}, {k("c"), k("1")}, {k("b"), k("2")}}
	got := lastPerKey(ops)
	want := []op{{k("a"), nil}, {k("c"), k("1")}, {k("b"), k("2")}}
	if len(got) != len(want) {
		t.Fatalf("got %d ops, want %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i].key) != string(want[i].key) || string(got[i].val) != string(want[i].val) || (got[i].val == nil) != (want[i].val == nil) {
			t.Errorf("op %d = %q:%q, want %q:%q", i, got[i].key, got[i].val, want[i].key, want[i].val)
		}
	}
}
