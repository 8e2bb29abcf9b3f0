// Package blob stores the cache's content files: files named by the SHA-256
// of their bytes, written through temporary files that are fsynced, renamed
// into place and made durable with an fsync of their directory. It knows
// nothing of keys, metadata or eviction.
package blob

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
)

// Store keeps content files, each named by the SHA-256 of its bytes. The
// cache owns all accounting, eviction and reference counting; a Store only
// moves bytes. Implementations must be safe for concurrent use and must
// never hold a lock of the cache's (they cannot: they are called without
// one).
//
// Disk is the production Store; tests inject stores that fail on purpose
// (a full or read-only disk).
type Store interface {
	// Create returns a new, empty temporary file for a fill or a stage.
	Create() (Temp, error)
	// Open opens the content file named sum for reading.
	Open(sum [32]byte) (File, error)
	// Remove deletes the content file named sum. A missing file is not an
	// error.
	Remove(sum [32]byte) error
	// Walk calls fn, from one goroutine, with the name of every content
	// file, and removes files whose name is not a content name. It may run
	// while files are created and removed.
	Walk(fn func(sum [32]byte)) error
	// Free reports the bytes available to the cache on the device holding
	// the files; Options.MinFreeDisk is checked against it.
	Free() (int64, error)
}

// Temp is a file being written. It is readable (ReadAt) while it grows, by
// several goroutines at once, and stays readable after Commit or Discard
// until Close.
type Temp interface {
	io.Writer
	io.ReaderAt
	// Commit makes the written bytes durable and names them sum: fsync,
	// rename into place, fsync the directory. Renaming over an existing
	// file of the same name is allowed (the bytes are the same).
	Commit(sum [32]byte) error
	// Discard removes the temporary name without committing.
	Discard() error
	// Close releases the file handle.
	Close() error
}

// File is an open content file. Disk returns an *os.File, which lets a
// reader hand net/http a file for sendfile.
type File interface {
	io.ReaderAt
	io.Closer
	Stat() (fs.FileInfo, error)
}

// Disk lays files out as <root>/objects/ab/cd/<sha256-hex> and keeps
// temporary files in <root>/tmp, on the same file system so that a rename
// is atomic.
type Disk struct {
	root string
}

var _ Store = (*Disk)(nil)

// NewDisk returns the Store under root, creating its directories.
// Temporary files left in root/tmp by an earlier process are removed: only
// one process may use root at a time.
func NewDisk(root string) (*Disk, error) {
	for _, d := range []string{"objects", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("blob: open store: %w", err)
		}
	}
	tmp := filepath.Join(root, "tmp")
	names, err := readNames(tmp)
	if err != nil {
		return nil, fmt.Errorf("blob: open store: %w", err)
	}
	for _, n := range names {
		if err := os.Remove(filepath.Join(tmp, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("blob: open store: %w", err)
		}
	}
	return &Disk{root: root}, nil
}

// Path returns the content path of sum.
func (s *Disk) Path(sum [32]byte) string {
	var buf [64 + 7]byte // "ab/cd/" + 64 hex digits
	hex.Encode(buf[7:], sum[:])
	copy(buf[0:2], buf[7:9])
	buf[2] = '/'
	copy(buf[3:5], buf[9:11])
	buf[5] = '/'
	return s.root + "/objects/" + string(buf[0:6]) + string(buf[7:])
}

func (s *Disk) Create() (Temp, error) {
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "fill-")
	if err != nil {
		return nil, fmt.Errorf("blob: create temp: %w", err)
	}
	return &diskTemp{s: s, f: f}, nil
}

func (s *Disk) Open(sum [32]byte) (File, error) {
	f, err := openFile(s.Path(sum))
	if err != nil {
		return nil, err // *fs.PathError already names the file
	}
	return f, nil
}

