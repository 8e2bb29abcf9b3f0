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
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// sdkError builds the chain the SDK returns for a provider answer: an
// OperationError around an awshttp.ResponseError around the API error.
func sdkError(status int, apiErr error) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      apiErr,
		},
		RequestID: "req-1",
	}}
}

func generic(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: code + " message"}
}

func TestTranslate(t *testing.T) {
	sendErr := func(err error) error {
		return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &smithyhttp.RequestSendError{Err: err}}
	}
	tests := []struct {
		name string
		key  string
		err  error
		want []error // every one must match with errors.Is
		api  *APIError
	}{
		{"typed NoSuchKey", "k", sdkError(404, &types.NoSuchKey{}), []error{ErrNotFound}, nil},
		{"typed NotFound on a key", "k", sdkError(404, &types.NotFound{}), []error{ErrNotFound}, nil},
		{"typed NotFound on a bucket", "", sdkError(404, &types.NotFound{}), []error{ErrNoSuchBucket}, nil},
		{"typed NoSuchBucket", "k", sdkError(404, &types.NoSuchBucket{}), []error{ErrNoSuchBucket}, nil},
		{"typed NoSuchUpload", "k", sdkError(404, &types.NoSuchUpload{}), []error{ErrNoSuchUpload}, nil},
		{"code NoSuchKey", "k", sdkError(404, generic("NoSuchKey")), []error{ErrNotFound}, nil},
		{"code NoSuchBucket", "k", sdkError(404, generic("NoSuchBucket")), []error{ErrNoSuchBucket}, nil},
		{"code NoSuchUpload", "k", sdkError(404, generic("NoSuchUpload")), []error{ErrNoSuchUpload}, nil},
		{"code PreconditionFailed", "k", sdkError(412, generic("PreconditionFailed")), []error{ErrPreconditionFailed}, nil},
		{"status 412 no code", "k", sdkError(412, generic("")), []error{ErrPreconditionFailed}, nil},
		{"code NotModified", "k", sdkError(304, generic("NotModified")), []error{ErrNotModified}, nil},
		{"status 304 no code", "k", sdkError(304, generic("")), []error{ErrNotModified}, nil},
		{"code InvalidRange", "k", sdkError(416, generic("InvalidRange")), []error{ErrInvalidRange}, nil},
		{"status 416", "k", sdkError(416, generic("RequestedRangeNotSatisfiable")), []error{ErrInvalidRange}, nil},
		{"bare 404 on a key", "k", sdkError(404, generic("")), []error{ErrNotFound}, nil},
		{"bare 404 on a bucket", "", sdkError(404, generic("NotFound")), []error{ErrNoSuchBucket}, nil},
		{"404 NoSuchVersion", "k", sdkError(404, generic("NoSuchVersion")), nil,
			&APIError{Op: "get b/k", Code: "NoSuchVersion", Status: 404, Message: "NoSuchVersion message"}},
		{"403 AccessDenied", "k", sdkError(403, generic("AccessDenied")), nil,
			&APIError{Op: "get b/k", Code: "AccessDenied", Status: 403, Message: "AccessDenied message"}},
		{"500 InternalError", "k", sdkError(500, generic("InternalError")), []error{ErrUnavailable},
			&APIError{Op: "get b/k", Code: "InternalError", Status: 500, Message: "InternalError message"}},
		{"503 SlowDown", "", sdkError(503, generic("SlowDown")), []error{ErrUnavailable},
			&APIError{Op: "get b", Code: "SlowDown", Status: 503, Message: "SlowDown message"}},
		{"status without API error", "k", sdkError(502, errors.New("bad gateway")), []error{ErrUnavailable},
			&APIError{Op: "get b/k", Code: "BadGateway", Status: 502}},
		{"canceled", "k", &smithy.CanceledError{Err: context.Canceled}, []error{context.Canceled}, nil},
		{"deadline", "k", &smithy.CanceledError{Err: context.DeadlineExceeded}, []error{ErrUnavailable, context.DeadlineExceeded}, nil},
		{"connection refused", "k", sendErr(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), []error{ErrUnavailable, syscall.ECONNREFUSED}, nil},
		{"dns failure", "k", sendErr(&net.DNSError{Err: "no such host", Name: "s3.invalid"}), []error{ErrUnavailable}, nil},
		{"reset while reading an answer", "k", &smithy.DeserializationError{Err: fmt.Errorf("read: %w", syscall.ECONNRESET)}, []error{ErrUnavailable, syscall.ECONNRESET}, nil},
		{"truncated answer", "k", &smithy.DeserializationError{Err: io.ErrUnexpectedEOF}, []error{ErrUnavailable}, nil},
		{"other", "k", errors.New("failed to seek body"), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Wrapped once more, as a caller would: the chain must hold.
			got := fmt.Errorf("caller: %w", translate("get", "b", tt.key, tt.err))
			for _, w := range tt.want {
				if !errors.Is(got, w) {
					t.Errorf("translate(%v) = %v, want it to match %v", tt.err, got, w)
				}
			}
			for _, s := range []error{ErrNotFound, ErrNoSuchBucket, ErrNoSuchUpload, ErrPreconditionFailed, ErrNotModified, ErrInvalidRange, ErrUnavailable} {
				if errors.Is(got, s) && !containsErr(tt.want, s) {
					t.Errorf("translate(%v) = %v, which also matches %v", tt.err, got, s)
				}
			}
			var apiErr *APIError
			switch {
			case tt.api == nil && errors.As(got, &apiErr):
				t.Errorf("translate(%v) = %v, want no *APIError", tt.err, got)
			case tt.api != nil && !errors.As(got, &apiErr):
				t.Errorf("translate(%v) = %v, want an *APIError", tt.err, got)
			case tt.api != nil && (apiErr.Op != tt.api.Op || apiErr.Code != tt.api.Code || apiErr.Status != tt.api.Status || apiErr.Message != tt.api.Message):
				t.Errorf("translate(%v) = %+v, want %+v", tt.err, apiErr, tt.api)
			}
			if msg := got.Error(); !strings.HasPrefix(msg, "caller: upstream: get b") {
				t.Errorf("message %q does not name the operation and the object", msg)
			}
		})
	}
	if err := translate("get", "b", "k", nil); err != nil {
		t.Errorf("translate(nil) = %v, want nil", err)
	}
	if got, want := translate("get", "b", "k", sdkError(404, &types.NoSuchKey{})).Error(), "upstream: get b/k: upstream: no such key"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func containsErr(errs []error, e error) bool {
	for _, x := range errs {
		if x == e {
			return true
		}
	}
	return false
}

