package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Key names a cached object. Bucket is the virtual bucket the object belongs
// to: quotas, weights and per-bucket statistics are kept by it.
type Key struct {
	Bucket, Object string
}

// Meta is what the cache keeps about an object so that a hit can be answered
// like the upstream answered the miss.
type Meta struct {
	// Size is the size of the whole object in bytes, also for a range.
	// A Fetcher that does not know it returns -1 and the object is not
	// stored.
	Size         int64
	ETag         string
	LastModified time.Time
	ContentType  string
	// Header holds the other headers to replay, as the fetcher gave them.
	Header map[string]string
	// StoredAt is when the entry was stored or last revalidated; the cache
	// sets it. Revalidation (GetOptions.MaxAge) is measured from it.
	StoredAt time.Time
	// SHA256 is the hash of the content file, set by the cache for objects
	// stored whole; it is zero for sliced objects and fills in progress.
	SHA256 [32]byte
	// Tag is stored with the entry for the caller, who decides from it
	// whether a request may be served the entry (the proxy keeps a hash of
	// an SSE-C customer key there). The cache only keeps it.
	Tag string
}

// Status says how a Get was answered. Its String is meant for X-Cache.
type Status uint8

// The statuses of a Get.
const (
	Hit       Status = iota + 1 // served from a committed entry
	Miss                        // this call started the fill that stores the object
	Coalesced                   // joined a fill another call started
	Bypass                      // streamed from the fetcher, not stored
	Stale                       // served from an entry whose revalidation failed
)

// String returns the X-Cache form: HIT, MISS, COALESCED, BYPASS, STALE.
func (s Status) String() string {
	switch s {
	case Hit:
		return "HIT"
	case Miss:
		return "MISS"
	case Coalesced:
		return "COALESCED"
	case Bypass:
		return "BYPASS"
	case Stale:
		return "STALE"
	}
	return "UNKNOWN"
}

// Fetcher loads a whole object from the origin on a miss.
//
// Fetch is called from a goroutine owned by the cache, with a context that
// ends when the cache closes or the fill times out, never with a caller's
// context. It returns the object's Meta and its body; the cache closes the
// body. The body must return an error, not io.EOF, if the transfer ends
// early, and its Read must return once ctx is done. Implementations must be
// safe for concurrent use.
type Fetcher interface {
	Fetch(ctx context.Context, k Key) (Meta, io.ReadCloser, error)
}

// FetchFunc adapts a function to Fetcher.
type FetchFunc func(ctx context.Context, k Key) (Meta, io.ReadCloser, error)

// Fetch calls f.
func (f FetchFunc) Fetch(ctx context.Context, k Key) (Meta, io.ReadCloser, error) {
	return f(ctx, k)
}

// RangeFetcher loads part of an object: the cache asks for one aligned
// slice at a time. The contract is Fetcher's, and:
//
//   - Meta describes the whole object (Size is the full size, from
//     Content-Range), and the body holds exactly bytes [off, min(off+n,
//     Meta.Size)).
//   - When ifMatch is not empty the fetch must fail if the object's ETag is
//     another (send If-Match), with an error wrapping ErrChanged (the
//     cache then drops the stored slices of that version); the cache
//     checks the returned ETag anyway.
//   - An off at or beyond the end of the object is an error (S3 answers 416).
type RangeFetcher interface {
	FetchRange(ctx context.Context, k Key, off, n int64, ifMatch string) (Meta, io.ReadCloser, error)
}

// RangeFetchFunc adapts a function to RangeFetcher.
type RangeFetchFunc func(ctx context.Context, k Key, off, n int64, ifMatch string) (Meta, io.ReadCloser, error)

// FetchRange calls f.
func (f RangeFetchFunc) FetchRange(ctx context.Context, k Key, off, n int64, ifMatch string) (Meta, io.ReadCloser, error) {
	return f(ctx, k, off, n, ifMatch)
}

// GetOptions tune one Get or GetRange. The zero value serves any stored
// entry without asking the origin (the "immutable" mode).
type GetOptions struct {
	// MaxAge, when positive, makes an entry stored (or last revalidated)
	// longer ago than MaxAge be revalidated with Validate before it is
	// served.
	MaxAge time.Duration
	// Validate asks the origin whether the stored version is still current,
	// typically with a conditional HEAD carrying m.ETag. It returns
	// unchanged=true to keep the entry, false to drop it and fetch again.
	// Concurrent revalidations of one key are coalesced; Validate runs with
	// a context owned by the cache.
	Validate func(ctx context.Context, k Key, m Meta) (unchanged bool, err error)
	// StaleIfError serves the stored entry (Status Stale) when Validate
	// fails, instead of returning its error.
	StaleIfError bool
}

// Errors returned by the cache. Fetcher errors are returned as they are,
// wrapped.
var (
	// ErrClosed: the cache has been closed.
	ErrClosed = errors.New("cache: closed")
	// ErrMissTimeout: the origin did not answer a miss within
	// Options.MissTimeout. It wraps context.DeadlineExceeded.
	ErrMissTimeout = fmt.Errorf("cache: no answer from the origin within the miss timeout: %w", context.DeadlineExceeded)
	// ErrMiss: a Get or GetRange without a fetcher found nothing stored
	// and fresh that it could serve.
	ErrMiss = errors.New("cache: not stored")
	// ErrShortBody: the fetched body ended before Meta.Size bytes. It wraps
	// io.ErrUnexpectedEOF.
	ErrShortBody = shortBodyError{}
	// ErrLongBody: the fetched body holds more than Meta.Size bytes.
	ErrLongBody = errors.New("cache: body longer than its declared size")
	// ErrChanged: the object changed at the origin while a range spanning
	// several slices was being read (another ETag); retrying reads the new
	// version.
	ErrChanged = errors.New("cache: object changed during the read")
	// ErrInvalidRange: the range starts at or beyond the end of the object.
	ErrInvalidRange = errors.New("cache: range not satisfiable")
	// ErrTooLarge: Stage was given a size above Options.MaxObjectSize.
	ErrTooLarge = errors.New("cache: object larger than the maximum object size")
	// ErrCorrupt: a stored file failed its size or hash check. It is never
	// served; the entry is dropped and the next read refetches it.
	ErrCorrupt = errors.New("cache: stored file is corrupt")
	// ErrGone: a reader of an unstored (bypass) fill seeked back to bytes
	// that were already handed to every reader and dropped.
	ErrGone = errors.New("cache: bytes of a pass-through fill no longer buffered")
)

type shortBodyError struct{}

func (shortBodyError) Error() string { return "cache: body shorter than its declared size" }
func (shortBodyError) Unwrap() error { return io.ErrUnexpectedEOF }
