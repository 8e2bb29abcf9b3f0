// Package upstream is the distant S3 provider behind s3edge: the Upstream
// interface the proxy calls, its implementation over aws-sdk-go-v2 (S3), and
// the typed errors every implementation returns.
//
// Buckets and keys here are the upstream's own names: the proxy has already
// mapped a client's virtual bucket and key to them. Keys are opaque bytes,
// never file paths.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Upstream is the distant S3 provider. Implementations must be safe for
// concurrent use. Every call that returns a body hands ownership to the caller,
// who must close it. Implementations never log or return secrets.
type Upstream interface {
	// HeadBucket reports whether bucket exists and is reachable.
	HeadBucket(ctx context.Context, bucket string) error
	// Head returns an object's metadata. Conditionals in o are evaluated by
	// the provider (ErrPreconditionFailed, ErrNotModified).
	Head(ctx context.Context, bucket, key string, o GetOptions) (ObjectInfo, error)
	// Get returns an object, or the part of it that o.Range selects.
	Get(ctx context.Context, bucket, key string, o GetOptions) (*Object, error)
	// Put stores an object. in.Body must be seekable so that the request can
	// be signed and retried.
	Put(ctx context.Context, in PutInput) (ObjectInfo, error)
	// Copy copies an object within the provider.
	Copy(ctx context.Context, in CopyInput) (ObjectInfo, error)
	// Delete removes an object; deleting a missing key is not an error.
	Delete(ctx context.Context, bucket, key string) error
	// DeleteObjects removes several keys of one bucket in one request and
	// returns one result per key.
	DeleteObjects(ctx context.Context, bucket string, keys []string) ([]DeleteResult, error)
	// List returns one page of a bucket listing (ListObjectsV2 semantics).
	List(ctx context.Context, in ListInput) (ListPage, error)

	// CreateMultipart starts a multipart upload and returns its upload ID.
	CreateMultipart(ctx context.Context, in PutInput) (string, error)
	// UploadPart stores one part; in.Body must be seekable.
	UploadPart(ctx context.Context, in PartInput) (Part, error)
	// CompleteMultipart assembles the parts into the object.
	CompleteMultipart(ctx context.Context, in CompleteInput) (ObjectInfo, error)
	// AbortMultipart discards an upload and its parts.
	AbortMultipart(ctx context.Context, bucket, key, uploadID string) error
	// ListParts lists the parts uploaded so far.
	ListParts(ctx context.Context, in ListPartsInput) (PartsPage, error)
	// ListUploads lists the multipart uploads in progress.
	ListUploads(ctx context.Context, in ListUploadsInput) (UploadsPage, error)
}

// ObjectInfo is what the provider says about an object.
type ObjectInfo struct {
	Bucket, Key  string
	Size         int64
	ETag         string // quoted, as S3 sends it
	LastModified time.Time
	ContentType  string
	StorageClass string
	VersionID    string
	// Header holds the other representation headers to replay to clients,
	// with canonical names: Cache-Control, Content-Encoding,
	// Content-Disposition, Content-Language, Expires, X-Amz-Meta-*,
	// X-Amz-Server-Side-Encryption*, X-Amz-Storage-Class.
	Header map[string]string
	// Range is the part of the object an answer covers: non-nil when the
	// provider answered a Range or partNumber request with 206. Size is
	// then still the whole object's size (-1 if the provider did not say).
	Range *ContentRange
	// PartsCount is the number of parts of a multipart object, when the
	// provider says (it does for partNumber requests); 0 otherwise.
	PartsCount int32
}

// Object is an object's metadata and body.
type Object struct {
	ObjectInfo
	// Body yields the bytes (those of Range, if set); the caller closes it.
	Body io.ReadCloser
}

// ContentRange is the byte range of a partial response.
type ContentRange struct {
	Start, End int64 // inclusive
	Total      int64 // the whole object's size, -1 if unknown ("bytes 0-9/*")
}

// SSEC holds server-side encryption with customer-provided keys. The key is a
// secret of the client: it is passed through and never logged.
type SSEC struct {
	Algorithm string // AES256
	Key       string // base64
	KeyMD5    string // base64
}

// IsZero reports whether no SSE-C parameters were given.
func (s SSEC) IsZero() bool { return s.Algorithm == "" && s.Key == "" && s.KeyMD5 == "" }

// String hides the key.
func (s SSEC) String() string {
	if s.IsZero() {
		return "SSEC{}"
	}
	return fmt.Sprintf("SSEC{%s, key md5 %s}", s.Algorithm, s.KeyMD5)
}

// GetOptions are the read parameters a client may pass through.
type GetOptions struct {
	Range             string // raw Range header value, "" for the whole object
	IfMatch           string
	IfNoneMatch       string
	IfModifiedSince   time.Time
	IfUnmodifiedSince time.Time
	PartNumber        int32
	VersionID         string
	SSEC              SSEC
}

