//go:build !(linux || darwin || freebsd)

package blob

import (
	"errors"
	"os"
)

// freeBytes is not implemented here; MinFreeDisk is then not enforced.
func freeBytes(string) (int64, error) {
	return 0, errors.ErrUnsupported
}

func readDirNames(dir string, names []string, _ []byte) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return names, err
	}
	defer f.Close()
	more, err := f.Readdirnames(-1)
	return append(names, more...), err
}

func openFile(path string) (*os.File, error) { return os.Open(path) }
