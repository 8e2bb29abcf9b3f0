//go:build !linux

package proxy

import "errors"

// setCork: corking is Linux's; elsewhere responses just take more segments.
func setCork(uintptr, bool) error { return errors.ErrUnsupported }
