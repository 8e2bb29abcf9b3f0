package cache

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

func sameMeta(a, b *Meta) bool {
	return a.Size == b.Size && a.ETag == b.ETag && a.ContentType == b.ContentType && a.Tag == b.Tag &&
		a.StoredAt.Equal(b.StoredAt) && a.LastModified.Equal(b.LastModified) &&
		(len(a.Header) == 0 && len(b.Header) == 0 || reflect.DeepEqual(a.Header, b.Header))
}

// TestMetaRoundTrip: metadata with and without a tag survives encoding;
// entries without one keep the first format, which earlier releases read.
func TestMetaRoundTrip(t *testing.T) {
	lm := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, m := range []Meta{
		{Size: 5, ETag: `"e"`, ContentType: "image/png", LastModified: lm, StoredAt: lm.Add(time.Hour),
			Header: map[string]string{"X-Amz-Meta-A": "b", "Cache-Control": "no-cache"}},
		{Size: 0},
		{Size: 1 << 40, ETag: `"e"`, Tag: "sse-c:0123", Header: map[string]string{"X-Amz-Server-Side-Encryption-Customer-Algorithm": "AES256"}},
	} {
		b := encodeMeta(&m)
		if want := byte(metaVersion); m.Tag != "" && b[0] != metaVersionTag || m.Tag == "" && b[0] != want {
			t.Errorf("tag %q: format version %d", m.Tag, b[0])
		}
		var got Meta
		if err := decodeMeta(b, &got); err != nil || !sameMeta(&got, &m) {
			t.Errorf("round trip of %+v = %+v, %v", m, got, err)
		}
	}
	// A record of the first format, as earlier releases wrote it.
	v1 := []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, '"', 'x', '"', 0, 1, 1, 'k', 1, 'v'}
	var got Meta
	if err := decodeMeta(v1, &got); err != nil || got.Size != 7 || got.ETag != `"x"` || got.Header["k"] != "v" || got.Tag != "" {
		t.Errorf("first-format record: %+v, %v", got, err)
	}
	// A tagged record cut before its tag, or with an empty one, is refused.
	tagged := encodeMeta(&Meta{Size: 1, Tag: "t"})
	for _, bad := range [][]byte{tagged[:len(tagged)-2], append(bytes.Clone(tagged[:len(tagged)-2]), 0)} {
		if err := decodeMeta(bad, &got); err == nil {
			t.Errorf("decodeMeta(%v) accepted a bad tag", bad)
		}
	}
}

// FuzzDecodeMeta: index.db is read back at start-up; a damaged record is an
// error, never a panic, and what decodes encodes to the same metadata.
func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(&Meta{Size: 5, ETag: `"e"`, Header: map[string]string{"a": "b"}}))
	f.Add(encodeMeta(&Meta{Size: 5, Tag: "sse-c:00"}))
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Meta
		if decodeMeta(b, &m) != nil {
			return
		}
		var again Meta
		if err := decodeMeta(encodeMeta(&m), &again); err != nil || !sameMeta(&m, &again) {
			t.Fatalf("decoded %+v, re-encoded and decoded %+v, %v", m, again, err)
		}
	})
}