func (s *Disk) Remove(sum [32]byte) error {
	if err := os.Remove(s.Path(sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (s *Disk) Walk(fn func(sum [32]byte)) error {
	objects := filepath.Join(s.root, "objects")
	top, err := readNames(objects)
	if err != nil {
		return err
	}
	// Listing 65536 directories is system calls more than disk: two
	// workers halve the start-up time.
	const workers = 2
	found := make([][][32]byte, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(top) && errs[w] == nil; i += workers {
				found[w], errs[w] = walkTop(filepath.Join(objects, top[i]), top[i], found[w])
			}
		})
	}
	wg.Wait()
	for w := range workers {
		if errs[w] != nil {
			return errs[w]
		}
		for _, sum := range found[w] {
			fn(sum)
		}
	}
	return nil
}

// walkTop lists objects/<a>/*/*, appending content names to found and
// removing anything else.
func walkTop(dir, a string, found [][32]byte) ([][32]byte, error) {
	sub, err := readNames(dir)
	if err != nil {
		return found, err
	}
	buf := make([]byte, 32<<10)
	var files []string
	for _, b := range sub {
		d := dir + "/" + b
		files, err = readDirNames(d, files[:0], buf)
		if errors.Is(err, syscall.ENOTDIR) {
			os.Remove(d)
			continue
		}
		if err != nil {
			return found, err
		}
		for _, name := range files {
			if sum, ok := parseSum(name); ok && name[:2] == a && name[2:4] == b {
				found = append(found, sum)
				continue
			}
			if err := os.RemoveAll(filepath.Join(d, name)); err != nil {
				return found, err
			}
		}
	}
	return found, nil
}

// parseSum decodes a content file name.
func parseSum(name string) (sum [32]byte, ok bool) {
	if len(name) != 64 {
		return sum, false
	}
	_, err := hex.Decode(sum[:], []byte(name))
	return sum, err == nil
}

// readNames lists a directory without sorting or stat calls; a file where a
// directory was expected is listed as empty.
func readNames(dir string) ([]string, error) {
	names, err := readDirNames(dir, nil, make([]byte, 8<<10))
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	return names, err
}

type pathError = fs.PathError

func (s *Disk) Free() (int64, error) { return freeBytes(s.root) }

// diskTemp is a temporary file of the disk store.
type diskTemp struct {
	s       *Disk
	f       *os.File
	renamed bool // only the committing goroutine reads and writes it
}

func (t *diskTemp) Write(p []byte) (int, error) { return t.f.Write(p) }

func (t *diskTemp) ReadAt(p []byte, off int64) (int, error) { return t.f.ReadAt(p, off) }

func (t *diskTemp) Commit(sum [32]byte) error {
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("blob: commit: %w", err)
	}
	dst := t.s.Path(sum)
	err := os.Rename(t.f.Name(), dst)
	if errors.Is(err, fs.ErrNotExist) {
		if err := mkdirSync(filepath.Dir(dst)); err != nil {
			return fmt.Errorf("blob: commit: %w", err)
		}
		err = os.Rename(t.f.Name(), dst)
	}
	if err != nil {
		return fmt.Errorf("blob: commit: %w", err)
	}
	t.renamed = true
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("blob: commit: %w", err)
	}
	return nil
}

func (t *diskTemp) Discard() error {
	if t.renamed {
		return nil
	}
	if err := os.Remove(t.f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func (t *diskTemp) Close() error { return t.f.Close() }

// Reopen opens the file again, by its descriptor rather than its name (which
// Commit changes), with a file offset of its own: sendfile moves the offset,
// and t's descriptor is shared by every reader of the fill.
func (t *diskTemp) Reopen() (*os.File, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.ErrUnsupported
	}
	sc, err := t.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var f *os.File
	cerr := sc.Control(func(fd uintptr) { // t stays open for the call
		f, err = os.Open("/proc/self/fd/" + strconv.FormatUint(uint64(fd), 10))
	})
	if cerr != nil {
		return nil, cerr
	}
	return f, err
}

// mkdirSync creates dir and its missing parents and fsyncs each parent whose
// entries changed, so that a committed file's path survives a crash.
func mkdirSync(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := mkdirSync(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
