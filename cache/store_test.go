package cache

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// memStore keeps files in memory: for CPU benchmarks and the hit-ratio
// trace, where disk I/O would only add noise.
type memStore struct {
	mu    sync.Mutex
	files map[[32]byte][]byte
}

var _ Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{files: map[[32]byte][]byte{}} }

func (s *memStore) Create() (Temp, error) { return &memTemp{s: s}, nil }

func (s *memStore) Open(sum [32]byte) (File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.files[sum]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return memFile{b}, nil
}

func (s *memStore) Remove(sum [32]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, sum)
	return nil
}

func (s *memStore) Walk(fn func([32]byte)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sum := range s.files {
		fn(sum)
	}
	return nil
}

func (s *memStore) Free() (int64, error) { return 1 << 40, nil }

type memTemp struct {
	s  *memStore
	mu sync.Mutex
	b  []byte
}

func (t *memTemp) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	return len(p), nil
}

func (t *memTemp) ReadAt(p []byte, off int64) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return memFile{t.b}.ReadAt(p, off)
}

func (t *memTemp) Commit(sum [32]byte) error {
	t.mu.Lock()
	b := t.b
	t.mu.Unlock()
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.files[sum] = b
	return nil
}

func (t *memTemp) Discard() error { return nil }
func (t *memTemp) Close() error   { return nil }

type memFile struct{ b []byte }

func (f memFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(f.b)) {
		return 0, io.EOF
	}
	n := copy(p, f.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
func (f memFile) Close() error               { return nil }
func (f memFile) Stat() (fs.FileInfo, error) { return memInfo(len(f.b)), nil }

type memInfo int64

func (i memInfo) Name() string       { return "mem" }
func (i memInfo) Size() int64        { return int64(i) }
func (i memInfo) Mode() fs.FileMode  { return 0 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// faultStore wraps a Store and fails writes with err while it is set: a
// full disk (ENOSPC) or one remounted read-only (EROFS).
type faultStore struct {
	Store
	err atomic.Pointer[error]
}

func (s *faultStore) fail(err error) {
	if err == nil {
		s.err.Store(nil)
		return
	}
	s.err.Store(&err)
}

func (s *faultStore) failing() error {
	if p := s.err.Load(); p != nil {
		return &os.PathError{Op: "write", Path: "fault", Err: *p}
	}
	return nil
}

func (s *faultStore) Create() (Temp, error) {
	if err := s.failing(); err != nil && errors.Is(err, syscall.EROFS) {
		return nil, err
	}
	t, err := s.Store.Create()
	if err != nil {
		return nil, err
	}
	return &faultTemp{Temp: t, s: s}, nil
}

type faultTemp struct {
	Temp
	s *faultStore
}

func (t *faultTemp) Write(p []byte) (int, error) {
	if err := t.s.failing(); err != nil {
		return 0, err
	}
	return t.Temp.Write(p)
}

func (t *faultTemp) Commit(sum [32]byte) error {
	if err := t.s.failing(); err != nil {
		return err
	}
	return t.Temp.Commit(sum)
}

// smallDisk is a memStore on a device of a fixed size, for MinFreeDisk.
type smallDisk struct {
	*memStore
	size int64
}

func (s smallDisk) Free() (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	free := s.size
	for _, b := range s.files {
		free -= int64(len(b))
	}
	return free, nil
}
