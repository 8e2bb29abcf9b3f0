// Package sigv4 verifies AWS Signature Version 4 on incoming S3 requests,
// server side, and decodes the payload forms S3 clients send.
//
// # Flow
//
// The proxy calls [Verifier.Verify] before it reads a single body byte (so
// that "Expect: 100-continue" clients are answered before they upload). Verify
// accepts the two SigV4 forms S3 knows:
//
//   - the Authorization header ("AWS4-HMAC-SHA256 Credential=…,
//     SignedHeaders=…, Signature=…") with X-Amz-Date (or Date) and
//     X-Amz-Content-Sha256;
//   - presigned URLs (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
//     X-Amz-Expires, X-Amz-SignedHeaders, X-Amz-Signature in the query).
//
// and the two of Signature Version 2, which boto3, the aws CLI v1 and
// s3cmd still presign with ("Authorization: AWS AKID:sig", and
// AWSAccessKeyId, Expires, Signature in the query; see sigv2.go).
//
// It rebuilds the canonical request with S3's rules (the path is URI-encoded
// once and never normalised; the query is sorted after encoding; header
// values are trimmed; host and content-length come from the fields net/http
// moves them to), derives the signing key through a small bounded cache, and
// compares signatures in constant time. Like S3 it refuses x-amz-* headers
// that are not signed ([ErrHeadersNotSigned]): the proxy forwards them, so
// they must not be addable by whoever replays a request. Every failure is
// one of the ErrX sentinels, wrapped with context; no error text ever
// contains a secret or a signature computed with one. The caller's
// [SecretFunc] error (for example an unknown access key) is wrapped
// unchanged.
//
// The returned [Auth] says how the payload is protected ([PayloadMode]).
// [Auth.Body] turns the raw request body into the payload: it checks a signed
// SHA-256 at EOF, passes an unsigned payload through, or decodes aws-chunked
// framing (STREAMING-* modes), verifying the chain of chunk signatures and
// the trailer signature, and exposing trailing headers (checksums) through
// [ChunkedReader.Trailer] once the body has been read to EOF.
//
// # The streaming-body contract
//
// The body readers stream: they never buffer a whole chunk or body, so memory
// use does not depend on what the client declares. The price is that bytes
// reach the caller before the signature or hash covering them has been
// checked. A body is authentic only when Read has returned io.EOF; if Read
// returns any other error, everything read so far must be discarded. The
// proxy honours this by spooling the body to a local file and using the file
// (forwarding it upstream, committing it to the cache) only after a clean
// EOF. A caller that forwards bytes as they arrive must not use these readers.
//
// All readers are bounded: chunk header lines are at most 4 KiB, chunks at
// most [MaxChunkSize], the trailer section at most 16 KiB; they read only
// from the given body and never hang beyond it, and every error is sticky.
package sigv4
