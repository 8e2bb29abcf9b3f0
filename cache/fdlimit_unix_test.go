//go:build unix

package cache

import (
	"syscall"
	"testing"
)

// TestOpenFilesDefaultFollowsTheLimit: under a low limit on open files the
// cache keeps fewer open, so that client connections still get theirs.
func TestOpenFilesDefaultFollowsTheLimit(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Skip(err)
	}
	if old.Cur >= 8*defaultOpenFiles && openFilesDefault() != defaultOpenFiles {
		t.Errorf("limit %d: default %d, want %d", old.Cur, openFilesDefault(), defaultOpenFiles)
	}
	low := old
	low.Cur = 800
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip(err)
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)
	if got := openFilesDefault(); got != 100 {
		t.Errorf("limit 800: default %d, want 100", got)
	}
}
