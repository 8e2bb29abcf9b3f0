package sigv4

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	algorithmHMAC  = "AWS4-HMAC-SHA256"
	algorithmECDSA = "AWS4-ECDSA-P256-SHA256" // SigV4a
	scopeTerminal  = "aws4_request"
	iso8601Basic   = "20060102T150405Z"
	yyyymmdd       = "20060102"

	maxSignedHeaders = 64 // far above what any SDK signs; bounds the work per request
	maxTrailers      = 16
)

// credential is a parsed "AKID/yyyymmdd/region/service/aws4_request".
type credential struct {
	accessKeyID string
	date        string // yyyymmdd
	region      string
	service     string
	scope       string // everything after "AKID/", as it goes into the string to sign
}

// parseCredential splits from the right so that the scope is always the last
// four elements; the access key ID is everything before them.
func parseCredential(s string) (credential, error) {
	var c credential
	end := len(s)
	var parts [4]string
	for i := 3; i >= 0; i-- {
		j := strings.LastIndexByte(s[:end], '/')
		if j < 0 {
			return c, fmt.Errorf("%w: credential has fewer than 5 parts", ErrMalformedAuth)
		}
		parts[i] = s[j+1 : end]
		end = j
	}
	c.accessKeyID, c.date, c.region, c.service = s[:end], parts[0], parts[1], parts[2]
	c.scope = s[end+1:]
	switch {
	case c.accessKeyID == "":
		return c, fmt.Errorf("%w: empty access key id in credential", ErrMalformedAuth)
	case parts[3] != scopeTerminal:
		return c, fmt.Errorf("%w: credential scope must end in %s", ErrMalformedAuth, scopeTerminal)
	case c.region == "" || c.service == "":
		return c, fmt.Errorf("%w: empty region or service in credential", ErrMalformedAuth)
	case len(c.date) != 8:
		return c, fmt.Errorf("%w: credential date %q is not yyyymmdd", ErrMalformedAuth, c.date)
	}
	if !validYMD(c.date) {
		return c, fmt.Errorf("%w: credential date %q is not yyyymmdd", ErrMalformedAuth, c.date)
	}
	return c, nil
}

// authHeader is a parsed Authorization header value.
type authHeader struct {
	cred          credential
	signedHeaders string // as sent: it goes verbatim into the canonical request
	signature     [32]byte
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
// Signature=…". The three parts may come in any order, separated by commas
// with optional spaces. SigV2 ("AWS AKID:sig", see verifyV2Header) and
// SigV4a are ErrUnsupported here;
// anything else unknown is ErrMalformedAuth.
func parseAuthorization(v string) (authHeader, error) {
	var a authHeader
	alg, rest, _ := strings.Cut(strings.TrimLeft(v, " "), " ")
	switch alg {
	case algorithmHMAC:
	case "AWS":
		return a, fmt.Errorf("%w: signature version 2", ErrUnsupported)
	case algorithmECDSA:
		return a, fmt.Errorf("%w: %s (SigV4a)", ErrUnsupported, alg)
	default:
		return a, fmt.Errorf("%w: unknown authorization algorithm", ErrMalformedAuth)
	}
	var cred, sig string
	var haveCred, haveSH, haveSig bool
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = strings.Trim(part, " ")
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, fmt.Errorf("%w: authorization component %q has no '='", ErrMalformedAuth, truncate(part))
		}
		var seen *bool
		switch key {
		case "Credential":
			cred, seen = val, &haveCred
		case "SignedHeaders":
			a.signedHeaders, seen = val, &haveSH
		case "Signature":
			sig, seen = val, &haveSig
		default:
			return a, fmt.Errorf("%w: unknown authorization component %q", ErrMalformedAuth, truncate(key))
		}
		if *seen {
			return a, fmt.Errorf("%w: duplicate authorization component %s", ErrMalformedAuth, key)
		}
		*seen = true
	}
	if !haveCred || !haveSH || !haveSig {
		return a, fmt.Errorf("%w: authorization needs Credential, SignedHeaders and Signature", ErrMalformedAuth)
	}
	var err error
	if a.cred, err = parseCredential(cred); err != nil {
		return a, err
	}
	if a.signature, err = decodeSignature(sig); err != nil {
		return a, err
	}
	return a, nil
}

