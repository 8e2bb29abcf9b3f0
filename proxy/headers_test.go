package proxy

import (
	"net/http"
	"testing"
	"time"
)

func TestConditions(t *testing.T) {
	lm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	before, after := lm.Add(-time.Hour).Format(http.TimeFormat), lm.Add(time.Hour).Format(http.TimeFormat)
	at := lm.Format(http.TimeFormat)
	etag := `"abc"`
	tests := []struct {
		name string
		h    map[string]string
		want error
	}{
		{"none", nil, nil},
		{"if-match ok", map[string]string{"If-Match": `"abc"`}, nil},
		{"if-match unquoted", map[string]string{"If-Match": `abc`}, nil},
		{"if-match list", map[string]string{"If-Match": `"x", "abc"`}, nil},
		{"if-match star", map[string]string{"If-Match": `*`}, nil},
		{"if-match fail", map[string]string{"If-Match": `"xyz"`}, errPrecondition},
		{"if-unmodified fail", map[string]string{"If-Unmodified-Since": before}, errPrecondition},
		{"if-unmodified ok", map[string]string{"If-Unmodified-Since": at}, nil},
		{"if-match wins over unmodified", map[string]string{"If-Match": etag, "If-Unmodified-Since": before}, nil},
		{"if-none-match hit", map[string]string{"If-None-Match": etag}, errNotModified},
		{"if-none-match miss", map[string]string{"If-None-Match": `"zz"`}, nil},
		{"if-modified-since not modified", map[string]string{"If-Modified-Since": after}, errNotModified},
		{"if-modified-since equal", map[string]string{"If-Modified-Since": at}, errNotModified},
		{"if-modified-since modified", map[string]string{"If-Modified-Since": before}, nil},
		{"none-match miss beats modified-since", map[string]string{"If-None-Match": `"zz"`, "If-Modified-Since": after}, nil},
		{"bad date ignored", map[string]string{"If-Modified-Since": "yesterday"}, nil},
		{"if-match weak fails", map[string]string{"If-Match": `W/"abc"`}, errPrecondition},
		{"if-match weak in a list", map[string]string{"If-Match": `W/"abc", "abc"`}, nil},
		{"if-none-match weak hit", map[string]string{"If-None-Match": `W/"abc"`}, errNotModified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.h {
				h.Set(k, v)
			}
			if got := conditionsIn(h).check(etag, lm.Add(300*time.Millisecond)); got != tt.want {
				t.Errorf("check = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestObjectHeadersIn(t *testing.T) {
	h := http.Header{}
	h.Set("Content-Encoding", "aws-chunked,gzip")
	h.Set("X-Amz-Meta-Color", "blue")
	h.Set("Cache-Control", "max-age=60")
	h.Set("Authorization", "secret")
	got, err := objectHeadersIn(h)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"Content-Encoding": "gzip", "X-Amz-Meta-Color": "blue", "Cache-Control": "max-age=60"}
	if len(got) != len(want) {
		t.Fatalf("objectHeadersIn = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	h.Set("Content-Encoding", "aws-chunked")
	if got, _ := objectHeadersIn(h); got["Content-Encoding"] != "" {
		t.Errorf("aws-chunked alone kept: %q", got["Content-Encoding"])
	}
	big := http.Header{}
	big.Set("X-Amz-Meta-Big", string(make([]byte, 3000)))
	if _, err := objectHeadersIn(big); err != errMetadataTooLarge {
		t.Errorf("3000 bytes of metadata: %v, want MetadataTooLarge", err)
	}
}

func TestIfRange(t *testing.T) {
	lm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"", true},
		{`"abc"`, true},
		{`"abd"`, false},
		{`W/"abc"`, false}, // strong comparison only
		{lm.Format(http.TimeFormat), true},
		{lm.Add(-time.Second).Format(http.TimeFormat), false},
		{lm.Add(time.Second).Format(http.TimeFormat), false},
		{"abc", false}, // neither a tag nor a date
	} {
		if got := (conditions{ifRange: tt.v}).rangeApplies(`"abc"`, lm.Add(300*time.Millisecond)); got != tt.want {
			t.Errorf("If-Range %q: rangeApplies = %v, want %v", tt.v, got, tt.want)
		}
	}
}

// FuzzConditions: whatever the conditional headers hold, check answers
// one of its three results, a strong match is also a weak one, and an
// If-Range of the object's own ETag keeps the Range.
func FuzzConditions(f *testing.F) {
	lm := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Add(`"abc"`, `W/"abc", *`, lm.Format(http.TimeFormat), "yesterday", `"abc"`)
	f.Add(`*`, ``, ``, lm.Format(time.RFC850), `W/"x"`)
	f.Fuzz(func(t *testing.T, ifMatch, ifNoneMatch, ifModifiedSince, ifUnmodifiedSince, ifRange string) {
		h := http.Header{}
		for k, v := range map[string]string{"If-Match": ifMatch, "If-None-Match": ifNoneMatch,
			"If-Modified-Since": ifModifiedSince, "If-Unmodified-Since": ifUnmodifiedSince, "If-Range": ifRange} {
			h.Set(k, v)
		}
		c := conditionsIn(h)
		if err := c.check(`"abc"`, lm); err != nil && err != errPrecondition && err != errNotModified {
			t.Fatalf("check = %v", err)
		}
		for _, list := range []string{ifMatch, ifNoneMatch} {
			if etagListMatches(list, `"abc"`, true) && !etagListMatches(list, `"abc"`, false) {
				t.Fatalf("%q matches strongly but not weakly", list)
			}
		}
		c.ifRange = `"abc"`
		if !c.rangeApplies(`"abc"`, lm) {
			t.Fatal("If-Range of the object's own ETag refused the Range")
		}
	})
}
