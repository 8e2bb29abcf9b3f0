package upstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

const (
	// maxDeleteKeys is the most keys one DeleteObjects request may carry.
	maxDeleteKeys = 1000
	// defaultContentType is what the SDK sends for a PutObject without a
	// Content-Type.
	defaultContentType = "application/octet-stream"
)

// HeadBucket reports whether bucket exists: ErrNoSuchBucket if not.
func (s *S3) HeadBucket(ctx context.Context, bucket string) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket})
	return translate("head bucket", bucket, "", err)
}

// Head returns an object's metadata. o.Range and o.PartNumber, if set, are
// passed on: Range then says which bytes the answer covers, and Size is the
// whole object's size all the same (-1 if a ranged answer did not say).
func (s *S3) Head(ctx context.Context, bucket, key string, o GetOptions) (ObjectInfo, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: &bucket, Key: &key,
		Range:             str(o.Range),
		IfMatch:           str(o.IfMatch),
		IfNoneMatch:       str(o.IfNoneMatch),
		IfModifiedSince:   tm(o.IfModifiedSince),
		IfUnmodifiedSince: tm(o.IfUnmodifiedSince),
		PartNumber:        i32(o.PartNumber),
		VersionId:         str(o.VersionID),

		SSECustomerAlgorithm: str(o.SSEC.Algorithm),
		SSECustomerKey:       str(o.SSEC.Key),
		SSECustomerKeyMD5:    str(o.SSEC.KeyMD5),
	})
	if err != nil {
		return ObjectInfo{}, translate("head", bucket, key, err)
	}
	info := readHeaders{
		cacheControl: out.CacheControl, contentDisposition: out.ContentDisposition,
		contentEncoding: out.ContentEncoding, contentLanguage: out.ContentLanguage,
		expires: out.ExpiresString, metadata: out.Metadata, websiteRedirect: out.WebsiteRedirectLocation,
		sse: out.ServerSideEncryption, sseKMSKeyID: out.SSEKMSKeyId,
		sseCAlgorithm: out.SSECustomerAlgorithm, sseCKeyMD5: out.SSECustomerKeyMD5,
		etag: out.ETag, contentType: out.ContentType, versionID: out.VersionId,
		lastModified: out.LastModified, storageClass: out.StorageClass,
	}.info(bucket, key)
	info.Size = aws.ToInt64(out.ContentLength)
	info.PartsCount = aws.ToInt32(out.PartsCount)
	if out.ContentRange != nil {
		r, err := parseContentRange(*out.ContentRange)
		if err != nil {
			return ObjectInfo{}, fmt.Errorf("upstream: head %s/%s: %w", bucket, key, err)
		}
		info.Range = &r
		info.Size = r.Total // -1 if the provider did not say
	}
	return info, nil
}

// Get returns an object, or the part that o.Range or o.PartNumber selects:
// then Range tells which bytes Body holds and Size is the whole
// object's size (-1 if the provider did not say). A Body cut short returns
// an error matching ErrUnavailable, never io.EOF.
func (s *S3) Get(ctx context.Context, bucket, key string, o GetOptions) (*Object, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &bucket, Key: &key,
		Range:             str(o.Range),
		IfMatch:           str(o.IfMatch),
		IfNoneMatch:       str(o.IfNoneMatch),
		IfModifiedSince:   tm(o.IfModifiedSince),
		IfUnmodifiedSince: tm(o.IfUnmodifiedSince),
		PartNumber:        i32(o.PartNumber),
		VersionId:         str(o.VersionID),

		SSECustomerAlgorithm: str(o.SSEC.Algorithm),
		SSECustomerKey:       str(o.SSEC.Key),
		SSECustomerKeyMD5:    str(o.SSEC.KeyMD5),
	})
	if err != nil {
		return nil, translate("get", bucket, key, err)
	}
	info := readHeaders{
		cacheControl: out.CacheControl, contentDisposition: out.ContentDisposition,
		contentEncoding: out.ContentEncoding, contentLanguage: out.ContentLanguage,
		expires: out.ExpiresString, metadata: out.Metadata, websiteRedirect: out.WebsiteRedirectLocation,
		sse: out.ServerSideEncryption, sseKMSKeyID: out.SSEKMSKeyId,
		sseCAlgorithm: out.SSECustomerAlgorithm, sseCKeyMD5: out.SSECustomerKeyMD5,
		etag: out.ETag, contentType: out.ContentType, versionID: out.VersionId,
		lastModified: out.LastModified, storageClass: out.StorageClass,
	}.info(bucket, key)
	length := int64(-1)
	if out.ContentLength != nil {
		length = *out.ContentLength
	}
	info.Size = length
	info.PartsCount = aws.ToInt32(out.PartsCount)

	obj := &Object{ObjectInfo: info}
	if out.ContentRange != nil {
		r, err := parseContentRange(*out.ContentRange)
		if err != nil {
			out.Body.Close()
			return nil, fmt.Errorf("upstream: get %s/%s: %w", bucket, key, err)
		}
		if length >= 0 && length != r.End-r.Start+1 {
			out.Body.Close()
			return nil, fmt.Errorf("upstream: get %s/%s: Content-Length %d does not match Content-Range %q",
				bucket, key, length, *out.ContentRange)
		}
		obj.Range = &r
		obj.Size = r.Total
	}
	obj.Body = &body{rc: out.Body, remaining: length, where: bucket + "/" + key}
	return obj, nil
}

