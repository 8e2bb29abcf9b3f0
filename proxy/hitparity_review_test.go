package proxy_test

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s3edge/s3edge/cache"
	"github.com/s3edge/s3edge/policy"
	"github.com/s3edge/s3edge/upstream/upstreamtest"
)

// These tests send a matrix of Range and conditional request headers for a
// cached object and check each HIT's answer against what Amazon S3
// documents, and against the same request passed through to the upstream.
//
// Three answers per request and method:
//   - "hit path": plain HTTP through proxy.HitListener (counted by the hit
//     path's counter, nothing handed off);
//   - "net/http hit": the same server and stored object, the request sent
//     with Connection: close, which the hit path hands to net/http;
//   - "pass-through": a second s3edge whose bucket has cache mode off, so
//     the request goes to the upstream. In tests the upstream is gofakes3,
//     not AWS: where only that answer deviates from S3, it is logged, not
//     failed.
//
// The authority for each expectation is named in the case. "AWS API" is the
// GetObject / HeadObject reference (the Range, If-Match, If-None-Match,
// If-Modified-Since and If-Unmodified-Since parameters); "AWS observed" is
// AWS behaviour recorded by tests validated against AWS (LocalStack's
// test_s3_api.py::test_get_object_range, marked aws.validated; moto PR 6778,
// "thoroughly tested against AWS"; aws-c-s3 issue 257, a captured AWS
// answer to a multi-range GET; MinIO PR 6557 / minio-java PR 638 for
// ranges on empty objects). The AWS API reference says of conditional
// requests "see RFC 7232" and of Range "see RFC 9110": where S3 documents
// nothing more specific, the RFC is the authority. Cases with no authority
// (status 0) only compare the three answers and log the differences.
//
// Where the pass-through deviates (logged, not failed):
//   - gofakes3 parses Range before any precondition (GET), answers 416 for
//     a suffix longer than the object (bytes=-N, N > size; RFC 9110 and AWS
//     return the whole object as 206), ignores If-Match and
//     If-Unmodified-Since, compares If-None-Match as one exact string (no
//     lists, no "*", no weak tags), and evaluates If-Modified-Since even
//     when If-None-Match is present (304 where S3 answers 200); s3edge's
//     pass-through then relays its 304 or 416 without re-checking the
//     stronger precondition (412 expected);
//   - the pass-through's 416 has no Content-Range: the upstream's size is
//     not known from an error.
//
// Found by this review and fixed (the cases fail without the fixes): on a
// GET hit, a Range that selects nothing was answered 416 before the
// preconditions (412/304 first, RFC 9110 13.2.2); a weak tag satisfied
// If-Match; If-Range was never evaluated; a 416 sent no Content-Range:
// bytes */size; a 304 relayed from the upstream lost its ETag and
// Last-Modified.

// hprVal is an object's validators as one s3edge serves them.
type hprVal struct {
	etag string
	lm   time.Time
}

// hprWant is S3's answer: the status, and for 206 the selected range.
type hprWant struct {
	status int
	off, n int64
	// rule names the authority; empty with status 0.
	rule string
}

func hprWhole(rule string) func(int64) hprWant {
	return func(int64) hprWant { return hprWant{status: 200, rule: rule} }
}

func hprPart(off, n int64, rule string) func(int64) hprWant {
	return func(size int64) hprWant {
		// Negative off: a suffix of -off bytes.
		if off < 0 {
			k := min(-off, size)
			return hprWant{status: 206, off: size - k, n: k, rule: rule}
		}
		if n < 0 || off+n > size {
			n = size - off
		}
		return hprWant{status: 206, off: off, n: n, rule: rule}
	}
}

func hprStatus(status int, rule string) func(int64) hprWant {
	return func(int64) hprWant { return hprWant{status: status, rule: rule} }
}

func hprUnknown(int64) hprWant { return hprWant{} }

type hprCase struct {
	name string
	obj  string // key suffix: "ten", "empty" or "big"
	hdr  func(v hprVal) map[string]string
	want func(size int64) hprWant
	// headWant, if set, replaces want for HEAD.
	headWant func(size int64) hprWant
}

