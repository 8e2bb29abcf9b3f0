package sigv4

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Errors returned by Verify and by the body readers, always wrapped with
// context: match them with errors.Is. The comment names the S3 error code a
// caller would normally answer with.
var (
	// ErrMissingAuth: the request carries no signature at all; the caller
	// may treat it as anonymous (AccessDenied otherwise).
	ErrMissingAuth = errors.New("sigv4: no authentication in request")
	// ErrMalformedAuth: unparsable Authorization header or presign query,
	// bad credential scope, unknown algorithm, missing or invalid
	// X-Amz-Date / X-Amz-Content-Sha256 (AuthorizationHeaderMalformed,
	// AuthorizationQueryParametersError, InvalidArgument).
	ErrMalformedAuth = errors.New("sigv4: malformed authentication")
	// ErrUnsupported: a recognised scheme this package does not implement:
	// SigV4a (ECDSA), in the header, the query or the payload mode, and
	// aws-chunked payloads under Signature Version 2 (NotImplemented /
	// InvalidRequest).
	ErrUnsupported = errors.New("sigv4: unsupported signature scheme")
	// ErrSignatureMismatch: the signature is well formed but wrong
	// (SignatureDoesNotMatch). The error is a *SignatureError.
	ErrSignatureMismatch = errors.New("sigv4: signature does not match")
	// ErrTimeSkewed: the request time is too far from now, or a presigned
	// URL is not valid yet (RequestTimeTooSkewed / AccessDenied).
	ErrTimeSkewed = errors.New("sigv4: request time too skewed")
	// ErrExpired: the presigned URL has expired (AccessDenied).
	ErrExpired = errors.New("sigv4: presigned request expired")
	// ErrHeadersNotSigned: an x-amz-* header is present but not signed;
	// S3 refuses such requests (AccessDenied) because the proxy would
	// otherwise forward a header an attacker could have added.
	ErrHeadersNotSigned = errors.New("sigv4: x-amz-* header not signed")
	// ErrContentSHA256Mismatch: the body does not hash to the signed
	// X-Amz-Content-Sha256 (XAmzContentSHA256Mismatch).
	ErrContentSHA256Mismatch = errors.New("sigv4: body does not match x-amz-content-sha256")
	// ErrMalformedChunk: invalid aws-chunked framing or trailers
	// (IncompleteBody / InvalidRequest).
	ErrMalformedChunk = errors.New("sigv4: malformed aws-chunked body")
	// ErrChunkSignatureMismatch: a chunk or trailer signature is wrong or
	// missing (SignatureDoesNotMatch).
	ErrChunkSignatureMismatch = errors.New("sigv4: chunk signature does not match")
	// ErrIncompleteBody: the body ended before the final chunk or trailer
	// (IncompleteBody).
	ErrIncompleteBody = errors.New("sigv4: incomplete body")
	// ErrDecodedLengthMismatch: the decoded payload length differs from
	// X-Amz-Decoded-Content-Length (IncompleteBody / InvalidRequest).
	ErrDecodedLengthMismatch = errors.New("sigv4: decoded length does not match x-amz-decoded-content-length")
)

// SignatureError is returned (wrapping ErrSignatureMismatch) when a request
// signature does not match. It carries what S3 puts in its
// SignatureDoesNotMatch response so that clients can debug their signer;
// neither field depends on the secret.
type SignatureError struct {
	CanonicalRequest string
	StringToSign     string
}

func (e *SignatureError) Error() string { return ErrSignatureMismatch.Error() }

// Unwrap makes errors.Is(err, ErrSignatureMismatch) true.
func (e *SignatureError) Unwrap() error { return ErrSignatureMismatch }

// PayloadMode is how the request payload is protected, from
// X-Amz-Content-Sha256 (or its presigned default).
type PayloadMode int

// Payload modes. The zero value is invalid so that a forgotten assignment
// cannot pass for "unsigned".
const (
	PayloadSigned            PayloadMode = iota + 1 // hex SHA-256 of the body
	PayloadUnsigned                                 // UNSIGNED-PAYLOAD
	StreamingSigned                                 // STREAMING-AWS4-HMAC-SHA256-PAYLOAD
	StreamingUnsignedTrailer                        // STREAMING-UNSIGNED-PAYLOAD-TRAILER
	StreamingSignedTrailer                          // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
)

const (
	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingECDSA           = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
	streamingECDSATrailer    = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"
)

// String returns a short name for logs.
func (m PayloadMode) String() string {
	switch m {
	case PayloadSigned:
		return "signed"
	case PayloadUnsigned:
		return "unsigned"
	case StreamingSigned:
		return "streaming-signed"
	case StreamingUnsignedTrailer:
		return "streaming-unsigned-trailer"
	case StreamingSignedTrailer:
		return "streaming-signed-trailer"
	}
	return "PayloadMode(" + strconv.Itoa(int(m)) + ")"
}