// Put stores an object. The result has the Bucket, Key, Size, StorageClass
// and Header of in, the provider's ETag and VersionID, as LastModified the
// Date of the provider's answer (S3 does not say more), and ContentType as
// sent: in.ContentType or, if empty, the SDK's "application/octet-stream".
// in.Body is read from its current offset, exactly
// in.Size bytes, as a plain body with Content-Length: never aws-chunked,
// never a trailing checksum (unless RequestChecksum is "when_supported").
//
// Payload signing is the SDK's choice for PutObject and UploadPart, which
// suits a disk spool: over https the payload is UNSIGNED-PAYLOAD (TLS
// protects it, and one pass over the body is all the upload costs); over
// plain http the signer reads the body once more to sign its SHA-256,
// because nothing else would protect it in transit. The body is rewound
// (never buffered) for that and for each retry.
func (s *S3) Put(ctx context.Context, in PutInput) (ObjectInfo, error) {
	if in.Body == nil && in.Size != 0 {
		return ObjectInfo{}, fmt.Errorf("upstream: put %s/%s: nil body of size %d", in.Bucket, in.Key, in.Size)
	}
	h := s.writeHeaders("put", in.Bucket, in.Key, in.Header)
	req := &s3.PutObjectInput{
		Bucket: &in.Bucket, Key: &in.Key,
		ContentLength: aws.Int64(in.Size),
		ContentMD5:    str(in.ContentMD5),
		ContentType:   str(in.ContentType),
		StorageClass:  types.StorageClass(in.StorageClass),

		CacheControl: h.cacheControl, ContentDisposition: h.contentDisposition,
		ContentEncoding: h.contentEncoding, ContentLanguage: h.contentLanguage,
		Expires: h.expires, Metadata: h.metadata, Tagging: h.tagging,
		ServerSideEncryption: h.sse, SSEKMSKeyId: h.sseKMSKeyID,
		WebsiteRedirectLocation: h.websiteRedirect, ACL: h.acl,

		SSECustomerAlgorithm: str(in.SSEC.Algorithm),
		SSECustomerKey:       str(in.SSEC.Key),
		SSECustomerKeyMD5:    str(in.SSEC.KeyMD5),

		IfMatch: str(in.IfMatch), IfNoneMatch: str(in.IfNoneMatch),
	}
	if in.Body != nil {
		req.Body = in.Body
	}
	out, err := s.client.PutObject(ctx, req)
	if err != nil {
		return ObjectInfo{}, translate("put", in.Bucket, in.Key, err)
	}
	return ObjectInfo{
		Bucket: in.Bucket, Key: in.Key,
		Size:         in.Size,
		ETag:         quoteETag(aws.ToString(out.ETag)),
		LastModified: responseDate(out.ResultMetadata),
		ContentType:  cmp.Or(in.ContentType, defaultContentType),
		StorageClass: in.StorageClass,
		VersionID:    aws.ToString(out.VersionId),
		Header:       cloneHeader(in.Header),
	}, nil
}

