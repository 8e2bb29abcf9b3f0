// Package indexdb persists the cache's index in a bbolt file: one record
// per stored file, keyed by (bucket, object, slice). Changes are queued in
// the order the caller makes them and written by one goroutine (Run) in
// batches, one transaction and one fsync per batch, so the file always holds
// a prefix of the caller's history: a removal queued after a put is never
// undone by it.
package indexdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	entries  = []byte("entries")
	settings = []byte("settings") // what the records' meaning depends on
)

// Record is one stored file of one key. Slice is -1 for a whole object.
type Record struct {
	Bucket, Object string
	Slice          int64
	Sum            [32]byte // content hash, the file's name
	Size           int64    // file size
	Seq            uint64   // access clock of the last access
	Meta           []byte   // opaque to this package
}

// Raw is a Record as Load reads it: the byte slices alias the database and
// are valid only during the callback.
type Raw struct {
	Bucket, Object []byte
	Slice          int64
	Sum            [32]byte
	Size           int64
	Seq            uint64
	Meta           []byte
}

const header = 48 // Sum, Size, Seq

// Key encodes a record's key: the bucket with its length, the object, and
// the slice + 1 big-endian (so slices sort after their object's whole file).
func Key(bucket, object string, slice int64) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(bucket)+len(object)+8)
	b = binary.AppendUvarint(b, uint64(len(bucket)))
	b = append(b, bucket...)
	b = append(b, object...)
	return binary.BigEndian.AppendUint64(b, uint64(slice+1))
}

func value(r *Record) []byte {
	v := make([]byte, header, header+len(r.Meta))
	copy(v, r.Sum[:])
	binary.LittleEndian.PutUint64(v[32:], uint64(r.Size))
	binary.LittleEndian.PutUint64(v[40:], r.Seq)
	return append(v, r.Meta...)
}

func parse(k, v []byte) (r Raw, ok bool) {
	n, w := binary.Uvarint(k)
	if w <= 0 || uint64(len(k)-w) < n+8 || len(v) < header {
		return r, false
	}
	r.Bucket = k[w : w+int(n)]
	rest := k[w+int(n):]
	r.Object = rest[:len(rest)-8]
	r.Slice = int64(binary.BigEndian.Uint64(rest[len(rest)-8:])) - 1
	r.Sum = [32]byte(v[:32])
	r.Size = int64(binary.LittleEndian.Uint64(v[32:]))
	r.Seq = binary.LittleEndian.Uint64(v[40:])
	r.Meta = v[header:]
	return r, true
}

type op struct {
	key, val []byte // val nil: delete
}

// DB is the index file and its write queue. Methods are safe for
// concurrent use.
type DB struct {
	db   *bolt.DB
	kick chan struct{} // buffered(1): ops are waiting

	mu sync.Mutex
	// mu guards the following.
	ops       []op
	queued    uint64        // ops ever queued
	durable   uint64        // ops ever written
	failing   bool          // the last write failed (its ops are queued again)
	durableCh chan struct{} // closed and replaced after every write
	closed    bool

	failWrite func() error // tests: an error fails the next write
}

// Open opens or creates the index file, waiting at most a second for
// another process to release it.
func Open(path string) (*DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("indexdb: open: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(settings); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(entries)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("indexdb: open: %w", err)
	}
	return &DB{db: db, kick: make(chan struct{}, 1), durableCh: make(chan struct{})}, nil
}

// Setting returns the value saved under name, or nil.
func (d *DB) Setting(name string) (v []byte, err error) {
	err = d.db.View(func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(settings).Get([]byte(name)))
		return nil
	})
	return v, err
}

// SaveSetting saves v under name, durably, before it returns. Call it
// before Run.
func (d *DB) SaveSetting(name string, v []byte) error {
	err := d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(settings).Put([]byte(name), v)
	})
	if err != nil {
		return fmt.Errorf("indexdb: save %s: %w", name, err)
	}
	return nil
}

