package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseRoute(t *testing.T) {
	base := []string{"s3.example.com"}
	tests := []struct {
		method, target, host string
		header               map[string]string
		bucket, key, op      string
		code                 string
	}{
		{"GET", "/", "127.0.0.1:9000", nil, "", "", "ListBuckets", ""},
		{"GET", "/media", "127.0.0.1", nil, "media", "", "ListObjects", ""},
		{"GET", "/media/", "127.0.0.1", nil, "media", "", "ListObjects", ""},
		{"GET", "/media?list-type=2&prefix=a", "h", nil, "media", "", "ListObjectsV2", ""},
		{"GET", "/media?location", "h", nil, "media", "", "GetBucketLocation", ""},
		{"GET", "/media?uploads", "h", nil, "media", "", "ListMultipartUploads", ""},
		{"HEAD", "/media", "h", nil, "media", "", "HeadBucket", ""},
		{"PUT", "/media", "h", nil, "media", "", "CreateBucket", ""},
		{"PUT", "/media?policy", "h", nil, "media", "", "PutBucketPolicy", ""},
		{"POST", "/media?delete", "h", nil, "media", "", "DeleteObjects", ""},
		{"GET", "/media/a/b//c", "h", nil, "media", "a/b//c", "GetObject", ""},
		{"GET", "/media/a%2Fb%20c", "h", nil, "media", "a/b c", "GetObject", ""},
		{"GET", "/media/remote_content/%5B2001%3Adb8%3A%3A1%5D%3A8448/ab", "h", nil, "media", "remote_content/[2001:db8::1]:8448/ab", "GetObject", ""},
		{"GET", "/media/../../etc/passwd", "h", nil, "", "", "", "InvalidArgument"},
		{"GET", "/media/a/./b", "h", nil, "", "", "", "InvalidArgument"},
		{"GET", "/media/a/.../b..", "h", nil, "media", "a/.../b..", "GetObject", ""},
		{"PUT", "/media?%C3%A9x=", "h", nil, "media", "", "PutBucketUnknown", ""},
		{"PUT", "/media?X-Amz-Signature=x&X-Amz-Date=y", "h", nil, "media", "", "CreateBucket", ""},
		{"HEAD", "/media/k", "h", nil, "media", "k", "HeadObject", ""},
		{"GET", "/media/k?acl", "h", nil, "media", "k", "GetObjectAcl", ""},
		{"GET", "/media/k?uploadId=u", "h", nil, "media", "k", "ListParts", ""},
		{"PUT", "/media/k", "h", nil, "media", "k", "PutObject", ""},
		{"PUT", "/media/k", "h", map[string]string{"X-Amz-Copy-Source": "/media/j"}, "media", "k", "CopyObject", ""},
		{"PUT", "/media/k?partNumber=1&uploadId=u", "h", nil, "media", "k", "UploadPart", ""},
		{"PUT", "/media/k?partNumber=1&uploadId=u", "h", map[string]string{"X-Amz-Copy-Source": "/media/j"}, "media", "k", "UploadPartCopy", ""},
		{"POST", "/media/k?uploads", "h", nil, "media", "k", "CreateMultipartUpload", ""},
		{"POST", "/media/k?uploadId=u", "h", nil, "media", "k", "CompleteMultipartUpload", ""},
		{"DELETE", "/media/k?uploadId=u", "h", nil, "media", "k", "AbortMultipartUpload", ""},
		{"DELETE", "/media/k", "h", nil, "media", "k", "DeleteObject", ""},
		{"GET", "/k/x", "media.s3.example.com:9000", nil, "media", "k/x", "GetObject", ""},
		{"GET", "/", "media.s3.example.com", nil, "media", "", "ListObjects", ""},
		{"GET", "/media/k", "s3.example.com", nil, "media", "k", "GetObject", ""},
		{"GET", "/Bad_Bucket/k", "h", nil, "", "", "", "InvalidBucketName"},
		{"GET", "/media/" + strings.Repeat("k", 1025), "h", nil, "", "", "", "KeyTooLongError"},
		{"GET", "/media/%FF%FE", "h", nil, "", "", "", "InvalidArgument"},
		{"PATCH", "/media/k", "h", nil, "media", "k", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://x"+tt.target, nil)
			r.Host = tt.host
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			rt, err := parseRoute(r, r.URL.Query(), base)
			if tt.code != "" {
				if err == nil || toAPIError(err).Code != tt.code {
					t.Fatalf("parseRoute error = %v, want %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rt.bucket != tt.bucket || rt.key != tt.key || rt.op != tt.op {
				t.Errorf("parseRoute = %+v, want bucket %q key %q op %q", rt, tt.bucket, tt.key, tt.op)
			}
		})
	}
}