// presign holds the X-Amz-* parameters of a presigned URL.
type presign struct {
	cred          credential
	amzDate       string
	date          time.Time
	expires       time.Duration
	signedHeaders string
	signature     [32]byte
	contentSHA256 string // X-Amz-Content-Sha256 from the query, if any
}

// presignParams are the query parameters parsePresigned reads.
var presignParams = [...]string{
	"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Content-Sha256",
}

// parsePresigned extracts and validates the presign parameters. maxExpiry
// bounds X-Amz-Expires; time checks are the caller's.
func parsePresigned(q []param, maxExpiry time.Duration) (presign, error) {
	var p presign
	var vals [len(presignParams)]string
	var seen [len(presignParams)]bool
	for i := range q {
		for j, name := range presignParams {
			if q[i].key != name {
				continue
			}
			if seen[j] {
				return p, fmt.Errorf("%w: duplicate %s", ErrMalformedAuth, name)
			}
			v, err := q[i].decodedValue()
			if err != nil {
				return p, err
			}
			vals[j], seen[j] = v, true
		}
	}
	for j, name := range presignParams[:6] {
		if !seen[j] {
			return p, fmt.Errorf("%w: presigned url lacks %s", ErrMalformedAuth, name)
		}
	}
	switch vals[0] {
	case algorithmHMAC:
	case algorithmECDSA:
		return p, fmt.Errorf("%w: %s (SigV4a)", ErrUnsupported, vals[0])
	default:
		return p, fmt.Errorf("%w: unknown X-Amz-Algorithm", ErrMalformedAuth)
	}
	var err error
	if p.cred, err = parseCredential(vals[1]); err != nil {
		return p, err
	}
	p.amzDate = vals[2]
	var ok bool
	if p.date, ok = parseBasic(p.amzDate); !ok {
		return p, fmt.Errorf("%w: X-Amz-Date %q is not ISO 8601 basic", ErrMalformedAuth, truncate(p.amzDate))
	}
	secs, err := strconv.ParseInt(vals[3], 10, 64)
	if err != nil || secs <= 0 || vals[3][0] == '+' {
		return p, fmt.Errorf("%w: X-Amz-Expires %q is not a positive integer", ErrMalformedAuth, truncate(vals[3]))
	}
	if secs > int64(maxExpiry/time.Second) {
		return p, fmt.Errorf("%w: X-Amz-Expires %d exceeds %d seconds", ErrMalformedAuth, secs, int64(maxExpiry/time.Second))
	}
	p.expires = time.Duration(secs) * time.Second
	p.signedHeaders = vals[4]
	if p.signature, err = decodeSignature(vals[5]); err != nil {
		return p, err
	}
	if seen[6] {
		p.contentSHA256 = vals[6]
	}
	return p, nil
}

// parseSignedHeaders validates a SignedHeaders list: lower-case tokens, no
// duplicates, host included. The order is the client's: it is used as is.
func parseSignedHeaders(s string) ([]string, error) {
	n := strings.Count(s, ";") + 1
	if n > maxSignedHeaders {
		return nil, fmt.Errorf("%w: more than %d signed headers", ErrMalformedAuth, maxSignedHeaders)
	}
	names := make([]string, 0, n)
	host := false
	for name := range strings.SplitSeq(s, ";") {
		if !isLowerToken(name) {
			return nil, fmt.Errorf("%w: signed header %q is not a lower-case header name", ErrMalformedAuth, truncate(name))
		}
		for _, prev := range names {
			if prev == name {
				return nil, fmt.Errorf("%w: signed header %q listed twice", ErrMalformedAuth, name)
			}
		}
		host = host || name == "host"
		names = append(names, name)
	}
	if !host {
		return nil, fmt.Errorf("%w: host is not a signed header", ErrMalformedAuth)
	}
	return names, nil
}

