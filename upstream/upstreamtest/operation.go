package upstreamtest

import (
	"net/http"
	"strings"
)

// Operation names the S3 API operation of a path-style request, as the S3
// API reference does: "GetObject", "HeadObject", "PutObject", "CopyObject",
// "DeleteObject", "DeleteObjects", "ListObjectsV2", "ListObjects",
// "HeadBucket", "CreateBucket", "DeleteBucket", "GetBucketLocation",
// "ListBuckets", "CreateMultipartUpload", "UploadPart", "UploadPartCopy",
// "CompleteMultipartUpload", "AbortMultipartUpload", "ListParts",
// "ListMultipartUploads", "GetBucketVersioning", "PutBucketVersioning",
// "ListObjectVersions", "PostObject"; "Unknown" otherwise.
func Operation(r *http.Request) string {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	has := func(name string) bool { _, ok := q[name]; return ok }
	copySource := r.Header.Get("X-Amz-Copy-Source") != ""

	switch {
	case bucket == "":
		if r.Method == http.MethodGet {
			return "ListBuckets"
		}
	case key == "":
		return bucketOperation(r.Method, has)
	case has("uploadId"):
		switch r.Method {
		case http.MethodPut:
			if copySource {
				return "UploadPartCopy"
			}
			return "UploadPart"
		case http.MethodPost:
			return "CompleteMultipartUpload"
		case http.MethodDelete:
			return "AbortMultipartUpload"
		case http.MethodGet:
			return "ListParts"
		}
	case has("uploads"):
		if r.Method == http.MethodPost {
			return "CreateMultipartUpload"
		}
	default:
		switch r.Method {
		case http.MethodGet:
			return "GetObject"
		case http.MethodHead:
			return "HeadObject"
		case http.MethodPut:
			if copySource {
				return "CopyObject"
			}
			return "PutObject"
		case http.MethodDelete:
			return "DeleteObject"
		}
	}
	return "Unknown"
}

func bucketOperation(method string, has func(string) bool) string {
	switch method {
	case http.MethodGet:
		switch {
		case has("uploads"):
			return "ListMultipartUploads"
		case has("location"):
			return "GetBucketLocation"
		case has("versioning"):
			return "GetBucketVersioning"
		case has("versions"):
			return "ListObjectVersions"
		case has("list-type"):
			return "ListObjectsV2"
		}
		return "ListObjects"
	case http.MethodHead:
		return "HeadBucket"
	case http.MethodPut:
		if has("versioning") {
			return "PutBucketVersioning"
		}
		return "CreateBucket"
	case http.MethodDelete:
		return "DeleteBucket"
	case http.MethodPost:
		if has("delete") {
			return "DeleteObjects"
		}
		return "PostObject"
	}
	return "Unknown"
}

// isChunked reports whether a request carries an aws-chunked body, which
// the proxy must never forward: gofakes3 decodes only the signed variant
// and stores the framing of the others inside the object.
func isChunked(r *http.Request) bool {
	return strings.Contains(strings.ToLower(r.Header.Get("Content-Encoding")), "aws-chunked") ||
		strings.HasPrefix(strings.ToUpper(r.Header.Get("X-Amz-Content-Sha256")), "STREAMING-") ||
		r.Header.Get("X-Amz-Decoded-Content-Length") != ""
}
