package upstream_test

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/s3edge/s3edge/upstream"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

func TestMultipartOutOfOrder(t *testing.T) {
	srv, c := newServer(t, upstreamtest.Shape{})
	ctx := t.Context()
	const key = "big/object"
	id, err := c.CreateMultipart(ctx, upstream.PutInput{Bucket: bucket, Key: key, ContentType: "video/mp4", StorageClass: "STANDARD"})
	if err != nil {
		t.Fatalf("CreateMultipart = %v", err)
	}

	partData := [][]byte{
		bytes.Repeat([]byte("a"), 70_000),
		bytes.Repeat([]byte("b"), 70_000),
		bytes.Repeat([]byte("c"), 1_000),
	}
	parts := make([]upstream.Part, len(partData))
	var wg sync.WaitGroup
	// Parts go concurrently, the last first, as Synapse's uploader does.
	for _, i := range []int{2, 0, 1} {
		wg.Go(func() {
			sum := md5.Sum(partData[i])
			p, err := c.UploadPart(ctx, upstream.PartInput{
				Bucket: bucket, Key: key, UploadID: id, PartNumber: int32(i + 1),
				Body: bytes.NewReader(partData[i]), Size: int64(len(partData[i])),
				ContentMD5: b64(sum[:]),
			})
			if err != nil {
				t.Errorf("UploadPart(%d) = %v", i+1, err)
				return
			}
			parts[i] = p
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, p := range parts {
		sum := md5.Sum(partData[i])
		if p.PartNumber != int32(i+1) || p.ETag != `"`+hex.EncodeToString(sum[:])+`"` || p.Size != int64(len(partData[i])) {
			t.Errorf("part %d = %+v", i+1, p)
		}
	}

	listed, err := c.ListParts(ctx, upstream.ListPartsInput{Bucket: bucket, Key: key, UploadID: id})
	if err != nil {
		t.Fatalf("ListParts = %v", err)
	}
	var numbers []int32
	for _, p := range listed.Parts {
		numbers = append(numbers, p.PartNumber)
	}
	if !slices.Equal(numbers, []int32{1, 2, 3}) || listed.IsTruncated {
		t.Errorf("ListParts = %+v, want parts 1, 2, 3", listed)
	}

	uploads, err := c.ListUploads(ctx, upstream.ListUploadsInput{Bucket: bucket})
	if err != nil || len(uploads.Uploads) != 1 || uploads.Uploads[0].UploadID != id || uploads.Uploads[0].Key != key {
		t.Errorf("ListUploads = %+v, %v; want upload %s of %s", uploads, err, id, key)
	}

	info, err := c.CompleteMultipart(ctx, upstream.CompleteInput{Bucket: bucket, Key: key, UploadID: id, Parts: parts})
	if err != nil {
		t.Fatalf("CompleteMultipart = %v", err)
	}
	if !strings.HasSuffix(info.ETag, `-3"`) || info.Size != 141_000 {
		t.Errorf("CompleteMultipart = %+v, want a multipart ETag (-3) and Size 141000", info)
	}
	obj, err := c.Get(ctx, bucket, key, upstream.GetOptions{})
	if err != nil {
		t.Fatalf("Get = %v", err)
	}
	if got, want := readAll(t, obj), bytes.Join(partData, nil); !bytes.Equal(got, want) {
		t.Errorf("assembled object: %d bytes, want %d in part order", len(got), len(want))
	}
	if obj.ContentType != "video/mp4" {
		t.Errorf("ContentType = %q, want the one given at CreateMultipart", obj.ContentType)
	}
	if n := srv.Requests("UploadPart"); n != 3 {
		t.Errorf("Requests(UploadPart) = %d, want 3", n)
	}

	if _, err := c.ListParts(ctx, upstream.ListPartsInput{Bucket: bucket, Key: key, UploadID: id}); !errors.Is(err, upstream.ErrNoSuchUpload) {
		t.Errorf("ListParts after Complete = %v, want ErrNoSuchUpload", err)
	}
}

func TestMultipartAbort(t *testing.T) {
	_, c := newServer(t, upstreamtest.Shape{})
	ctx := t.Context()
	if page, err := c.ListUploads(ctx, upstream.ListUploadsInput{Bucket: bucket}); err != nil || len(page.Uploads) != 0 {
		t.Errorf("ListUploads(none yet) = %+v, %v; want empty", page, err)
	}
	id, err := c.CreateMultipart(ctx, upstream.PutInput{Bucket: bucket, Key: "k"})
	if err != nil {
		t.Fatalf("CreateMultipart = %v", err)
	}
	if _, err := c.UploadPart(ctx, upstream.PartInput{Bucket: bucket, Key: "k", UploadID: id, PartNumber: 1, Body: strings.NewReader("x"), Size: 1}); err != nil {
		t.Fatalf("UploadPart = %v", err)
	}
	if err := c.AbortMultipart(ctx, bucket, "k", id); err != nil {
		t.Fatalf("AbortMultipart = %v", err)
	}
	if err := c.AbortMultipart(ctx, bucket, "k", id); !errors.Is(err, upstream.ErrNoSuchUpload) {
		t.Errorf("AbortMultipart twice = %v, want ErrNoSuchUpload", err)
	}
	_, err = c.UploadPart(ctx, upstream.PartInput{Bucket: bucket, Key: "k", UploadID: id, PartNumber: 2, Body: strings.NewReader("y"), Size: 1})
	if !errors.Is(err, upstream.ErrNoSuchUpload) {
		t.Errorf("UploadPart after Abort = %v, want ErrNoSuchUpload", err)
	}
	_, err = c.CompleteMultipart(ctx, upstream.CompleteInput{Bucket: bucket, Key: "k", UploadID: "nope"})
	if !errors.Is(err, upstream.ErrNoSuchUpload) {
		t.Errorf("CompleteMultipart(unknown upload) = %v, want ErrNoSuchUpload", err)
	}
	if _, err := c.Head(ctx, bucket, "k", upstream.GetOptions{}); !errors.Is(err, upstream.ErrNotFound) {
		t.Errorf("Head after Abort = %v, want ErrNotFound", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
