package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// translate turns an error of the SDK into this package's errors. It is the
// only place that inspects SDK error types. op names the operation ("get",
// "list"...); key is "" for bucket-level operations, which makes a bare 404
// mean ErrNoSuchBucket.
//
// In order:
//   - context.Canceled: wrapped as is (the caller went away);
//   - a provider answer that has a sentinel (typed SDK error, then the S3
//     error code, then the HTTP status: 304, 412, 416, bare 404): the
//     sentinel;
//   - any other provider answer: *APIError with the provider's code, status
//     and message; a 5xx one also matches ErrUnavailable;
//   - no answer (deadline, dial failure, refused or reset connection,
//     timeout, truncated response): ErrUnavailable with the cause;
//   - anything else (a bad request body, say): wrapped as is.
//
// The result keeps the SDK error in its chain only where it helps a log
// (ErrUnavailable, *APIError); SDK messages carry the request URL and IDs
// but never the credentials or the signature.
func translate(op, bucket, key string, err error) error {
	if err == nil {
		return nil
	}
	where := bucket
	if key != "" {
		where = bucket + "/" + key
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("upstream: %s %s: %w", op, where, err)
	}

	var apiErr smithy.APIError
	hasAPI := errors.As(err, &apiErr)
	status := 0
	var withStatus interface{ HTTPStatusCode() int }
	if errors.As(err, &withStatus) {
		status = withStatus.HTTPStatusCode()
	}
	if hasAPI || status != 0 {
		if s := sentinel(err, apiErr, status, key); s != nil {
			if v := validatorsOf(err); s == ErrNotModified && v != nil {
				return fmt.Errorf("upstream: %s %s: %w: %w", op, where, s, v)
			}
			return fmt.Errorf("upstream: %s %s: %w", op, where, s)
		}
		e := &APIError{Op: op + " " + where, Status: status, Err: err}
		if hasAPI {
			e.Code, e.Message = apiErr.ErrorCode(), apiErr.ErrorMessage()
		}
		if e.Code == "" {
			// As the SDK does for an answer without a body.
			e.Code = strings.ReplaceAll(http.StatusText(status), " ", "")
		}
		if status >= 500 {
			e.Err = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return e
	}

	if unreachable(err) {
		return fmt.Errorf("upstream: %s %s: %w: %w", op, where, ErrUnavailable, err)
	}
	return fmt.Errorf("upstream: %s %s: %w", op, where, err)
}

// Validators are the ETag and Last-Modified a provider's 304 carried: the
// client's 304 must carry them too (RFC 9110, 15.4.5). An error of Get or
// Head matching ErrNotModified holds them when the provider sent them.
type Validators struct {
	ETag         string
	LastModified time.Time
}

func (v *Validators) Error() string { return "validators " + v.ETag }

func validatorsOf(err error) *Validators {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil || re.Response.Response == nil {
		return nil
	}
	h := re.Response.Header
	v := &Validators{ETag: h.Get("ETag")}
	v.LastModified, _ = http.ParseTime(h.Get("Last-Modified"))
	if v.ETag == "" && v.LastModified.IsZero() {
		return nil
	}
	return v
}

// sentinel returns the sentinel error for a provider answer, or nil.
func sentinel(err error, apiErr smithy.APIError, status int, key string) error {
	var (
		noSuchKey    *types.NoSuchKey
		notFound     *types.NotFound
		noSuchBucket *types.NoSuchBucket
		noSuchUpload *types.NoSuchUpload
	)
	switch {
	case errors.As(err, &noSuchKey):
		return ErrNotFound
	case errors.As(err, &noSuchBucket):
		return ErrNoSuchBucket
	case errors.As(err, &noSuchUpload):
		return ErrNoSuchUpload
	case errors.As(err, &notFound):
		return notFoundFor(key)
	}
	code := ""
	if apiErr != nil {
		code = apiErr.ErrorCode()
	}
	switch code {
	case "NoSuchKey":
		return ErrNotFound
	case "NoSuchBucket":
		return ErrNoSuchBucket
	case "NoSuchUpload":
		return ErrNoSuchUpload
	case "PreconditionFailed":
		return ErrPreconditionFailed
	case "NotModified":
		return ErrNotModified
	case "InvalidRange", "RequestedRangeNotSatisfiable":
		return ErrInvalidRange
	}
	switch status {
	case http.StatusNotModified:
		return ErrNotModified
	case http.StatusPreconditionFailed:
		return ErrPreconditionFailed
	case http.StatusRequestedRangeNotSatisfiable:
		return ErrInvalidRange
	case http.StatusNotFound:
		// A HEAD answer has no body, so no code: the SDK derives "NotFound"
		// from the status. Other 404 codes (NoSuchVersion...) pass through.
		if code == "" || code == "NotFound" {
			return notFoundFor(key)
		}
	}
	return nil
}

func notFoundFor(key string) error {
	if key == "" {
		return ErrNoSuchBucket
	}
	return ErrNotFound
}

// unreachable reports whether err means that no answer came from the
// provider: the request could not be sent, or the response was cut.
func unreachable(err error) bool {
	var (
		sendErr *smithyhttp.RequestSendError
		netErr  net.Error
	)
	return errors.As(err, &sendErr) ||
		errors.As(err, &netErr) ||
		errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// body is the Body of a GET. It turns a cut response into an error that
// matches ErrUnavailable and io.ErrUnexpectedEOF, never a silent io.EOF:
// net/http already reports a body shorter than its Content-Length, and
// body checks it again against the length the response announced.
type body struct {
	rc        io.ReadCloser
	remaining int64 // bytes still expected; -1 when unknown
	where     string
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if b.remaining >= 0 {
		b.remaining -= int64(n)
		switch {
		case b.remaining < 0:
			return n, fmt.Errorf("upstream: get %s: body: %w: longer than its Content-Length", b.where, ErrUnavailable)
		case err == io.EOF && b.remaining > 0:
			err = io.ErrUnexpectedEOF
		}
	}
	if err == nil || err == io.EOF {
		return n, err
	}
	if errors.Is(err, context.Canceled) {
		return n, fmt.Errorf("upstream: get %s: body: %w", b.where, err)
	}
	return n, fmt.Errorf("upstream: get %s: body: %w: %w", b.where, ErrUnavailable, err)
}

func (b *body) Close() error { return b.rc.Close() }