// shortReader yields data then err.
type shortReader struct {
	data []byte
	err  error
}

func (r *shortReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func (r *shortReader) Close() error { return nil }

func TestBody(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		err       error
		remaining int64
		wantErr   []error // nil: a clean io.EOF
	}{
		{"complete", "hello", io.EOF, 5, nil},
		{"unknown length", "hello", io.EOF, -1, nil},
		{"short", "hel", io.EOF, 5, []error{ErrUnavailable, io.ErrUnexpectedEOF}},
		{"long", "hello!", io.EOF, 5, []error{ErrUnavailable}},
		{"reset", "he", syscall.ECONNRESET, 5, []error{ErrUnavailable, syscall.ECONNRESET}},
		{"canceled", "he", context.Canceled, 5, []error{context.Canceled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &body{rc: &shortReader{data: []byte(tt.data), err: tt.err}, remaining: tt.remaining, where: "b/k"}
			_, err := io.ReadAll(b)
			if tt.wantErr == nil {
				if err != nil {
					t.Errorf("ReadAll = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("ReadAll = nil, want an error")
			}
			for _, w := range tt.wantErr {
				if !errors.Is(err, w) {
					t.Errorf("ReadAll = %v, want it to match %v", err, w)
				}
			}
		})
	}
}

// TestTranslateKeepsValidators: a provider's 304 keeps its ETag and
// Last-Modified in the error, for the client's 304.
func TestTranslateKeepsValidators(t *testing.T) {
	err := sdkError(304, generic("NotModified"))
	err.(*smithy.OperationError).Err.(*awshttp.ResponseError).Response.Header = http.Header{
		"Etag": {`"abc"`}, "Last-Modified": {"Mon, 02 Jan 2006 15:04:05 GMT"}}
	got := translate("get", "b", "k", err)
	var v *Validators
	if !errors.Is(got, ErrNotModified) || !errors.As(got, &v) {
		t.Fatalf("translate = %v, want ErrNotModified with its validators", got)
	}
	if v.ETag != `"abc"` || !v.LastModified.Equal(time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)) {
		t.Errorf("validators = %+v", v)
	}
	if got := translate("get", "b", "k", sdkError(304, generic(""))); errors.As(got, &v) {
		t.Errorf("a 304 without validators gave %+v", v)
	}
}