// isLowerToken reports whether s is a non-empty RFC 9110 token without
// upper-case letters.
func isLowerToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// decodeSignature decodes 64 lower-case hex digits. Upper case is refused:
// every signer emits lower case, and accepting both would let two different
// header strings carry the same signature.
func decodeSignature[T string | []byte](s T) ([32]byte, error) {
	var sig [32]byte
	if len(s) != 64 {
		return sig, fmt.Errorf("%w: signature is not 64 hex digits", ErrMalformedAuth)
	}
	for i := 0; i < 32; i++ {
		hi, ok1 := lowerHexVal(s[2*i])
		lo, ok2 := lowerHexVal(s[2*i+1])
		if !ok1 || !ok2 {
			return sig, fmt.Errorf("%w: signature is not lower-case hex", ErrMalformedAuth)
		}
		sig[i] = hi<<4 | lo
	}
	return sig, nil
}

func lowerHexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// requestTime returns the signed request time and its ISO 8601 basic form,
// from X-Amz-Date or, failing that, the Date header (ISO 8601 basic or an
// HTTP date; the string to sign always uses the basic form).
func requestTime(h http.Header) (time.Time, string, error) {
	if v := h.Values("X-Amz-Date"); len(v) > 0 {
		if len(v) > 1 {
			return time.Time{}, "", fmt.Errorf("%w: several X-Amz-Date headers", ErrMalformedAuth)
		}
		t, ok := parseBasic(v[0])
		if !ok {
			return time.Time{}, "", fmt.Errorf("%w: X-Amz-Date %q is not ISO 8601 basic", ErrMalformedAuth, truncate(v[0]))
		}
		return t, v[0], nil
	}
	v := h.Get("Date")
	if v == "" {
		return time.Time{}, "", fmt.Errorf("%w: neither X-Amz-Date nor Date is present", ErrMalformedAuth)
	}
	t, err := time.Parse(iso8601Basic, v)
	if err != nil {
		if t, err = http.ParseTime(v); err != nil {
			return time.Time{}, "", fmt.Errorf("%w: Date %q is not a valid date", ErrMalformedAuth, truncate(v))
		}
	}
	t = t.UTC()
	if t.Year() < 1000 || t.Year() > 9999 { // keep the basic form 16 bytes long
		return time.Time{}, "", fmt.Errorf("%w: Date %q out of range", ErrMalformedAuth, truncate(v))
	}
	return t, t.Format(iso8601Basic), nil
}

// parseTrailerNames reads X-Amz-Trailer: comma-separated header names,
// possibly over several header lines, returned lower-case.
func parseTrailerNames(h http.Header) ([]string, error) {
	vals := h.Values("X-Amz-Trailer")
	if len(vals) == 0 {
		return nil, nil
	}
	var names []string
	for _, v := range vals {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if !isLowerToken(name) {
				return nil, fmt.Errorf("%w: x-amz-trailer name %q is not a header name", ErrMalformedAuth, truncate(name))
			}
			if len(names) == maxTrailers {
				return nil, fmt.Errorf("%w: more than %d trailers", ErrMalformedAuth, maxTrailers)
			}
			for _, prev := range names {
				if prev == name {
					return nil, fmt.Errorf("%w: trailer %q declared twice", ErrMalformedAuth, name)
				}
			}
			names = append(names, name)
		}
	}
	return names, nil
}

// parseDecodedLength reads X-Amz-Decoded-Content-Length; -1 when absent.
func parseDecodedLength(h http.Header) (int64, error) {
	vals := h.Values("X-Amz-Decoded-Content-Length")
	switch len(vals) {
	case 0:
		return -1, nil
	case 1:
		n, err := strconv.ParseInt(vals[0], 10, 64)
		if err != nil || n < 0 || vals[0][0] == '+' {
			return 0, fmt.Errorf("%w: x-amz-decoded-content-length %q", ErrMalformedAuth, truncate(vals[0]))
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: several x-amz-decoded-content-length headers", ErrMalformedAuth)
}

// truncate bounds client-supplied text quoted in error messages, so that a
// hostile header cannot bloat logs.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
