//go:build !linux

package proxy

import "syscall"

func setCork(syscall.RawConn, bool) bool { return false }
