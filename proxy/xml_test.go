package proxy

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseCompleteRequest(t *testing.T) {
	part := func(n int, etag string) string {
		return fmt.Sprintf("<Part><ETag>%s</ETag><PartNumber>%d</PartNumber></Part>", etag, n)
	}
	doc := func(parts ...string) string {
		return `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` + strings.Join(parts, "") + `</CompleteMultipartUpload>`
	}
	tests := []struct {
		name, body string
		want       *APIError
		n          int
	}{
		{"ok", doc(part(1, `"a"`), part(2, `"b"`)), nil, 2},
		{"checksums ignored", doc(`<Part><ETag>"a"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32><PartNumber>1</PartNumber></Part>`), nil, 1},
		{"empty", doc(), errMalformedXML, 0},
		{"not xml", "{}", errMalformedXML, 0},
		{"wrong root", "<Delete/>", errMalformedXML, 0},
		{"truncated", doc(part(1, "a"))[:40], errMalformedXML, 0},
		{"order", doc(part(2, "a"), part(1, "b")), errInvalidPartOrder, 0},
		{"duplicate", doc(part(1, "a"), part(1, "b")), errInvalidPartOrder, 0},
		{"zero part", doc(part(0, "a")), errInvalidPart, 0},
		{"no etag", doc(part(1, "")), errInvalidPart, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts, err := parseCompleteRequest([]byte(tt.body))
			if tt.want != nil {
				if err != tt.want {
					t.Fatalf("error = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil || len(parts) != tt.n {
				t.Fatalf("parseCompleteRequest = %v, %v; want %d parts", parts, err, tt.n)
			}
		})
	}
}

func TestParseDeleteRequest(t *testing.T) {
	ok := `<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b&amp;c</Key></Object></Delete>`
	req, err := parseDeleteRequest([]byte(ok))
	if err != nil || !req.Quiet || len(req.Objects) != 2 || req.Objects[1].Key != "b&c" {
		t.Fatalf("parseDeleteRequest = %+v, %v", req, err)
	}
	many := "<Delete>" + strings.Repeat("<Object><Key>k</Key></Object>", 1001) + "</Delete>"
	for _, bad := range []string{"", "<Delete/>", "<Delete><Object><Key></Key></Object></Delete>", many, "<Delete><Object>", "<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><Delete><Object><Key>&e;</Key></Object></Delete>"} {
		if _, err := parseDeleteRequest([]byte(bad)); err != errMalformedXML {
			t.Errorf("parseDeleteRequest(%.40q) error = %v, want MalformedXML", bad, err)
		}
	}
}

func FuzzRequestXML(f *testing.F) {
	f.Add([]byte(`<Delete><Object><Key>a</Key></Object></Delete>`))
	f.Add([]byte(`<CompleteMultipartUpload><Part><ETag>"a"</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if req, err := parseDeleteRequest(body); err == nil {
			if len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
				t.Fatalf("accepted %d objects", len(req.Objects))
			}
		} else if err != errMalformedXML {
			t.Fatalf("unexpected error %v", err)
		}
		if parts, err := parseCompleteRequest(body); err == nil {
			for i := 1; i < len(parts); i++ {
				if parts[i].PartNumber <= parts[i-1].PartNumber {
					t.Fatal("accepted unordered parts")
				}
			}
		} else if toAPIError(err).Status != 400 {
			t.Fatalf("unexpected error %v", err)
		}
	})
}

func TestCapListing(t *testing.T) {
	res := &listBucketResult{MaxKeys: 3,
		Contents:       []listedObject{{Key: "a"}, {Key: "c"}, {Key: "e"}},
		CommonPrefixes: []commonPrefix{{Prefix: "b/"}, {Prefix: "d/"}},
	}
	last, ok := capListing(res)
	if !ok || last != "c" || len(res.Contents) != 2 || len(res.CommonPrefixes) != 1 || res.CommonPrefixes[0].Prefix != "b/" {
		t.Errorf("capListing = %q, %v, %+v", last, ok, res)
	}
	if _, ok := capListing(res); ok {
		t.Error("a page within MaxKeys was capped")
	}
}
