package proxy_test

import (
	"bytes"
	"io"
	"net/url"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// TestMinioGo drives s3edge with minio-go, which signs every chunk of its
// uploads over http (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) and adds trailing
// checksums over https.
func TestMinioGo(t *testing.T) {
	bothSchemes(t, func(t *testing.T, e *env) {
		u, _ := url.Parse(e.srv.URL)
		mc, err := minio.New(u.Host, &minio.Options{
			Creds:     credentials.NewStaticV4(fullKey, fullSecret, ""),
			Secure:    e.srv.TLS != nil,
			Region:    "us-east-1",
			Transport: e.srv.Client().Transport,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{0, 100 << 10, 17 << 20} {
			data := randomBytes(size, uint64(size))
			key := "minio/obj-" + string(rune('a'+size%26))
			info, err := mc.PutObject(ctx(t), "media", key, bytes.NewReader(data), int64(size), minio.PutObjectOptions{ContentType: "video/mp4", PartSize: 5 << 20})
			if err != nil {
				t.Fatalf("PutObject %d bytes: %v", size, err)
			}
			if info.Size != int64(size) {
				t.Errorf("PutObject size = %d, want %d", info.Size, size)
			}
			obj, err := mc.GetObject(ctx(t), "media", key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(obj)
			obj.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("GetObject %d bytes: got %d, err %v", size, len(got), err)
			}
			st, err := mc.StatObject(ctx(t), "media", key, minio.StatObjectOptions{})
			if err != nil || st.Size != int64(size) || st.ContentType != "video/mp4" {
				t.Errorf("StatObject = %+v, %v", st, err)
			}
			raw, _, err := e.upstreamObject("hs1/" + key)
			if err != nil || !bytes.Equal(raw, data) {
				t.Fatalf("upstream bytes differ for %d: %v", size, err)
			}
		}
		var n int
		for o := range mc.ListObjects(ctx(t), "media", minio.ListObjectsOptions{Prefix: "minio/", Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			n++
		}
		if n != 3 {
			t.Errorf("listed %d objects, want 3", n)
		}
		if err := mc.RemoveObject(ctx(t), "media", "minio/obj-a", minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if n := e.up.ChunkedRequests(); n != 0 {
			t.Errorf("upstream got %d aws-chunked requests", n)
		}
		e.spoolEmpty()
	})
}
