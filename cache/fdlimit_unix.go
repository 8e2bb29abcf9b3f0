//go:build unix

package cache

import "syscall"

// fdLimit returns the process's limit on open files, or 0 if unknown.
// (Go raises the soft limit to the hard one at start-up.)
func fdLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}
