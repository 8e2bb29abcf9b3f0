package upstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// CreateMultipart starts a multipart upload with the object's metadata,
// storage class and SSE-C parameters from in (Body and Size are unused).
func (s *S3) CreateMultipart(ctx context.Context, in PutInput) (string, error) {
	h := s.writeHeaders("create multipart", in.Bucket, in.Key, in.Header)
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &in.Bucket, Key: &in.Key,
		ContentType:  str(in.ContentType),
		StorageClass: types.StorageClass(in.StorageClass),

		CacheControl: h.cacheControl, ContentDisposition: h.contentDisposition,
		ContentEncoding: h.contentEncoding, ContentLanguage: h.contentLanguage,
		Expires: h.expires, Metadata: h.metadata, Tagging: h.tagging,
		ServerSideEncryption: h.sse, SSEKMSKeyId: h.sseKMSKeyID,
		WebsiteRedirectLocation: h.websiteRedirect, ACL: h.acl,

		SSECustomerAlgorithm: str(in.SSEC.Algorithm),
		SSECustomerKey:       str(in.SSEC.Key),
		SSECustomerKeyMD5:    str(in.SSEC.KeyMD5),
	})
	if err != nil {
		return "", translate("create multipart", in.Bucket, in.Key, err)
	}
	id := aws.ToString(out.UploadId)
	if id == "" {
		return "", fmt.Errorf("upstream: create multipart %s/%s: no upload ID in the answer", in.Bucket, in.Key)
	}
	return id, nil
}

// UploadPart stores one part, read like Put's body (see there). The result
// has PartNumber, the provider's ETag and Size.
func (s *S3) UploadPart(ctx context.Context, in PartInput) (Part, error) {
	if in.Body == nil && in.Size != 0 {
		return Part{}, fmt.Errorf("upstream: upload part %d of %s/%s: nil body of size %d", in.PartNumber, in.Bucket, in.Key, in.Size)
	}
	req := &s3.UploadPartInput{
		Bucket: &in.Bucket, Key: &in.Key,
		UploadId:      &in.UploadID,
		PartNumber:    aws.Int32(in.PartNumber),
		ContentLength: aws.Int64(in.Size),
		ContentMD5:    str(in.ContentMD5),

		SSECustomerAlgorithm: str(in.SSEC.Algorithm),
		SSECustomerKey:       str(in.SSEC.Key),
		SSECustomerKeyMD5:    str(in.SSEC.KeyMD5),
	}
	if in.Body != nil {
		req.Body = in.Body
	}
	out, err := s.client.UploadPart(ctx, req)
	if err != nil {
		return Part{}, translate("upload part "+strconv.Itoa(int(in.PartNumber))+" of", in.Bucket, in.Key, err)
	}
	return Part{
		PartNumber:   in.PartNumber,
		ETag:         quoteETag(aws.ToString(out.ETag)),
		Size:         in.Size,
		LastModified: responseDate(out.ResultMetadata),
	}, nil
}

// CompleteMultipart assembles in.Parts (PartNumber and ETag, ascending)
// into the object. The result has Bucket, Key, the provider's ETag and
// VersionID, LastModified as in Put, and Size as the sum of the Sizes in
// in.Parts (0 when the caller left them out).
func (s *S3) CompleteMultipart(ctx context.Context, in CompleteInput) (ObjectInfo, error) {
	parts := make([]types.CompletedPart, len(in.Parts))
	var size int64
	for i, p := range in.Parts {
		parts[i] = types.CompletedPart{PartNumber: aws.Int32(p.PartNumber), ETag: aws.String(p.ETag)}
		size += p.Size
	}
	out, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &in.Bucket, Key: &in.Key,
		UploadId:        &in.UploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},

		SSECustomerAlgorithm: str(in.SSEC.Algorithm),
		SSECustomerKey:       str(in.SSEC.Key),
		SSECustomerKeyMD5:    str(in.SSEC.KeyMD5),

		IfMatch: str(in.IfMatch), IfNoneMatch: str(in.IfNoneMatch),
	})
	if err != nil {
		return ObjectInfo{}, translate("complete multipart", in.Bucket, in.Key, err)
	}
	return ObjectInfo{
		Bucket: in.Bucket, Key: in.Key,
		Size:         size,
		ETag:         quoteETag(aws.ToString(out.ETag)),
		LastModified: responseDate(out.ResultMetadata),
		VersionID:    aws.ToString(out.VersionId),
	}, nil
}