// Copy copies an object within the provider. The result has Bucket, Key,
// ETag, LastModified and VersionID.
func (s *S3) Copy(ctx context.Context, in CopyInput) (ObjectInfo, error) {
	op := "copy " + in.SourceBucket + "/" + in.SourceKey + " to"
	req := &s3.CopyObjectInput{
		Bucket: &in.Bucket, Key: &in.Key,
		CopySource:   aws.String(copySource(in.SourceBucket, in.SourceKey, in.SourceVersionID)),
		StorageClass: types.StorageClass(in.StorageClass),

		CopySourceIfMatch:           str(in.IfMatch),
		CopySourceIfNoneMatch:       str(in.IfNoneMatch),
		CopySourceIfModifiedSince:   tm(in.IfModifiedSince),
		CopySourceIfUnmodifiedSince: tm(in.IfUnmodifiedSince),

		SSECustomerAlgorithm:           str(in.SSEC.Algorithm),
		SSECustomerKey:                 str(in.SSEC.Key),
		SSECustomerKeyMD5:              str(in.SSEC.KeyMD5),
		CopySourceSSECustomerAlgorithm: str(in.SourceSSEC.Algorithm),
		CopySourceSSECustomerKey:       str(in.SourceSSEC.Key),
		CopySourceSSECustomerKeyMD5:    str(in.SourceSSEC.KeyMD5),
	}
	switch d := strings.ToUpper(in.MetadataDirective); d {
	case "", string(types.MetadataDirectiveCopy):
	case string(types.MetadataDirectiveReplace):
		h := s.writeHeaders(op, in.Bucket, in.Key, in.Header)
		req.MetadataDirective = types.MetadataDirectiveReplace
		req.ContentType = str(in.ContentType)
		req.CacheControl, req.ContentDisposition = h.cacheControl, h.contentDisposition
		req.ContentEncoding, req.ContentLanguage = h.contentEncoding, h.contentLanguage
		req.Expires, req.Metadata, req.Tagging = h.expires, h.metadata, h.tagging
		req.ServerSideEncryption, req.SSEKMSKeyId = h.sse, h.sseKMSKeyID
		req.WebsiteRedirectLocation, req.ACL = h.websiteRedirect, h.acl
		if h.tagging != nil {
			req.TaggingDirective = types.TaggingDirectiveReplace
		}
	default:
		return ObjectInfo{}, fmt.Errorf("upstream: %s %s/%s: metadata directive %q, want COPY or REPLACE", op, in.Bucket, in.Key, d)
	}
	out, err := s.client.CopyObject(ctx, req)
	if err != nil {
		return ObjectInfo{}, translate(op, in.Bucket, in.Key, err)
	}
	info := ObjectInfo{Bucket: in.Bucket, Key: in.Key, VersionID: aws.ToString(out.VersionId)}
	if r := out.CopyObjectResult; r != nil {
		info.ETag = quoteETag(aws.ToString(r.ETag))
		info.LastModified = aws.ToTime(r.LastModified)
	}
	return info, nil
}

// Delete removes an object; a missing key is not an error.
func (s *S3) Delete(ctx context.Context, bucket, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
	err = translate("delete", bucket, key, err)
	if errors.Is(err, ErrNotFound) {
		return nil // some providers answer 404 where S3 answers 204
	}
	return err
}

// DeleteObjects removes keys in batches of 1000 (quiet mode) and returns
// one result per key, in the order of keys. An error means a whole batch
// failed; the results of the batches before it are returned with it.
func (s *S3) DeleteObjects(ctx context.Context, bucket string, keys []string) ([]DeleteResult, error) {
	results := make([]DeleteResult, 0, len(keys))
	for start := 0; start < len(keys); start += maxDeleteKeys {
		batch := keys[start:min(start+maxDeleteKeys, len(keys))]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i := range batch {
			ids[i].Key = &batch[i]
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &bucket,
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		}, withContentMD5)
		if err != nil {
			return results, translate("delete objects", bucket, "", err)
		}
		failed := make(map[string]types.Error, len(out.Errors))
		for _, e := range out.Errors {
			failed[aws.ToString(e.Key)] = e
		}
		for _, k := range batch {
			r := DeleteResult{Key: k}
			if e, ok := failed[k]; ok {
				r.Code, r.Message = aws.ToString(e.Code), aws.ToString(e.Message)
			}
			results = append(results, r)
		}
	}
	return results, nil
}