// Streaming reports whether the body is aws-chunked.
func (m PayloadMode) Streaming() bool {
	return m == StreamingSigned || m == StreamingUnsignedTrailer || m == StreamingSignedTrailer
}

// parsePayload interprets an X-Amz-Content-Sha256 value. A value that is
// neither a known constant nor 64 hex digits is ErrMalformedAuth (S3 says
// InvalidArgument); the SigV4a streaming modes are ErrUnsupported.
func parsePayload(v string) (PayloadMode, error) {
	switch v {
	case unsignedPayload:
		return PayloadUnsigned, nil
	case streamingSigned:
		return StreamingSigned, nil
	case streamingUnsignedTrailer:
		return StreamingUnsignedTrailer, nil
	case streamingSignedTrailer:
		return StreamingSignedTrailer, nil
	case streamingECDSA, streamingECDSATrailer:
		return 0, fmt.Errorf("%w: x-amz-content-sha256 %s (SigV4a)", ErrUnsupported, v)
	}
	if len(v) == 64 && isHex(v) {
		return PayloadSigned, nil
	}
	return 0, fmt.Errorf("%w: x-amz-content-sha256 is neither a sha256 nor a known constant", ErrMalformedAuth)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// Auth is the result of a successful verification.
type Auth struct {
	AccessKeyID   string      // the authenticated principal
	Region        string      // from the credential scope
	Service       string      // from the credential scope; always "s3"
	Date          time.Time   // the signed request time (X-Amz-Date or Date)
	Presigned     bool        // authenticated by a presigned URL
	SignedHeaders []string    // lower-case, in the order signed
	Payload       PayloadMode // how the body is protected
	PayloadHash   string      // lower-case hex when Payload is PayloadSigned
	DecodedLength int64       // X-Amz-Decoded-Content-Length, -1 if absent
	Trailer       []string    // lower-case names from X-Amz-Trailer

	// chain holds the signing key and seed signature the chunk readers
	// need. It is a pointer so that printing an Auth (%+v, slog) shows an
	// address and never the derived key, which is a credential for a day.
	chain *chain
}

// chain is the state of a signature chain (seed, chunks, trailer).
type chain struct {
	key     [32]byte // derived signing key
	seed    [32]byte // the request signature
	scope   string   // yyyymmdd/region/service/aws4_request
	amzDate string   // ISO 8601 basic request time, as signed
}

// Body returns the payload reader for body according to a.Payload:
//
//   - PayloadUnsigned: body itself;
//   - PayloadSigned: a reader that returns ErrContentSHA256Mismatch instead
//     of io.EOF when the body does not hash to PayloadHash;
//   - streaming modes: a *ChunkedReader decoding aws-chunked framing.
//
// Bytes are returned before they are verified: see the package comment for
// the streaming-body contract. A nil body reads as empty.
func (a *Auth) Body(body io.Reader) (io.Reader, error) {
	if body == nil {
		body = http.NoBody
	}
	switch a.Payload {
	case PayloadUnsigned:
		return body, nil
	case PayloadSigned:
		var want [32]byte
		if _, err := hex.Decode(want[:], []byte(a.PayloadHash)); err != nil || len(a.PayloadHash) != 64 {
			return nil, fmt.Errorf("%w: payload hash %q", ErrMalformedAuth, a.PayloadHash)
		}
		return &hashReader{r: body, h: sha256.New(), want: want}, nil
	case StreamingSigned, StreamingSignedTrailer, StreamingUnsignedTrailer:
		if a.chain == nil && a.Payload != StreamingUnsignedTrailer {
			return nil, errors.New("sigv4: body: auth has no signature chain (not from Verify)")
		}
		return newChunkedReader(body, a), nil
	}
	return nil, fmt.Errorf("sigv4: body: invalid payload mode %v", a.Payload)
}

// hashReader verifies a signed payload: it hashes what passes through and
// checks the digest when the underlying reader reports EOF, so that io.EOF
// is never returned for a body that does not match.
type hashReader struct {
	r    io.Reader
	h    hash.Hash
	want [32]byte
	err  error // sticky
}

func (hr *hashReader) Read(p []byte) (int, error) {
	if hr.err != nil {
		return 0, hr.err
	}
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	switch {
	case err == io.EOF:
		var got [32]byte
		if subtle.ConstantTimeCompare(hr.h.Sum(got[:0]), hr.want[:]) != 1 {
			err = ErrContentSHA256Mismatch
		}
		hr.err = err
	case err != nil:
		hr.err = err
	}
	return n, err
}