// PutInput describes an object to write (also used to start a multipart
// upload, where Body and Size are unused).
type PutInput struct {
	Bucket, Key  string
	Body         io.ReadSeeker
	Size         int64
	ContentMD5   string // base64, passed on so the provider verifies too
	ContentType  string
	StorageClass string
	// Header holds representation headers to store with canonical names:
	// Cache-Control, Content-Disposition, Content-Encoding,
	// Content-Language, Expires, X-Amz-Meta-*, X-Amz-Tagging,
	// X-Amz-Server-Side-Encryption, X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id,
	// X-Amz-Website-Redirect-Location, X-Amz-Acl.
	Header map[string]string
	SSEC   SSEC
	// IfMatch and IfNoneMatch make the write conditional (S3's conditional
	// writes): ErrPreconditionFailed when they do not hold.
	IfMatch, IfNoneMatch string
}

// CopyInput describes a server-side copy.
type CopyInput struct {
	Bucket, Key             string // destination
	SourceBucket, SourceKey string
	SourceVersionID         string
	// MetadataDirective is COPY (default) or REPLACE; with REPLACE the
	// destination takes ContentType, StorageClass and Header.
	MetadataDirective string
	ContentType       string
	StorageClass      string
	Header            map[string]string
	// Conditions on the source.
	IfMatch, IfNoneMatch               string
	IfModifiedSince, IfUnmodifiedSince time.Time
	SSEC                               SSEC // destination key
	SourceSSEC                         SSEC
}

// DeleteResult is the outcome for one key of DeleteObjects.
type DeleteResult struct {
	Key     string
	Code    string // "" on success, else an S3 error code
	Message string
}

// ListInput asks for one page of a listing.
type ListInput struct {
	Bucket            string
	Prefix            string
	Delimiter         string
	StartAfter        string
	ContinuationToken string
	MaxKeys           int32 // 0 means the provider's default (1000)
}

// ListPage is one page of a listing.
type ListPage struct {
	Objects               []ObjectInfo // Key, Size, ETag, LastModified, StorageClass
	CommonPrefixes        []string
	IsTruncated           bool
	NextContinuationToken string
}

// PartInput is one part of a multipart upload.
type PartInput struct {
	Bucket, Key, UploadID string
	PartNumber            int32
	Body                  io.ReadSeeker
	Size                  int64
	ContentMD5            string
	SSEC                  SSEC
}

// Part is an uploaded part.
type Part struct {
	PartNumber   int32
	ETag         string
	Size         int64
	LastModified time.Time
}

// CompleteInput finishes a multipart upload.
type CompleteInput struct {
	Bucket, Key, UploadID string
	Parts                 []Part // PartNumber and ETag, ascending
	SSEC                  SSEC
	// IfMatch and IfNoneMatch make the completion conditional.
	IfMatch, IfNoneMatch string
}

// ListPartsInput asks for the parts of an upload.
type ListPartsInput struct {
	Bucket, Key, UploadID string
	PartNumberMarker      int32
	MaxParts              int32
}

// PartsPage is one page of ListParts.
type PartsPage struct {
	Parts                []Part
	StorageClass         string
	IsTruncated          bool
	NextPartNumberMarker int32
}

// ListUploadsInput asks for the multipart uploads of a bucket.
type ListUploadsInput struct {
	Bucket         string
	Prefix         string
	Delimiter      string
	KeyMarker      string
	UploadIDMarker string
	MaxUploads     int32
}

// Upload is a multipart upload in progress.
type Upload struct {
	Key, UploadID string
	Initiated     time.Time
	StorageClass  string
}

// UploadsPage is one page of ListMultipartUploads.
type UploadsPage struct {
	Uploads            []Upload
	CommonPrefixes     []string
	IsTruncated        bool
	NextKeyMarker      string
	NextUploadIDMarker string
}

// Sentinel errors. Implementations wrap them with the operation and key;
// callers match them with errors.Is.
var (
	ErrNotFound           = errors.New("upstream: no such key")
	ErrNoSuchBucket       = errors.New("upstream: no such bucket")
	ErrNoSuchUpload       = errors.New("upstream: no such upload")
	ErrPreconditionFailed = errors.New("upstream: precondition failed")
	ErrNotModified        = errors.New("upstream: not modified")
	ErrInvalidRange       = errors.New("upstream: range not satisfiable")
	// ErrUnavailable means the provider could not be reached, did not
	// answer in time, cut its answer short, or answered with a server
	// error (5xx, then also an *APIError); the request may be retried
	// later.
	ErrUnavailable = errors.New("upstream: unavailable")
)

// APIError is a provider error that has no sentinel: the proxy passes Code and
// Status through to the client. Message never holds a secret.
type APIError struct {
	Op      string
	Code    string
	Message string
	Status  int
	Err     error
}

func (e *APIError) Error() string {
	return fmt.Sprintf("upstream: %s: %s (%d): %s", e.Op, e.Code, e.Status, e.Message)
}

func (e *APIError) Unwrap() error { return e.Err }