// List returns one page of a ListObjectsV2 listing.
func (s *S3) List(ctx context.Context, in ListInput) (ListPage, error) {
	req := &s3.ListObjectsV2Input{
		Bucket:            &in.Bucket,
		Prefix:            str(in.Prefix),
		Delimiter:         str(in.Delimiter),
		StartAfter:        str(in.StartAfter),
		ContinuationToken: str(in.ContinuationToken),
	}
	if in.MaxKeys > 0 {
		req.MaxKeys = &in.MaxKeys
	}
	out, err := s.client.ListObjectsV2(ctx, req)
	if err != nil {
		return ListPage{}, translate("list", in.Bucket, "", err)
	}
	page := ListPage{
		Objects:               make([]ObjectInfo, 0, len(out.Contents)),
		IsTruncated:           aws.ToBool(out.IsTruncated),
		NextContinuationToken: aws.ToString(out.NextContinuationToken),
	}
	for _, o := range out.Contents {
		page.Objects = append(page.Objects, ObjectInfo{
			Bucket: in.Bucket, Key: aws.ToString(o.Key),
			Size:         aws.ToInt64(o.Size),
			ETag:         quoteETag(aws.ToString(o.ETag)),
			LastModified: aws.ToTime(o.LastModified),
			StorageClass: string(o.StorageClass),
		})
	}
	for _, p := range out.CommonPrefixes {
		page.CommonPrefixes = append(page.CommonPrefixes, aws.ToString(p.Prefix))
	}
	return page, nil
}

// parseContentRange parses "bytes START-END/TOTAL"; TOTAL "*" gives -1.
func parseContentRange(s string) (ContentRange, error) {
	bad := fmt.Errorf("bad Content-Range %q", s)
	spec, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return ContentRange{}, bad
	}
	rng, total, ok := strings.Cut(spec, "/")
	if !ok {
		return ContentRange{}, bad
	}
	first, last, ok := strings.Cut(rng, "-")
	if !ok {
		return ContentRange{}, bad
	}
	var r ContentRange
	var err1, err2, err3 error
	r.Start, err1 = strconv.ParseInt(first, 10, 64)
	r.End, err2 = strconv.ParseInt(last, 10, 64)
	r.Total = -1
	if total != "*" {
		r.Total, err3 = strconv.ParseInt(total, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || r.Start < 0 || r.End < r.Start || (r.Total >= 0 && r.End >= r.Total) {
		return ContentRange{}, bad
	}
	return r, nil
}

// copySource is the x-amz-copy-source value: "bucket/key", the key
// percent-encoded byte by byte except unreserved characters and "/", so
// that "+" and " " survive both AWS's and gofakes3's decoding.
func copySource(bucket, key, versionID string) string {
	var b strings.Builder
	b.WriteString(bucket)
	b.WriteByte('/')
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || c == '/' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	if versionID != "" {
		b.WriteString("?versionId=")
		b.WriteString(versionID)
	}
	return b.String()
}

// responseDate is the Date header of the provider's answer, or the zero
// time.
func responseDate(md middleware.Metadata) time.Time {
	raw, ok := awsmiddleware.GetRawResponse(md).(*smithyhttp.Response)
	if !ok || raw == nil {
		return time.Time{}
	}
	t, err := http.ParseTime(raw.Header.Get("Date"))
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// quoteETag returns an ETag in S3's quoted form; some providers omit the
// quotes.
func quoteETag(s string) string {
	if s == "" || strings.HasPrefix(s, `"`) || strings.HasPrefix(s, `W/"`) {
		return s
	}
	return `"` + s + `"`
}

// str returns nil for "" so that the SDK omits the header.
func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func tm(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func i32(n int32) *int32 {
	if n == 0 {
		return nil
	}
	return &n
}

// cloneHeader copies a header map with canonical names, so that the result
// does not alias the caller's.
func cloneHeader(h map[string]string) map[string]string {
	if len(h) == 0 {
		return nil
	}
	c := make(map[string]string, len(h))
	for k, v := range h {
		c[http.CanonicalHeaderKey(k)] = v
	}
	return c
}