// Load calls fn with every record, in key order, and deletes the records
// for which it returns false and those that do not parse. Call it before
// Run.
func (d *DB) Load(fn func(r *Raw) bool) error {
	var drop [][]byte
	err := d.db.View(func(tx *bolt.Tx) error {
		cr := tx.Bucket(entries).Cursor()
		for k, v := cr.First(); k != nil; k, v = cr.Next() {
			if r, ok := parse(k, v); !ok || !fn(&r) {
				drop = append(drop, bytes.Clone(k))
			}
		}
		return nil
	})
	if err != nil || len(drop) == 0 {
		return err
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(entries)
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Put queues writing r and returns its ticket for Wait.
func (d *DB) Put(r *Record) uint64 {
	return d.add(op{Key(r.Bucket, r.Object, r.Slice), value(r)})
}

// Delete queues removing a record and returns its ticket for Wait.
func (d *DB) Delete(bucket, object string, slice int64) uint64 {
	return d.add(op{Key(bucket, object, slice), nil})
}

func (d *DB) add(o op) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0
	}
	if len(o.key) > bolt.MaxKeySize || len(o.val) > bolt.MaxValueSize {
		// Never storable (a key of over 32 KiB): queued, it would fail
		// every batch after it. Its entry lives in memory only.
		return d.queued
	}
	d.ops = append(d.ops, o)
	d.queued++
	select {
	case d.kick <- struct{}{}:
	default:
	}
	return d.queued
}

// Queued returns the ticket of the last op queued.
func (d *DB) Queued() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queued
}

// Wait blocks until the op with ticket t is written (true), or writes
// fail (false, at once while they keep failing: the op stays queued and is
// tried again), or ctx is done (false; Close writes it).
func (d *DB) Wait(ctx context.Context, t uint64) bool {
	for {
		d.mu.Lock()
		if d.durable >= t || d.closed {
			d.mu.Unlock()
			return true
		}
		if d.failing {
			d.mu.Unlock()
			return false
		}
		ch := d.durableCh
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// Retry pauses after a failed write: at first retryMin, doubling up to
// retryMax while writes keep failing.
const (
	retryMin = time.Second
	retryMax = 30 * time.Second
)

// Run writes batches until ctx is done, reporting failures to onErr. After
// a failure it waits before the next attempt, however many ops come.
func (d *DB) Run(ctx context.Context, onErr func(error)) {
	var retry <-chan time.Time
	pause := retryMin
	for {
		kick := d.kick
		if retry != nil {
			kick = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-retry:
		}
		if err := d.writeBatch(); err != nil {
			onErr(err)
			retry = time.After(pause)
			pause = min(2*pause, retryMax)
		} else {
			retry, pause = nil, retryMin
		}
	}
}

func (d *DB) writeBatch() error {
	d.mu.Lock()
	ops, last := d.ops, d.queued
	d.ops = nil
	d.mu.Unlock()
	var err error
	if len(ops) > 0 {
		err = d.db.Update(func(tx *bolt.Tx) error {
			if d.failWrite != nil {
				if err := d.failWrite(); err != nil {
					return err
				}
			}
			b := tx.Bucket(entries)
			for _, o := range ops {
				var err error
				if o.val != nil {
					err = b.Put(o.key, o.val)
				} else {
					err = b.Delete(o.key)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			err = fmt.Errorf("indexdb: write: %w", err)
		}
	}
	d.mu.Lock()
	if err != nil {
		// The transaction wrote nothing: its ops go first in the next
		// one, so that the file still holds a prefix of the history.
		// One transaction makes only each key's last op visible, so
		// earlier ops of a key are dropped: what waits is bounded by
		// the keys, not by the time the disk stays unwritable.
		d.ops = lastPerKey(append(ops, d.ops...))
	} else {
		d.durable = last
	}
	d.failing = err != nil
	close(d.durableCh)
	d.durableCh = make(chan struct{})
	d.mu.Unlock()
	return err
}

// lastPerKey keeps the last op of each key, in their order.
func lastPerKey(ops []op) []op {
	last := make(map[string]int, len(ops))
	for i, o := range ops {
		last[string(o.key)] = i
	}
	out := ops[:0]
	for i, o := range ops {
		if last[string(o.key)] == i {
			out = append(out, o)
		}
	}
	return out
}

// Close writes what is queued and closes the file. Run must have returned.
func (d *DB) Close() error {
	err := d.writeBatch()
	d.mu.Lock()
	d.closed = true
	close(d.durableCh)
	d.durableCh = make(chan struct{})
	d.mu.Unlock()
	if cerr := d.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("indexdb: close: %w", cerr)
	}
	return err
}
