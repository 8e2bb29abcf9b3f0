package embedded

import (
	"io"
	"os"
	"path/filepath"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// store is the gofakes3 backend: s3afero's multi-bucket filesystem backend
// with safer writes, plus multipart uploads on disk.
type store struct {
	*s3afero.MultiBucketBackend
	*uploads
	tmp string // PUT spools
}

var (
	_ gofakes3.Backend          = (*store)(nil)
	_ gofakes3.MultipartBackend = (*store)(nil)
)

func openStore(dir string) (*store, error) {
	fs, err := osFs(dir)
	if err != nil {
		return nil, err
	}
	backend, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(dir, "tmp")
	// Spools left by a crash are garbage.
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	up, err := openUploads(filepath.Join(dir, "uploads"), backend)
	if err != nil {
		return nil, err
	}
	return &store{MultiBucketBackend: backend, uploads: up, tmp: tmp}, nil
}

// PutObject reads the whole body into a spool file before s3afero, which
// truncates the object's file first, replaces the object: a body cut short
// or failing its Content-MD5 (gofakes3 checks it at EOF) leaves the old
// object as it was.
func (s *store) PutObject(bucket, key string, meta map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	spool, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	n, err := io.Copy(spool, input)
	if err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	if n != size {
		return gofakes3.PutObjectResult{}, gofakes3.ErrIncompleteBody
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return gofakes3.PutObjectResult{}, err
	}
	return s.MultiBucketBackend.PutObject(bucket, key, meta, spool, size, cond)
}

// CopyObject goes through the spool too: s3afero's own copy would truncate
// the source while reading it when source and destination are the same
// object (a metadata update).
func (s *store) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(s, srcBucket, srcKey, dstBucket, dstKey, meta)
}

// DeleteBucket also refuses a bucket with uploads in progress.
func (s *store) DeleteBucket(name string) error {
	busy, err := s.uploads.any(name)
	if err != nil {
		return err
	}
	if busy {
		return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, name)
	}
	return s.MultiBucketBackend.DeleteBucket(name)
}