func hprRange(v string) func(hprVal) map[string]string {
	return func(hprVal) map[string]string { return map[string]string{"Range": v} }
}

func hprDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// hprFixture is the two s3edges with the same objects, stored (HIT) on
// one and passed through on the other.
type hprFixture struct {
	hit, pass *env
	data      map[string][]byte
	val       map[*env]map[string]hprVal
}

func hprSetup(t *testing.T) *hprFixture {
	f := &hprFixture{
		hit:  cachedEnv(t, upstreamtest.Shape{}, policy.CacheRule{}),
		pass: newEnv(t, envOptions{cache: &cache.Options{MaxBytes: 64 << 20, SliceSize: 1 << 20}, rule: policy.CacheRule{Mode: policy.CacheOff}}),
		data: map[string][]byte{
			"ten":   randomBytes(10, 9101),
			"empty": {},
			"big":   randomBytes(40<<10, 9102), // over smallBody: sendfile
		},
		val: map[*env]map[string]hprVal{},
	}
	for k, d := range f.data {
		f.hit.stored("hp/rv/"+k, d)
		f.pass.up.PutObject(upstreamBucket, "hs1/hp/rv/"+k, d)
	}
	var latest time.Time
	for _, e := range []*env{f.hit, f.pass} {
		f.val[e] = map[string]hprVal{}
		for k := range f.data {
			c := e.hpDial()
			r := e.hpHead("hp/rv/"+k, nil)
			r.Close = true
			c.send(r)
			res, _ := c.recv(r)
			lm, err := http.ParseTime(res.Header.Get("Last-Modified"))
			if res.StatusCode != 200 || err != nil || res.Header.Get("ETag") == "" {
				t.Fatalf("HEAD %s: %d, ETag %q, Last-Modified %q", k, res.StatusCode, res.Header.Get("ETag"), res.Header.Get("Last-Modified"))
			}
			f.val[e][k] = hprVal{etag: res.Header.Get("ETag"), lm: lm}
			if lm.After(latest) {
				latest = lm
			}
		}
	}
	if e := f.hit; e.up.Requests("HeadObject") != 0 {
		t.Fatalf("HEAD of a stored object went upstream")
	}
	// Dates one second after Last-Modified must be in the past: a date
	// in the future is a case of its own.
	if d := time.Until(latest.Add(2500 * time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
	return f
}

// hprAnswer is one answer, reduced to what is compared.
type hprAnswer struct {
	status                         int
	clen, crange, etag, lm, ranges string
	hasCLen                        bool
	xcache, code                   string
	body                           []byte
}

func (a hprAnswer) String() string {
	cl := "-"
	if a.hasCLen {
		cl = a.clen
	}
	s := fmt.Sprintf("%d CL=%s CR=%q ETag=%q LM=%q AR=%q body=%dB", a.status, cl, a.crange, a.etag, a.lm, a.ranges, len(a.body))
	if a.code != "" {
		s += " code=" + a.code
	}
	return s
}

func hprReduce(res *http.Response, body []byte) hprAnswer {
	a := hprAnswer{
		status: res.StatusCode, crange: res.Header.Get("Content-Range"),
		etag: res.Header.Get("ETag"), lm: res.Header.Get("Last-Modified"),
		ranges: res.Header.Get("Accept-Ranges"), xcache: res.Header.Get("X-Cache"), body: body,
	}
	a.clen, a.hasCLen = res.Header.Get("Content-Length"), len(res.Header.Values("Content-Length")) > 0
	if res.StatusCode >= 400 && len(body) > 0 {
		var se s3Error
		_ = xml.Unmarshal(body, &se)
		a.code = se.Code
	}
	return a
}

// hprExpect lists how a differs from S3's answer w to method for an object
// of data with validators v.
func hprExpect(a hprAnswer, method string, w hprWant, data []byte, v hprVal) []string {
	var bad []string
	size := int64(len(data))
	head := method == http.MethodHead
	if a.status != w.status {
		return []string{fmt.Sprintf("status %d, S3 answers %d", a.status, w.status)}
	}
	switch w.status {
	case 200, 206:
		want, cr := data, ""
		if w.status == 206 {
			want = data[w.off : w.off+w.n]
			cr = fmt.Sprintf("bytes %d-%d/%d", w.off, w.off+w.n-1, size)
		}
		if a.crange != cr {
			bad = append(bad, fmt.Sprintf("Content-Range %q, S3 sends %q", a.crange, cr))
		}
		if !a.hasCLen || a.clen != strconv.Itoa(len(want)) {
			bad = append(bad, fmt.Sprintf("Content-Length %q, S3 sends %d", a.clen, len(want)))
		}
		if head && len(a.body) != 0 || !head && !bytes.Equal(a.body, want) {
			bad = append(bad, fmt.Sprintf("body of %d bytes (equal %v), S3 sends %d", len(a.body), bytes.Equal(a.body, want), len(want)))
		}
		if a.ranges != "bytes" {
			bad = append(bad, fmt.Sprintf("Accept-Ranges %q, S3 sends bytes", a.ranges))
		}
		fallthrough
	case 304:
		// A 304 carries the validators (RFC 9110 15.4.5; S3 sends ETag and
		// Last-Modified with it).
		if a.etag != v.etag {
			bad = append(bad, fmt.Sprintf("ETag %q, want %q", a.etag, v.etag))
		}
		if a.lm != hprDate(v.lm) {
			bad = append(bad, fmt.Sprintf("Last-Modified %q, want %q", a.lm, hprDate(v.lm)))
		}
		if w.status == 304 && (len(a.body) != 0 || a.crange != "") {
			bad = append(bad, fmt.Sprintf("304 with %d body bytes and Content-Range %q", len(a.body), a.crange))
		}
	case 412:
		if !head && a.code != "PreconditionFailed" {
			bad = append(bad, fmt.Sprintf("error code %q, S3 sends PreconditionFailed", a.code))
		}
	case 416:
		if !head && a.code != "InvalidRange" {
			bad = append(bad, fmt.Sprintf("error code %q, S3 sends InvalidRange", a.code))
		}
		// Content-Range: checked apart, see hpr416ContentRange.
	}
	return bad
}

// hpr416ContentRange checks a 416's Content-Range. RFC 9110 15.5.17: a
// 416 to a byte-range request SHOULD carry Content-Range: bytes */<size>
// (the current length), which the client needs to re-request a
// satisfiable range; S3's Range parameter refers to RFC 9110. Whether AWS
// itself sends it could not be confirmed from its documentation: this is
// its own subtest, so that its failures are told apart from the status
// and body checks.
func hpr416ContentRange(a hprAnswer, size int64) string {
	if want := fmt.Sprintf("bytes */%d", size); a.crange != want {
		return fmt.Sprintf("416 Content-Range %q, want %q (RFC 9110 15.5.17)", a.crange, want)
	}
	return ""
}

// hprRun sends every case, GET and HEAD, to the three sides and checks
// the answers.
func hprRun(t *testing.T, f *hprFixture, cases []hprCase) {
	for _, tc := range cases {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(tc.name+"/"+method, func(t *testing.T) {
				data := f.data[tc.obj]
				key := "hp/rv/" + tc.obj
				w := tc.want(int64(len(data)))
				if method == http.MethodHead && tc.headWant != nil {
					w = tc.headWant(int64(len(data)))
				}
				send := func(e *env, close bool) (hprAnswer, map[string]string) {
					hdr := tc.hdr(f.val[e][tc.obj])
					mutate := func(r *http.Request) {
						for k, v := range hdr {
							r.Header.Set(k, v)
						}
					}
					var r *http.Request
					if method == http.MethodHead {
						r = e.hpHead(key, mutate)
					} else {
						r = e.hpGet(key, mutate)
					}
					r.Close = close
					h0, o0 := e.hpCounts()
					c := e.hpDial()
					c.send(r)
					res, body := c.recv(r)
					if e == f.hit && !close {
						// Served by the hit path itself?
						deadline := time.Now().Add(3 * time.Second)
						for {
							h, o := e.hpCounts()
							if h > h0 || o > o0 || time.Now().After(deadline) {
								break
							}
							time.Sleep(2 * time.Millisecond)
						}
						if h, o := e.hpCounts(); h-h0 != 1 || o != o0 {
							t.Logf("hit path: answered %v, handed off %v (not answered by the hit path itself)", h-h0, o-o0)
						}
					}
					return hprReduce(res, body), hdr
				}
				hp, hdr := send(f.hit, false)
				nh, _ := send(f.hit, true)
				pt, _ := send(f.pass, true)
				t.Logf("request: %s %v", method, hdr)
				t.Logf("hit path:     %v", hp)
				t.Logf("net/http hit: %v", nh)
				t.Logf("pass-through: %v", pt)

				if w.status == 0 {
					// No authority: the two hits must at least agree
					// (one stored object, one server); differences with
					// the pass-through are logged.
					if hpKey(hp) != hpKey(nh) {
						t.Errorf("the hit path and the net/http hit answer differently:\n\thit path:     %v\n\tnet/http hit: %v", hp, nh)
					}
					if hpKey(hp) != hpKey(pt) {
						t.Logf("NOTE (no S3 authority): hit and pass-through differ")
					}
					return
				}
				t.Logf("S3 (%s): %d %d+%d", w.rule, w.status, w.off, w.n)
				for _, side := range []struct {
					name string
					a    hprAnswer
				}{{"hit path", hp}, {"net/http hit", nh}} {
					for _, p := range hprExpect(side.a, method, w, data, f.val[f.hit][tc.obj]) {
						t.Errorf("%s deviates from S3 (%s): %s", side.name, w.rule, p)
					}
					if (w.status == 200 || w.status == 206) && side.a.status == w.status && side.a.xcache != "HIT" {
						t.Errorf("%s: X-Cache %q, want HIT", side.name, side.a.xcache)
					}
				}
				// Whatever gofakes3 decides, a 304 relayed from it carries
				// the validators it sent (RFC 9110 15.4.5): s3edge's part.
				if v := f.val[f.pass][tc.obj]; pt.status == 304 && (pt.etag != v.etag || pt.lm != hprDate(v.lm)) {
					t.Errorf("pass-through 304: ETag %q, Last-Modified %q; want the upstream's %q, %q", pt.etag, pt.lm, v.etag, hprDate(v.lm))
				}
				if ps := hprExpect(pt, method, w, data, f.val[f.pass][tc.obj]); len(ps) > 0 {
					t.Logf("NOTE pass-through (gofakes3 upstream or s3edge's pass-through path) deviates from S3 too: %s", strings.Join(ps, "; "))
				}
				if w.status == 416 {
					t.Run("416 Content-Range", func(t *testing.T) {
						if p := hpr416ContentRange(hp, int64(len(data))); p != "" {
							t.Errorf("hit path: %s", p)
						}
						if p := hpr416ContentRange(nh, int64(len(data))); p != "" {
							t.Errorf("net/http hit: %s", p)
						}
						if p := hpr416ContentRange(pt, int64(len(data))); p != "" {
							t.Logf("NOTE pass-through too: %s", p)
						}
					})
				}
			})
		}
	}
}

// hpKey is what must be equal between two answers to one request (the
// validators aside, which differ between the two s3edges' upstreams).
func hpKey(a hprAnswer) string {
	body := a.body
	if a.status >= 300 {
		body = nil // an error document names its request ID
	}
	return fmt.Sprintf("%d|%s|%v|%s|%s|%v|%s|%x", a.status, a.clen, a.hasCLen, a.crange, a.ranges, a.etag != "", a.code, body)
}

// TestHitParityReviewRanges: Range forms on a 10-byte, a 40 KiB and an
// empty object.
func TestHitParityReviewRanges(t *testing.T) {
	f := hprSetup(t)
	const (
		api   = "AWS API GetObject Range / RFC 9110 14.1.2"
		seen  = "AWS observed (LocalStack test_get_object_range, aws.validated; moto PR 6778)"
		multi = "AWS API: S3 doesn't support multiple ranges per GET; AWS observed: 200 whole (aws-c-s3 #257, LocalStack get-multiple-ranges)"
		empty = "AWS observed: any first-pos range on a 0-byte object is InvalidRange (MinIO PR 6557, minio-java PR 638)"
		rfc   = "RFC 9110 14.2: a Range with a unit the server does not understand is ignored"
	)
	var cases []hprCase
	for _, obj := range []string{"ten", "big"} {
		size := int64(len(f.data[obj]))
		sz := strconv.FormatInt(size, 10)
		cases = append(cases,
			hprCase{obj + " bytes=0-0", obj, hprRange("bytes=0-0"), hprPart(0, 1, api), nil},
			hprCase{obj + " bytes=0-", obj, hprRange("bytes=0-"), hprPart(0, -1, api), nil},
			hprCase{obj + " bytes=3-7", obj, hprRange("bytes=3-7"), hprPart(3, 5, api), nil},
			hprCase{obj + " bytes=-1", obj, hprRange("bytes=-1"), hprPart(-1, 0, api), nil},
			hprCase{obj + " bytes=-N over size", obj, hprRange("bytes=-" + strconv.FormatInt(size+5, 10)), hprPart(0, -1, api), nil},
			hprCase{obj + " bytes=0-M over size", obj, hprRange("bytes=0-" + strconv.FormatInt(size+100, 10)), hprPart(0, -1, api), nil},
			hprCase{obj + " bytes=size-", obj, hprRange("bytes=" + sz + "-"), hprStatus(416, api), nil},
			hprCase{obj + " bytes=size+1-", obj, hprRange("bytes=" + strconv.FormatInt(size+1, 10) + "-"), hprStatus(416, api), nil},
			hprCase{obj + " bytes=size-size+10", obj, hprRange("bytes=" + sz + "-" + strconv.FormatInt(size+10, 10)), hprStatus(416, seen), nil},
			hprCase{obj + " bytes=-0", obj, hprRange("bytes=-0"), hprStatus(416, seen), nil},
			hprCase{obj + " bytes=5-2 invalid", obj, hprRange("bytes=5-2"), hprWhole(seen), nil},
			hprCase{obj + " bytes=0-1,3-4", obj, hprRange("bytes=0-1,3-4"), hprWhole(multi), nil},
			hprCase{obj + " bytes=0-1, 3-4", obj, hprRange("bytes=0-1, 3-4"), hprWhole(multi), nil},
			hprCase{obj + " bytes=-", obj, hprRange("bytes=-"), hprWhole(seen), nil},
			hprCase{obj + " bytes=0--1", obj, hprRange("bytes=0--1"), hprWhole(seen), nil},
			hprCase{obj + " bytes=-1-", obj, hprRange("bytes=-1-"), hprWhole(seen), nil},
			hprCase{obj + " 0-1 no unit", obj, hprRange("0-1"), hprWhole(seen), nil},
			hprCase{obj + " items=0-1", obj, hprRange("items=0-1"), hprWhole(rfc), nil},
			// Whitespace: S3 documents nothing; compared only.
			hprCase{obj + " bytes= 0-1", obj, hprRange("bytes= 0-1"), hprUnknown, nil},
			hprCase{obj + " bytes=0 - 1", obj, hprRange("bytes=0 - 1"), hprUnknown, nil},
			hprCase{obj + " bytes =0-1", obj, hprRange("bytes =0-1"), hprUnknown, nil},
			hprCase{obj + " BYTES=0-1", obj, hprRange("BYTES=0-1"), hprUnknown, nil},
			hprCase{obj + " bytes=0-huge", obj, hprRange("bytes=0-99999999999999999999"), hprUnknown, nil},
			hprCase{obj + " bytes=huge-", obj, hprRange("bytes=99999999999999999999-"), hprUnknown, nil},
		)
	}
	// Every 416 case also has a "416 Content-Range" subtest: a hit's 416
	// says the size, Content-Range: bytes */<size> (see hpr416ContentRange).
	// It failed before the fix (writeError dropped the header, and nothing
	// set it).
	cases = append(cases,
		hprCase{"empty bytes=0-0", "empty", hprRange("bytes=0-0"), hprStatus(416, empty), nil},
		hprCase{"empty bytes=0-", "empty", hprRange("bytes=0-"), hprStatus(416, empty), nil},
		hprCase{"empty bytes=1-", "empty", hprRange("bytes=1-"), hprStatus(416, empty), nil},
		hprCase{"empty bytes=-0", "empty", hprRange("bytes=-0"), hprStatus(416, seen), nil},
		// RFC 7233 calls a non-zero suffix satisfiable even on an empty
		// representation; AWS's answer is not documented: compared only.
		hprCase{"empty bytes=-1", "empty", hprRange("bytes=-1"), hprUnknown, nil},
		hprCase{"empty bytes=5-2 invalid", "empty", hprRange("bytes=5-2"), hprWhole(seen), nil},
		hprCase{"empty bytes=0-1,3-4", "empty", hprRange("bytes=0-1,3-4"), hprWhole(multi), nil},
		hprCase{"empty bytes =0-1", "empty", hprRange("bytes =0-1"), hprUnknown, nil},
	)
	hprRun(t, f, cases)
}

// TestHitParityReviewConditionals: If-Match, If-None-Match,
// If-Modified-Since, If-Unmodified-Since, alone and together, and with
// Range and If-Range.
func TestHitParityReviewConditionals(t *testing.T) {
	f := hprSetup(t)
	const (
		im     = "AWS API If-Match: otherwise 412"
		inm    = "AWS API If-None-Match: otherwise 304"
		ims    = "AWS API If-Modified-Since: otherwise 304"
		ius    = "AWS API If-Unmodified-Since: otherwise 412"
		imIUS  = "AWS API: If-Match true + If-Unmodified-Since false = 200"
		inIMS  = "AWS API: If-None-Match false + If-Modified-Since true = 304"
		strong = "RFC 7232 3.1 / RFC 9110 13.1.1 (referenced by the AWS API): If-Match uses the strong comparison, a weak tag never matches"
		weak   = "RFC 9110 13.1.2: If-None-Match uses the weak comparison"
		order  = "RFC 9110 13.2.2: preconditions are evaluated before Range (step 5); If-Match/If-Unmodified-Since before If-None-Match"
		imsIgn = "RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is present"
		bad    = "RFC 9110 13.1.3/13.1.4: an invalid HTTP-date is ignored"
		fmts   = "RFC 9110 5.6.7: recipients accept the RFC 850 and asctime date forms"
		ifr    = "RFC 9110 13.1.5 (S3's Range refers to RFC 9110): a non-matching If-Range gets the whole 200"
		ifrOK  = "RFC 9110 13.1.5: a matching If-Range keeps the Range"
	)
	h := func(kv ...func(v hprVal) (string, string)) func(hprVal) map[string]string {
		return func(v hprVal) map[string]string {
			m := map[string]string{}
			for _, f := range kv {
				k, val := f(v)
				m[k] = val
			}
			return m
		}
	}
	set := func(k, v string) func(hprVal) (string, string) {
		return func(hprVal) (string, string) { return k, v }
	}
	etag := func(k string) func(hprVal) (string, string) {
		return func(v hprVal) (string, string) { return k, v.etag }
	}
	date := func(k string, d time.Duration) func(hprVal) (string, string) {
		return func(v hprVal) (string, string) { return k, hprDate(v.lm.Add(d)) }
	}
	list := func(k string) func(hprVal) (string, string) {
		return func(v hprVal) (string, string) { return k, `"0123", ` + v.etag }
	}
	weakTag := func(k string) func(hprVal) (string, string) {
		return func(v hprVal) (string, string) { return k, "W/" + v.etag }
	}
	rfc850 := func(k string) func(hprVal) (string, string) {
		return func(v hprVal) (string, string) { return k, v.lm.UTC().Format("Monday, 02-Jan-06 15:04:05 GMT") }
	}
	asctime := func(k string) func(hprVal) (string, string) {
		return func(v hprVal) (string, string) { return k, v.lm.UTC().Format(time.ANSIC) }
	}
	const s, l = time.Second, time.Hour
	cases := []hprCase{
		// If-Match
		{"If-Match matching", "ten", h(etag("If-Match")), hprWhole(im), nil},
		{"If-Match other", "ten", h(set("If-Match", `"0123456789abcdef0123456789abcdef"`)), hprStatus(412, im), nil},
		{"If-Match *", "ten", h(set("If-Match", "*")), hprWhole(im), nil},
		{"If-Match list", "ten", h(list("If-Match")), hprWhole(im), nil},
		// Failed before the fix: conditions.check trimmed W/ before
		// comparing, so a weak tag satisfied If-Match; the AWS API ("only if its ETag is
		// the same as the one specified", see RFC 7232) and RFC 9110 13.1.1
		// (strong comparison for If-Match) want 412. S3 never issues weak
		// ETags. AWS's own answer to W/ in If-Match was not verified.
		{"If-Match weak", "ten", h(weakTag("If-Match")), hprStatus(412, strong), nil},
		{"If-Match unquoted", "ten", func(v hprVal) map[string]string { return map[string]string{"If-Match": strings.Trim(v.etag, `"`)} }, hprUnknown, nil},
		// If-None-Match
		{"If-None-Match matching", "ten", h(etag("If-None-Match")), hprStatus(304, inm), nil},
		{"If-None-Match other", "ten", h(set("If-None-Match", `"0123456789abcdef0123456789abcdef"`)), hprWhole(inm), nil},
		{"If-None-Match *", "ten", h(set("If-None-Match", "*")), hprStatus(304, inm+" / RFC 9110 13.1.2"), nil},
		{"If-None-Match list", "ten", h(list("If-None-Match")), hprStatus(304, inm+" / RFC 9110 13.1.2"), nil},
		{"If-None-Match weak", "ten", h(weakTag("If-None-Match")), hprStatus(304, weak), nil},
		// If-Modified-Since
		{"If-Modified-Since before", "ten", h(date("If-Modified-Since", -l)), hprWhole(ims), nil},
		{"If-Modified-Since 1s before", "ten", h(date("If-Modified-Since", -s)), hprWhole(ims), nil},
		{"If-Modified-Since equal", "ten", h(date("If-Modified-Since", 0)), hprStatus(304, ims), nil},
		{"If-Modified-Since 1s after", "ten", h(date("If-Modified-Since", s)), hprStatus(304, ims), nil},
		{"If-Modified-Since future", "ten", h(date("If-Modified-Since", l)), hprUnknown, nil},
		{"If-Modified-Since malformed", "ten", h(set("If-Modified-Since", "yesterday")), hprWhole(bad), nil},
		{"If-Modified-Since RFC 850 equal", "ten", h(rfc850("If-Modified-Since")), hprStatus(304, fmts), nil},
		{"If-Modified-Since asctime equal", "ten", h(asctime("If-Modified-Since")), hprStatus(304, fmts), nil},
		// If-Unmodified-Since
		{"If-Unmodified-Since before", "ten", h(date("If-Unmodified-Since", -s)), hprStatus(412, ius), nil},
		{"If-Unmodified-Since equal", "ten", h(date("If-Unmodified-Since", 0)), hprWhole(ius), nil},
		{"If-Unmodified-Since after", "ten", h(date("If-Unmodified-Since", s)), hprWhole(ius), nil},
		{"If-Unmodified-Since malformed", "ten", h(set("If-Unmodified-Since", "not a date")), hprWhole(bad), nil},
		// Precedence
		{"If-Match true + If-Unmodified-Since false", "ten", h(etag("If-Match"), date("If-Unmodified-Since", -l)), hprWhole(imIUS), nil},
		{"If-Match false + If-Unmodified-Since true", "ten", h(set("If-Match", `"0123"`), date("If-Unmodified-Since", s)), hprStatus(412, im), nil},
		{"If-None-Match false + If-Modified-Since true", "ten", h(etag("If-None-Match"), date("If-Modified-Since", -l)), hprStatus(304, inIMS), nil},
		{"If-None-Match true + If-Modified-Since false", "ten", h(set("If-None-Match", `"0123"`), date("If-Modified-Since", s)), hprWhole(imsIgn), nil},
		{"If-Match false + If-None-Match false", "ten", h(set("If-Match", `"0123"`), etag("If-None-Match")), hprStatus(412, order), nil},
		{"If-Unmodified-Since false + If-None-Match false", "ten", h(date("If-Unmodified-Since", -l), etag("If-None-Match")), hprStatus(412, order), nil},
		{"If-Match true + If-None-Match false", "ten", h(etag("If-Match"), etag("If-None-Match")), hprStatus(304, order), nil},
		{"If-Match true + If-Modified-Since false", "ten", h(etag("If-Match"), date("If-Modified-Since", s)), hprStatus(304, order), nil},
		// With Range (boto3's ranged download sends If-Match)
		{"Range + If-Match matching", "ten", h(set("Range", "bytes=0-4"), etag("If-Match")), hprPart(0, 5, im), nil},
		{"Range + If-Match other", "ten", h(set("Range", "bytes=0-4"), set("If-Match", `"0123"`)), hprStatus(412, im), nil},
		{"Range + If-None-Match matching", "ten", h(set("Range", "bytes=0-4"), etag("If-None-Match")), hprStatus(304, order), nil},
		{"Range + If-Modified-Since equal", "ten", h(set("Range", "bytes=0-4"), date("If-Modified-Since", 0)), hprStatus(304, order), nil},
		{"Range + If-Unmodified-Since before", "ten", h(set("Range", "bytes=0-4"), date("If-Unmodified-Since", -l)), hprStatus(412, order), nil},
		{"big Range + If-Match matching", "big", h(set("Range", "bytes=100-40000"), etag("If-Match")), hprPart(100, 39901, im), nil},
		// Unsatisfiable ranges under a failing precondition: 412 / 304,
		// not 416 (the preconditions come first).
		// Failed on GET before the fix: getCached resolved the range
		// (cache.GetRange or byteRange.resolve, 416) before cond.answer,
		// while headCached evaluated the conditions first, so the same hit
		// answered HEAD 304/412 and GET 416. RFC 9110 13.2.2 orders preconditions (steps 1-4) before
		// Range (step 5); S3's API cites RFC 7232 (section 6, the same
		// order) for its conditional headers.
		{"unsatisfiable Range + If-Match other", "ten", h(set("Range", "bytes=20-"), set("If-Match", `"0123"`)), hprStatus(412, order), nil},
		{"unsatisfiable Range + If-None-Match matching", "ten", h(set("Range", "bytes=20-"), etag("If-None-Match")), hprStatus(304, order), nil},
		{"unsatisfiable Range + If-Unmodified-Since before", "ten", h(set("Range", "bytes=20-"), date("If-Unmodified-Since", -l)), hprStatus(412, order), nil},
		{"suffix -0 + If-None-Match matching", "ten", h(set("Range", "bytes=-0"), etag("If-None-Match")), hprStatus(304, order), nil},
		{"empty bytes=0-0 + If-None-Match matching", "empty", h(set("Range", "bytes=0-0"), etag("If-None-Match")), hprStatus(304, order), nil},
		{"empty bytes=0-0 + If-Match other", "empty", h(set("Range", "bytes=0-0"), set("If-Match", `"0123"`)), hprStatus(412, order), nil},
		{"empty If-None-Match matching", "empty", h(etag("If-None-Match")), hprStatus(304, inm), nil},
		{"empty If-Match matching", "empty", h(etag("If-Match")), hprWhole(im), nil},
		// If-Range. Failed before the fix (non-matching cases): s3edge
		// never read If-Range (not on a hit, and GetOptions cannot forward
		// it), so a stale validator still got 206 of the current object: a
		// resumed download spliced two versions. RFC 9110 13.1.5: a server that
		// supports Range MUST evaluate If-Range and send the whole
		// representation (200) when it does not match. The AWS API does
		// not list If-Range; users report S3 honours it (aws-sdk-kotlin
		// issue 1645). Not verified against AWS here.
		{"Range + If-Range matching ETag", "ten", h(set("Range", "bytes=0-4"), etag("If-Range")), hprPart(0, 5, ifrOK), nil},
		{"Range + If-Range other ETag", "ten", h(set("Range", "bytes=0-4"), set("If-Range", `"0123456789abcdef0123456789abcdef"`)), hprWhole(ifr), nil},
		{"Range + If-Range equal date", "ten", h(set("Range", "bytes=0-4"), date("If-Range", 0)), hprPart(0, 5, ifrOK), nil},
		{"Range + If-Range earlier date", "ten", h(set("Range", "bytes=0-4"), date("If-Range", -l)), hprWhole(ifr), nil},
	}
	hprRun(t, f, cases)
}
