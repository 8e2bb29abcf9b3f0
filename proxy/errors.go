package proxy

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"github.com/s3edge/s3edge/cache"
	"log/slog"
	"net"
	"net/http"
	"syscall"

	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/proxy/checksum"
	"github.com/s3edge/s3edge/proxy/sigv4"
	"github.com/s3edge/s3edge/upstream"
)

// APIError is an S3 error response: the only error shape that reaches the
// wire. Handlers create them for input they reject; toAPIError makes them from
// the errors of lower layers.
type APIError struct {
	Code    string
	Status  int
	Message string
	// RetryAfter, when non-zero, is sent as Retry-After (seconds).
	RetryAfter int
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// withMessage returns a copy of e with a more specific message.
func (e *APIError) withMessage(format string, args ...any) *APIError {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// The S3 errors s3edge sends. Messages follow AWS's wording where clients or
// operators know it.
var (
	errAccessDenied         = &APIError{"AccessDenied", 403, "Access Denied", 0}
	errAuthHeaderMalformed  = &APIError{"AuthorizationHeaderMalformed", 400, "The authorization header is malformed.", 0}
	errInvalidAccessKey     = &APIError{"InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records.", 0}
	errSignatureMismatch    = &APIError{"SignatureDoesNotMatch", 403, "The request signature we calculated does not match the signature you provided. Check your key and signing method.", 0}
	errTimeSkewed           = &APIError{"RequestTimeTooSkewed", 403, "The difference between the request time and the current time is too large.", 0}
	errExpired              = &APIError{"AccessDenied", 403, "Request has expired", 0}
	errContentSHA256        = &APIError{"XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.", 0}
	errBadDigest            = &APIError{"BadDigest", 400, "The Content-MD5 or checksum you specified did not match what we received.", 0}
	errInvalidDigest        = &APIError{"InvalidDigest", 400, "The Content-MD5 or checksum you specified is not valid.", 0}
	errIncompleteBody       = &APIError{"IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header.", 0}
	errInvalidRequest       = &APIError{"InvalidRequest", 400, "Invalid Request", 0}
	errInvalidArgument      = &APIError{"InvalidArgument", 400, "Invalid Argument", 0}
	errMissingContentLength = &APIError{"MissingContentLength", 411, "You must provide the Content-Length HTTP header.", 0}
	errEntityTooLarge       = &APIError{"EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.", 0}
	errEntityTooSmall       = &APIError{"EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size.", 0}
	errKeyTooLong           = &APIError{"KeyTooLongError", 400, "Your key is too long", 0}
	errMalformedXML         = &APIError{"MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema.", 0}
	errInvalidPart          = &APIError{"InvalidPart", 400, "One or more of the specified parts could not be found.", 0}
	errInvalidPartOrder     = &APIError{"InvalidPartOrder", 400, "The list of parts was not in ascending order. Parts must be ordered by part number.", 0}
	errMetadataTooLarge     = &APIError{"MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size.", 0}
	errHeaderTooLarge       = &APIError{"RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size.", 0}
	errNoSuchKey            = &APIError{"NoSuchKey", 404, "The specified key does not exist.", 0}
	errNoSuchBucket         = &APIError{"NoSuchBucket", 404, "The specified bucket does not exist", 0}
	errNoSuchUpload         = &APIError{"NoSuchUpload", 404, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", 0}
	errInvalidBucketName    = &APIError{"InvalidBucketName", 400, "The specified bucket is not valid.", 0}
	errInvalidRange         = &APIError{"InvalidRange", 416, "The requested range is not satisfiable", 0}
	errPrecondition         = &APIError{"PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold", 0}
	errNotModified          = &APIError{"NotModified", 304, "Not Modified", 0}
	errMethodNotAllowed     = &APIError{"MethodNotAllowed", 405, "The specified method is not allowed against this resource.", 0}
	errNotImplemented       = &APIError{"NotImplemented", 501, "A header or query you provided implies functionality that is not implemented.", 0}
	errServiceUnavailable   = &APIError{"ServiceUnavailable", 503, "The upstream storage is unavailable. Please retry.", 5}
	errUpstreamDenied       = &APIError{"AccessDenied", 403, "Access Denied by the upstream storage provider.", 0}
	errSlowDown             = &APIError{"SlowDown", 503, "Please reduce your request rate.", 1}
	errInternal             = &APIError{"InternalError", 500, "We encountered an internal error. Please try again.", 0}
	errNoSuchBucketPolicy   = &APIError{"NoSuchBucketPolicy", 404, "The bucket policy does not exist", 0}
	errNoSuchCORS           = &APIError{"NoSuchCORSConfiguration", 404, "The CORS configuration does not exist", 0}
	errNoSuchLifecycle      = &APIError{"NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist", 0}
	errNoSuchTagSet         = &APIError{"NoSuchTagSet", 404, "The TagSet does not exist", 0}
	errNoSuchWebsite        = &APIError{"NoSuchWebsiteConfiguration", 404, "The specified bucket does not have a website configuration", 0}
	errNoEncryption         = &APIError{"ServerSideEncryptionConfigurationNotFoundError", 404, "The server side encryption configuration was not found", 0}
	errNoObjectLock         = &APIError{"ObjectLockConfigurationNotFoundError", 404, "Object Lock configuration does not exist for this bucket", 0}
)

// errClientGone marks a request whose client went away: nothing is written.
var errClientGone = errors.New("proxy: client closed the connection")

// toAPIError is the only function that maps errors to S3 codes. It is ordered
// from the most to the least specific.
func toAPIError(err error) *APIError {
	var api *APIError
	if errors.As(err, &api) {
		return api
	}
	switch {
	case errors.Is(err, sigv4.ErrMissingAuth):
		return errAccessDenied
	case errors.Is(err, sigv4.ErrHeadersNotSigned):
		return errAccessDenied.withMessage("There were headers present in the request which were not signed")
	case errors.Is(err, sigv4.ErrExpired):
		return errExpired
	case errors.Is(err, sigv4.ErrTimeSkewed):
		return errTimeSkewed
	case errors.Is(err, sigv4.ErrSignatureMismatch):
		return errSignatureMismatch
	case errors.Is(err, sigv4.ErrContentSHA256Mismatch):
		return errContentSHA256
	case errors.Is(err, sigv4.ErrChunkSignatureMismatch):
		return errSignatureMismatch.withMessage("A chunk signature of the aws-chunked body does not match.")
	case errors.Is(err, sigv4.ErrMalformedChunk), errors.Is(err, sigv4.ErrDecodedLengthMismatch):
		return errIncompleteBody.withMessage("The aws-chunked body is malformed.")
	case errors.Is(err, sigv4.ErrIncompleteBody):
		return errIncompleteBody
	case errors.Is(err, sigv4.ErrUnsupported):
		return errNotImplemented.withMessage("This signing algorithm or payload mode is not supported.")
	case errors.Is(err, sigv4.ErrMalformedAuth):
		return errAuthHeaderMalformed
	case errors.Is(err, checksum.ErrBadDigest):
		return errBadDigest
	case errors.Is(err, checksum.ErrInvalidDigest):
		return errInvalidDigest
	case errors.Is(err, policy.ErrUnknownAccessKey):
		return errInvalidAccessKey
	case errors.Is(err, policy.ErrAccessDenied):
		return errAccessDenied
	case errors.Is(err, policy.ErrNoSuchBucket):
		return errNoSuchBucket
	case errors.Is(err, upstream.ErrNotFound):
		return errNoSuchKey
	case errors.Is(err, upstream.ErrNoSuchBucket):
		// The virtual bucket exists; its upstream bucket does not. That is
		// the operator's configuration, but the client's answer is the same.
		return errNoSuchBucket
	case errors.Is(err, upstream.ErrNoSuchUpload):
		return errNoSuchUpload
	case errors.Is(err, upstream.ErrPreconditionFailed):
		return errPrecondition
	case errors.Is(err, upstream.ErrNotModified):
		return errNotModified
	case errors.Is(err, upstream.ErrInvalidRange):
		return errInvalidRange
	case errors.Is(err, cache.ErrInvalidRange):
		return errInvalidRange
	case errors.Is(err, cache.ErrChanged), errors.Is(err, cache.ErrClosed):
		return errServiceUnavailable.withMessage("The object changed or the cache is closing; retry.")
	case errors.Is(err, errNoSpool), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return errServiceUnavailable.withMessage("No space left to spool the upload; retry later.")
	case errors.Is(err, upstream.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return errServiceUnavailable
	case errors.Is(err, syscall.ECONNREFUSED):
		return errServiceUnavailable
	}
	var up *upstream.APIError
	if errors.As(err, &up) {
		if up.Status == http.StatusUnauthorized || up.Status == http.StatusForbidden {
			// The provider refused: s3edge's credentials or policy at
			// the provider lack something (AWS also answers 403 for a
			// missing key when s3:ListBucket is not granted). Say so,
			// without the provider's message, which may name upstream
			// buckets; 403 keeps SDKs from retrying in a loop.
			return errUpstreamDenied
		}
		st := up.Status
		if st < 400 || st > 599 {
			st = http.StatusBadGateway
		}
		return &APIError{Code: up.Code, Status: st, Message: up.Message}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errServiceUnavailable
	}
	return errInternal
}

// errorBody is the XML <Error> document.
type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}

// writeError sends err to the client as an S3 error. When the response has
// already started, the connection is aborted instead: a client must never take
// a truncated body for a complete one.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	if rq.wroteHeader {
		panic(http.ErrAbortHandler)
	}
	if errors.Is(err, errClientGone) || errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		s.log.Debug("client gone", "request_id", rq.id, "op", rq.op, "err", err)
		rq.status = 499
		return
	}
	api := toAPIError(err)
	rq.status = api.Status
	rq.errCode = api.Code
	lvl := slog.LevelDebug
	if api.Status >= 500 {
		lvl = slog.LevelError
	}
	s.log.Log(r.Context(), lvl, "request failed", "request_id", rq.id, "op", rq.op,
		"bucket", rq.bucket, "code", api.Code, "status", api.Status, "err", err)

	h := w.Header()
	for k := range h {
		// Drop object headers a handler may have set before failing; a
		// 304 keeps the validators, as HTTP asks.
		switch k {
		case "X-Amz-Request-Id", "Server":
		case "Etag", "Last-Modified", "Cache-Control", "Expires":
			if api.Status != http.StatusNotModified {
				delete(h, k)
			}
		case "Content-Range": // a 416's "bytes */size"
			if api.Status != http.StatusRequestedRangeNotSatisfiable {
				delete(h, k)
			}
		default:
			delete(h, k)
		}
	}
	if api.RetryAfter > 0 {
		h.Set("Retry-After", fmt.Sprint(api.RetryAfter))
	}
	if api.Status == http.StatusNotModified || r.Method == http.MethodHead {
		w.WriteHeader(api.Status)
		return
	}
	_ = writeXML(w, api.Status, errorBody{Code: api.Code, Message: api.Message, Resource: r.URL.Path, RequestID: rq.id})
}
