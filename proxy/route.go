package proxy

import (
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/s3edge/s3edge/policy"
)

// maxKeyLen is S3's limit on key length in bytes.
const maxKeyLen = 1024

// route is what the request line and Host say: which bucket and key, which
// operation.
type route struct {
	bucket string
	key    string
	op     string // S3 operation name, e.g. "GetObject"
}

// canned answers for bucket subresources that s3edge does not manage: S3's
// answer for a bucket that has none of them. s3cmd's info and cp read these.
var bucketSubresourceGets = [][2]string{
	{"location", "GetBucketLocation"},
	{"acl", "GetBucketAcl"},
	{"policy", "GetBucketPolicy"},
	{"policyStatus", "GetBucketPolicyStatus"},
	{"cors", "GetBucketCors"},
	{"lifecycle", "GetBucketLifecycleConfiguration"},
	{"versioning", "GetBucketVersioning"},
	{"tagging", "GetBucketTagging"},
	{"website", "GetBucketWebsite"},
	{"encryption", "GetBucketEncryption"},
	{"object-lock", "GetObjectLockConfiguration"},
	{"logging", "GetBucketLogging"},
	{"requestPayment", "GetBucketRequestPayment"},
	{"accelerate", "GetBucketAccelerateConfiguration"},
	{"notification", "GetBucketNotificationConfiguration"},
	{"uploads", "ListMultipartUploads"},
	{"versions", "ListObjectVersions"},
	{"replication", "GetBucketReplication"},
	{"ownershipControls", "GetBucketOwnershipControls"},
	{"publicAccessBlock", "GetPublicAccessBlock"},
	{"analytics", "GetBucketAnalyticsConfiguration"},
	{"inventory", "GetBucketInventoryConfiguration"},
	{"metrics", "GetBucketMetricsConfiguration"},
	{"intelligent-tiering", "GetBucketIntelligentTieringConfiguration"},
}

// objectSubresources name the operations on an object's subresources that
// s3edge answers or refuses by name.
var objectSubresources = map[string][][2]string{
	http.MethodGet:    {{"acl", "GetObjectAcl"}, {"tagging", "GetObjectTagging"}, {"attributes", "GetObjectAttributes"}, {"torrent", "GetObjectTorrent"}, {"retention", "GetObjectRetention"}, {"legal-hold", "GetObjectLegalHold"}},
	http.MethodPut:    {{"acl", "PutObjectAcl"}, {"tagging", "PutObjectTagging"}, {"retention", "PutObjectRetention"}, {"legal-hold", "PutObjectLegalHold"}},
	http.MethodDelete: {{"tagging", "DeleteObjectTagging"}},
	http.MethodPost:   {{"restore", "RestoreObject"}, {"select", "SelectObjectContent"}},
}

// parseRoute finds bucket, key and operation, path-style or, when the Host is
// a subdomain of one of baseDomains, virtual-host style; query is r's parsed
// query. Keys are the decoded path bytes: never cleaned, never a file path.
func parseRoute(r *http.Request, query url.Values, baseDomains []string) (route, error) {
	var rt route
	path := r.URL.Path
	if !strings.HasPrefix(path, "/") {
		return rt, errInvalidRequest.withMessage("The request path must start with '/'.")
	}
	if b, ok := hostBucket(r.Host, baseDomains); ok {
		rt.bucket = b
		rt.key = path[1:]
	} else {
		rest := path[1:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rt.bucket, rt.key = rest[:i], rest[i+1:]
		} else {
			rt.bucket = rest
		}
	}
	if rt.bucket != "" && policy.ValidBucketName(rt.bucket) != nil {
		return rt, errInvalidBucketName
	}
	if err := validKey(rt.key); err != nil {
		return rt, err
	}
	rt.op = operation(r.Method, query, r.Header, rt.bucket, rt.key)
	return rt, nil
}

// validKey checks a key, or a prefix or marker that becomes part of one,
// before it is mapped to an upstream key. Keys are opaque to S3, but "." and
// ".." segments are refused: a provider (or a proxy in front of one) that
// resolves dot segments would otherwise let a key step out of its bucket's
// prefix and its grant. No S3 client needs them; Synapse never makes them.
func validKey(key string) error {
	if len(key) > maxKeyLen {
		return errKeyTooLong
	}
	if !utf8.ValidString(key) {
		return errInvalidArgument.withMessage("Object keys must be valid UTF-8.")
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return errInvalidArgument.withMessage("Object keys with '.' or '..' segments are not accepted.")
		}
	}
	return nil
}

