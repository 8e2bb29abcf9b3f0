package checksum

import (
	"bytes"
	"fmt"
	"hash"
	"io"
	"net/http"
	"slices"
)

// Options configures a Reader beyond the header checksums.
type Options struct {
	// Trailer returns the trailing headers once the wrapped reader has
	// returned io.EOF, for example sigv4's ChunkedReader.Trailer. It is
	// called once, at EOF.
	Trailer func() http.Header
	// TrailerNames are the declared trailers (X-Amz-Trailer). Those that
	// name a checksum must arrive and match; others are ignored.
	TrailerNames []string
	// Compute lists digests to compute even if nothing is checked against
	// them, for Sum: typically MD5 (the ETag) or SHA256 (a content hash).
	// Everything else costs nothing when not needed.
	Compute []Algorithm
}

// Reader verifies a payload while it is read. It is not safe for
// concurrent use.
type Reader struct {
	r        io.Reader
	want     []Expect
	trailer  func() http.Header
	trailers []Algorithm // checksums declared as trailers
	hashes   []digest
	err      error // sticky; io.EOF once verified
}

type digest struct {
	alg Algorithm
	h   hash.Hash
	sum []byte // set at EOF
}

// NewReader returns a Reader over r that checks want (from FromHeader) and
// the declared trailing checksums, computing every digest in one pass.
// It fails with ErrInvalidDigest if want holds an invalid value or a
// declared trailer is an x-amz-checksum we do not support.
func NewReader(r io.Reader, want []Expect, opt Options) (*Reader, error) {
	cr := &Reader{r: r, want: want, trailer: opt.Trailer}
	for _, e := range want {
		if !e.Algorithm.valid() || len(e.Digest) != e.Algorithm.Size() {
			return nil, fmt.Errorf("%w: %v digest of %d bytes", ErrInvalidDigest, e.Algorithm, len(e.Digest))
		}
		cr.need(e.Algorithm)
	}
	for _, name := range opt.TrailerNames {
		a, isChecksum := classify(name)
		switch {
		case !isChecksum:
			continue
		case a == 0:
			return nil, fmt.Errorf("%w: unsupported checksum trailer %s", ErrInvalidDigest, truncate(name))
		case !slices.Contains(cr.trailers, a):
			cr.trailers = append(cr.trailers, a)
			cr.need(a)
		}
	}
	for _, a := range opt.Compute {
		if !a.valid() {
			return nil, fmt.Errorf("checksum: compute: invalid algorithm %v", a)
		}
		cr.need(a)
	}
	return cr, nil
}

// need adds a hash for a, once.
func (cr *Reader) need(a Algorithm) {
	if !slices.ContainsFunc(cr.hashes, func(d digest) bool { return d.alg == a }) {
		cr.hashes = append(cr.hashes, digest{alg: a, h: a.New()})
	}
}

// Read implements io.Reader. At the end of the payload it returns io.EOF
// only if every checksum matched; otherwise a *MismatchError (ErrBadDigest)
// or, for a malformed trailer value, ErrInvalidDigest.
func (cr *Reader) Read(p []byte) (int, error) {
	if cr.err != nil {
		return 0, cr.err
	}
	n, err := cr.r.Read(p)
	for _, d := range cr.hashes {
		d.h.Write(p[:n])
	}
	switch {
	case err == io.EOF:
		if verr := cr.verify(); verr != nil {
			err = verr
		}
		cr.err = err
	case err != nil:
		cr.err = err
	}
	return n, err
}

func (cr *Reader) verify() error {
	for i := range cr.hashes {
		cr.hashes[i].sum = cr.hashes[i].h.Sum(nil)
	}
	for _, e := range cr.want {
		if !bytes.Equal(cr.sum(e.Algorithm), e.Digest) {
			return &MismatchError{Algorithm: e.Algorithm}
		}
	}
	if len(cr.trailers) == 0 {
		return nil
	}
	var tr http.Header
	if cr.trailer != nil {
		tr = cr.trailer()
	}
	for _, a := range cr.trailers {
		v := tr.Get(a.Header())
		if v == "" {
			return &MismatchError{Algorithm: a, Trailer: true, Missing: true}
		}
		want, err := Decode(a, v)
		if err != nil {
			return fmt.Errorf("checksum: trailer: %w", err)
		}
		if !bytes.Equal(cr.sum(a), want) {
			return &MismatchError{Algorithm: a, Trailer: true}
		}
	}
	return nil
}

func (cr *Reader) sum(a Algorithm) []byte {
	for _, d := range cr.hashes {
		if d.alg == a {
			return d.sum
		}
	}
	return nil
}

// Sum returns the digest of algorithm a once Read has returned io.EOF, if a
// was checked or listed in Options.Compute; otherwise nil.
func (cr *Reader) Sum(a Algorithm) []byte {
	if cr.err != io.EOF {
		return nil
	}
	return cr.sum(a)
}
