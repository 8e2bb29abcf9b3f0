//go:build !unix

package cache

func fdLimit() uint64 { return 0 }
