package cache

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/s3edge/s3edge/cache/blob"
)

// Store keeps the content files; see blob.Store. nil in Options means a
// blob.Disk under the cache's directory.
type Store = blob.Store

// Temp is a content file being written; see blob.Temp.
type Temp = blob.Temp

// File is an open content file; see blob.File.
type File = blob.File

// isNoSpace reports a full device or an exhausted quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// isReadOnly reports a device or directory the cache may not write.
func isReadOnly(err error) bool {
	return errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission)
}

// isIOError reports a failing device.
func isIOError(err error) bool { return errors.Is(err, syscall.EIO) }
