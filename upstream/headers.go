package upstream

import (
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

const metaPrefix = "X-Amz-Meta-"

// writeFields are the representation headers of a write (PutObject,
// CreateMultipartUpload, CopyObject with REPLACE), as SDK input fields.
type writeFields struct {
	cacheControl, contentDisposition, contentEncoding, contentLanguage *string
	expires                                                            *time.Time
	metadata                                                           map[string]string
	tagging, sseKMSKeyID, websiteRedirect                              *string
	sse                                                                types.ServerSideEncryption
	acl                                                                types.ObjectCannedACL
}

// writeHeaders maps PutInput.Header (see there) to SDK fields. Names are
// matched case-insensitively. A header the S3 API has no field for, or an
// Expires that is not an HTTP date, is dropped with a debug log: the proxy
// validates what clients send; this layer only forwards.
func (s *S3) writeHeaders(op, bucket, key string, h map[string]string) writeFields {
	var f writeFields
	for name, v := range h {
		name = http.CanonicalHeaderKey(name)
		switch name {
		case "Cache-Control":
			f.cacheControl = &v
		case "Content-Disposition":
			f.contentDisposition = &v
		case "Content-Encoding":
			f.contentEncoding = &v
		case "Content-Language":
			f.contentLanguage = &v
		case "Expires":
			t, err := http.ParseTime(v)
			if err != nil {
				s.log.Debug("upstream: dropping Expires that is not an HTTP date", "op", op, "bucket", bucket, "key", key)
				continue
			}
			f.expires = &t
		case "X-Amz-Tagging":
			f.tagging = &v
		case "X-Amz-Server-Side-Encryption":
			f.sse = types.ServerSideEncryption(v)
		case "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id":
			f.sseKMSKeyID = &v
		case "X-Amz-Website-Redirect-Location":
			f.websiteRedirect = &v
		case "X-Amz-Acl":
			f.acl = types.ObjectCannedACL(v)
		default:
			if m, ok := strings.CutPrefix(name, metaPrefix); ok && m != "" {
				if f.metadata == nil {
					f.metadata = make(map[string]string)
				}
				// The SDK sends "X-Amz-Meta-" + key; S3 stores the
				// names lower-case and answers them so.
				f.metadata[strings.ToLower(m)] = v
				continue
			}
			s.log.Debug("upstream: dropping header with no S3 field", "op", op, "header", name)
		}
	}
	return f
}

// readHeaders are the representation headers of a GetObject or HeadObject
// answer, as SDK output fields.
type readHeaders struct {
	etag, contentType, versionID                                       *string
	lastModified                                                       *time.Time
	storageClass                                                       types.StorageClass
	cacheControl, contentDisposition, contentEncoding, contentLanguage *string
	expires, websiteRedirect                                           *string
	metadata                                                           map[string]string
	sse                                                                types.ServerSideEncryption
	sseKMSKeyID, sseCAlgorithm, sseCKeyMD5                             *string
}

// info returns an ObjectInfo, all but Size, whose Header holds the
// representation headers with canonical names. The SSE-C key itself is
// never in an answer.
func (r readHeaders) info(bucket, key string) ObjectInfo {
	h := make(map[string]string, 4+len(r.metadata))
	set := func(name string, v *string) {
		if v != nil && *v != "" {
			h[name] = *v
		}
	}
	set("Cache-Control", r.cacheControl)
	set("Content-Disposition", r.contentDisposition)
	set("Content-Encoding", r.contentEncoding)
	set("Content-Language", r.contentLanguage)
	set("Expires", r.expires)
	set("X-Amz-Website-Redirect-Location", r.websiteRedirect)
	if r.storageClass != "" {
		h["X-Amz-Storage-Class"] = string(r.storageClass)
	}
	if r.sse != "" {
		h["X-Amz-Server-Side-Encryption"] = string(r.sse)
	}
	set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", r.sseKMSKeyID)
	set("X-Amz-Server-Side-Encryption-Customer-Algorithm", r.sseCAlgorithm)
	set("X-Amz-Server-Side-Encryption-Customer-Key-Md5", r.sseCKeyMD5)
	for k, v := range r.metadata {
		h[http.CanonicalHeaderKey(metaPrefix+k)] = v
	}
	if len(h) == 0 {
		h = nil
	}
	return ObjectInfo{
		Bucket: bucket, Key: key,
		ETag:         quoteETag(aws.ToString(r.etag)),
		LastModified: aws.ToTime(r.lastModified),
		ContentType:  aws.ToString(r.contentType),
		StorageClass: string(r.storageClass),
		VersionID:    aws.ToString(r.versionID),
		Header:       h,
	}
}
