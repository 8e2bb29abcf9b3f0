package proxy

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzRequestQuery: the handlers' query is the full parse (';' kept as a
// byte, as the verifier reads it) minus only the signature parameters,
// whatever the raw query.
func FuzzRequestQuery(f *testing.F) {
	for _, s := range []string{
		"",
		"uploads",
		"partNumber=2&uploadId=a%2Fb",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=k%2F20261127%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261127T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=ab&response-content-type=text%2Fplain",
		"X-Amz-Signature=1&&x-id=GetObject&X%2DAmz-Date=2",
		"a=1;b=2&X-Amz-=&c=%zz&d",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := requestQuery(raw)
		full, _ := url.ParseQuery(strings.ReplaceAll(raw, ";", "%3B")) // ';' is a byte like any other
		for k, vs := range full {
			if !strings.HasPrefix(k, "X-Amz-") {
				if !slices.Equal(got[k], vs) {
					t.Fatalf("%q: %q = %q, want %q", raw, k, got[k], vs)
				}
				continue
			}
			for _, v := range got[k] {
				if !slices.Contains(vs, v) {
					t.Fatalf("%q: %q has %q, not in the full parse %q", raw, k, v, vs)
				}
			}
		}
		for k := range got {
			if _, ok := full[k]; !ok {
				t.Fatalf("%q: %q is not in the full parse", raw, k)
			}
		}
	})
}

func TestRequestQueryDropsSignatureParameters(t *testing.T) {
	q := requestQuery("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab&response-content-type=text%2Fplain&uploads")
	want := url.Values{"response-content-type": {"text/plain"}, "uploads": {""}}
	if len(q) != len(want) || q.Get("response-content-type") != "text/plain" || !q.Has("uploads") {
		t.Fatalf("requestQuery = %v, want %v", q, want)
	}
	// A raw ';' does not make a pair vanish (url.ParseQuery drops it).
	q = requestQuery("response-content-type=text/plain;charset=x&a;b=c")
	if q.Get("response-content-type") != "text/plain;charset=x" || q.Get("a;b") != "c" {
		t.Fatalf("requestQuery with ';' = %v", q)
	}
}