// hostBucket returns the bucket named by a virtual-host style Host header.
func hostBucket(host string, baseDomains []string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, d := range baseDomains {
		if b, ok := strings.CutSuffix(host, "."+d); ok && b != "" {
			return b, true
		}
	}
	return "", false
}

// operation names the S3 operation of a request; "" means none matches.
func operation(method string, q url.Values, h http.Header, bucket, key string) string {
	has := func(k string) bool { _, ok := q[k]; return ok }
	switch {
	case bucket == "":
		if method == http.MethodGet || method == http.MethodHead {
			return "ListBuckets"
		}
		return ""
	case key == "":
		switch method {
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodGet:
			if q.Get("list-type") == "2" {
				return "ListObjectsV2"
			}
			for _, so := range bucketSubresourceGets {
				if has(so[0]) {
					return so[1]
				}
			}
			return "ListObjects"
		case http.MethodPut:
			if sub := firstQueryKey(q); sub != "" {
				return "PutBucket" + sub
			}
			return "CreateBucket"
		case http.MethodDelete:
			return "DeleteBucket" + firstQueryKey(q)
		case http.MethodPost:
			if has("delete") {
				return "DeleteObjects"
			}
			return "PostObject"
		}
		return ""
	}
	for _, so := range objectSubresources[method] {
		if has(so[0]) {
			return so[1]
		}
	}
	switch method {
	case http.MethodGet:
		if has("uploadId") {
			return "ListParts"
		}
		return "GetObject"
	case http.MethodHead:
		return "HeadObject"
	case http.MethodPut:
		if has("uploadId") || has("partNumber") {
			if header(h, "X-Amz-Copy-Source") != "" {
				return "UploadPartCopy"
			}
			return "UploadPart"
		}
		if header(h, "X-Amz-Copy-Source") != "" {
			return "CopyObject"
		}
		return "PutObject"
	case http.MethodPost:
		if has("uploads") {
			return "CreateMultipartUpload"
		}
		if has("uploadId") {
			return "CompleteMultipartUpload"
		}
		return "PostObject"
	case http.MethodDelete:
		if has("uploadId") {
			return "AbortMultipartUpload"
		}
		return "DeleteObject"
	}
	return ""
}

// firstQueryKey names the subresource of a bucket-level PUT or DELETE, e.g.
// "Policy" for PutBucketPolicy, or "" for the bucket itself. Presigning
// parameters are not subresources. Only short ASCII names qualify: the
// result ends up in messages and metrics.
func firstQueryKey(q url.Values) string {
	keys := slices.Sorted(maps.Keys(q))
	for _, k := range keys {
		if k == "" || k == "x-id" || strings.HasPrefix(strings.ToLower(k), "x-amz-") ||
			k == "AWSAccessKeyId" || k == "Signature" || k == "Expires" { // signature version 2
			continue
		}
		if len(k) > 32 || strings.IndexFunc(k, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-')
		}) >= 0 {
			return "Unknown"
		}
		return strings.ToUpper(k[:1]) + k[1:]
	}
	return ""
}

// requestQuery parses a raw query for the handlers: everything but the
// presigned URL's signature parameters (X-Amz-Credential, X-Amz-Signature
// and the rest), which only the verifier reads, from the raw query. A
// presigned GET carries six of them; decoding them into a map no handler
// reads cost 4% of a 4 KiB hit.
//
// A ';' is an ordinary byte of a name or value, as the signature verifier
// reads it: url.ParseQuery would drop the whole pair, and a client could
// then strip a signed parameter (a response-content-type, say) by sending
// its "%3B" raw.
func requestQuery(raw string) url.Values {
	raw = strings.ReplaceAll(raw, ";", "%3B")
	if !strings.Contains(raw, "X-Amz-") {
		q, _ := url.ParseQuery(raw) // a malformed pair is dropped, as URL.Query does
		return q
	}
	var b strings.Builder
	for seg := range strings.SplitSeq(raw, "&") {
		if seg == "" || strings.HasPrefix(seg, "X-Amz-") {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(seg)
	}
	q, _ := url.ParseQuery(b.String())
	return q
}
