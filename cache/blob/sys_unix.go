//go:build linux || darwin || freebsd

package blob

import (
	"os"
	"syscall"
)

// freeBytes reports the bytes an unprivileged process may still write on
// the file system holding dir.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// readDirNames lists a directory with raw system calls, appending to names:
// at start-up the cache lists 65536 directories, and os.File's set-up per
// directory (poller registration, finalizer) costs as much as the listing.
// buf is scratch space.
func readDirNames(dir string, names []string, buf []byte) ([]string, error) {
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return names, &pathError{Op: "open", Path: dir, Err: err}
	}
	defer syscall.Close(fd)
	for {
		n, err := syscall.ReadDirent(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return names, &pathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
}

// openFile opens a content file for reading. os.Open would fstat it to
// decide whether to use the poller; a hit then pays one more system call
// before its own fstat (the size check).
func openFile(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &pathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}
