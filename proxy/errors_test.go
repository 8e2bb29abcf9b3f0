package proxy

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/proxy/checksum"
	"github.com/s3edge/s3edge/proxy/sigv4"
	"github.com/s3edge/s3edge/upstream"
)

func TestToAPIError(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("layer: %w", fmt.Errorf("inner: %w", err)) }
	tests := []struct {
		err    error
		code   string
		status int
	}{
		{errKeyTooLong, "KeyTooLongError", 400},
		{sigv4.ErrMissingAuth, "AccessDenied", 403},
		{sigv4.ErrMalformedAuth, "AuthorizationHeaderMalformed", 400},
		{sigv4.ErrSignatureMismatch, "SignatureDoesNotMatch", 403},
		{sigv4.ErrTimeSkewed, "RequestTimeTooSkewed", 403},
		{sigv4.ErrExpired, "AccessDenied", 403},
		{sigv4.ErrHeadersNotSigned, "AccessDenied", 403},
		{sigv4.ErrUnsupported, "NotImplemented", 501},
		{&upstream.APIError{Code: "AccessDenied", Status: 403}, "AccessDenied", 403},
		{sigv4.ErrContentSHA256Mismatch, "XAmzContentSHA256Mismatch", 400},
		{sigv4.ErrChunkSignatureMismatch, "SignatureDoesNotMatch", 403},
		{sigv4.ErrMalformedChunk, "IncompleteBody", 400},
		{checksum.ErrBadDigest, "BadDigest", 400},
		{checksum.ErrInvalidDigest, "InvalidDigest", 400},
		{policy.ErrUnknownAccessKey, "InvalidAccessKeyId", 403},
		{policy.ErrAccessDenied, "AccessDenied", 403},
		{policy.ErrNoSuchBucket, "NoSuchBucket", 404},
		{upstream.ErrNotFound, "NoSuchKey", 404},
		{upstream.ErrNoSuchBucket, "NoSuchBucket", 404},
		{upstream.ErrNoSuchUpload, "NoSuchUpload", 404},
		{upstream.ErrPreconditionFailed, "PreconditionFailed", 412},
		{upstream.ErrNotModified, "NotModified", 304},
		{upstream.ErrInvalidRange, "InvalidRange", 416},
		{upstream.ErrUnavailable, "ServiceUnavailable", 503},
		{context.DeadlineExceeded, "ServiceUnavailable", 503},
		{&upstream.APIError{Code: "InvalidStorageClass", Status: 400, Message: "nope"}, "InvalidStorageClass", 400},
		{&upstream.APIError{Code: "Weird", Status: 200}, "Weird", 502},
		{errors.New("boom"), "InternalError", 500},
	}
	for _, tt := range tests {
		for _, err := range []error{tt.err, wrap(tt.err)} {
			got := toAPIError(err)
			if got.Code != tt.code || got.Status != tt.status {
				t.Errorf("toAPIError(%v) = %s %d, want %s %d", err, got.Code, got.Status, tt.code, tt.status)
			}
		}
	}
}
