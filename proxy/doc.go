// Package proxy is s3edge's S3 front end: an http.Handler that speaks S3 the
// way real clients do and serves their requests from the configured upstreams.
//
// Every request goes through one pipeline (Server.ServeHTTP):
//
//  1. parse: bucket, key and operation from the path (path style) or the Host
//     (virtual-host style under a configured base domain); keys are the bytes
//     of the decoded path, never cleaned and never used as file paths;
//  2. authenticate: AWS Signature V4 (header or presigned query, see
//     package sigv4); an unsigned GET or HEAD is anonymous;
//  3. authorize: the handler checks the principal's grants (package policy)
//     for the action and key it is about to touch;
//  4. serve: one handler per S3 operation; the virtual bucket is mapped to an
//     upstream bucket and key prefix;
//  5. errors: a handler returns an error and toAPIError (errors.go) alone
//     picks the S3 code and HTTP status.
//
// Invariants:
//   - A write reaches the upstream only after its whole payload was spooled to
//     disk and every signature, hash and checksum the client sent was verified
//     (payload.go); the upstream gets a plain, seekable, correctly sized body
//     and never aws-chunked framing.
//   - The client gets a success status for a write only after the upstream
//     acknowledged it.
//   - Once a response header is out, a failure aborts the connection
//     (http.ErrAbortHandler): a client never takes a short body for a whole
//     one.
//   - No secret (local or upstream, SSE-C key) is logged or returned.
package proxy