// AbortMultipart discards an upload: ErrNoSuchUpload if the provider does
// not know it.
func (s *S3) AbortMultipart(ctx context.Context, bucket, key, uploadID string) error {
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &bucket, Key: &key, UploadId: &uploadID,
	})
	return translate("abort multipart", bucket, key, err)
}

// ListParts returns one page of the parts uploaded so far.
func (s *S3) ListParts(ctx context.Context, in ListPartsInput) (PartsPage, error) {
	req := &s3.ListPartsInput{Bucket: &in.Bucket, Key: &in.Key, UploadId: &in.UploadID}
	if in.PartNumberMarker > 0 {
		req.PartNumberMarker = aws.String(strconv.Itoa(int(in.PartNumberMarker)))
	}
	if in.MaxParts > 0 {
		req.MaxParts = &in.MaxParts
	}
	out, err := s.client.ListParts(ctx, req)
	if err != nil {
		return PartsPage{}, translate("list parts", in.Bucket, in.Key, err)
	}
	page := PartsPage{
		Parts:        make([]Part, 0, len(out.Parts)),
		StorageClass: string(out.StorageClass),
		IsTruncated:  aws.ToBool(out.IsTruncated),
	}
	if m := aws.ToString(out.NextPartNumberMarker); m != "" {
		n, err := strconv.ParseInt(m, 10, 32)
		if err != nil {
			return PartsPage{}, fmt.Errorf("upstream: list parts %s/%s: bad NextPartNumberMarker %q", in.Bucket, in.Key, m)
		}
		page.NextPartNumberMarker = int32(n)
	}
	for _, p := range out.Parts {
		page.Parts = append(page.Parts, Part{
			PartNumber:   aws.ToInt32(p.PartNumber),
			ETag:         quoteETag(aws.ToString(p.ETag)),
			Size:         aws.ToInt64(p.Size),
			LastModified: aws.ToTime(p.LastModified),
		})
	}
	return page, nil
}

// ListUploads returns one page of the multipart uploads in progress.
func (s *S3) ListUploads(ctx context.Context, in ListUploadsInput) (UploadsPage, error) {
	req := &s3.ListMultipartUploadsInput{
		Bucket:         &in.Bucket,
		Prefix:         str(in.Prefix),
		Delimiter:      str(in.Delimiter),
		KeyMarker:      str(in.KeyMarker),
		UploadIdMarker: str(in.UploadIDMarker),
	}
	if in.MaxUploads > 0 {
		req.MaxUploads = &in.MaxUploads
	}
	out, err := s.client.ListMultipartUploads(ctx, req)
	if err != nil {
		err = translate("list uploads", in.Bucket, "", err)
		if errors.Is(err, ErrNoSuchUpload) {
			// gofakes3 answers NoSuchUpload for a bucket that never had
			// an upload; S3 answers an empty list.
			return UploadsPage{}, nil
		}
		return UploadsPage{}, err
	}
	page := UploadsPage{
		Uploads:            make([]Upload, 0, len(out.Uploads)),
		IsTruncated:        aws.ToBool(out.IsTruncated),
		NextKeyMarker:      aws.ToString(out.NextKeyMarker),
		NextUploadIDMarker: aws.ToString(out.NextUploadIdMarker),
	}
	for _, u := range out.Uploads {
		page.Uploads = append(page.Uploads, Upload{
			Key:          aws.ToString(u.Key),
			UploadID:     aws.ToString(u.UploadId),
			Initiated:    aws.ToTime(u.Initiated),
			StorageClass: string(u.StorageClass),
		})
	}
	for _, p := range out.CommonPrefixes {
		page.CommonPrefixes = append(page.CommonPrefixes, aws.ToString(p.Prefix))
	}
	return page, nil
}
