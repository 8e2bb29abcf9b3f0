package sigv4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
)

// MaxChunkSize bounds the size one aws-chunked chunk may declare. The decoder
// streams, so this is not what bounds memory; it refuses absurd declarations
// early. SDKs send 64 KiB (minio-go, aws-sdk-go-v2), 128 KiB (Java) or
// 1 MiB (botocore) chunks.
const MaxChunkSize = 64 << 20

const (
	maxLineLen      = 4 << 10  // one chunk header or trailer line
	maxTrailerBytes = 16 << 10 // the whole trailer section
	chunkBufSize    = 8 << 10  // > maxLineLen, so a too-long line is detected, not split

	trailerSignatureName = "x-amz-trailer-signature"
)

// ChunkedReader decodes an aws-chunked body:
//
//	<hex-size>[;chunk-signature=<sig>]\r\n<data>\r\n … 0[;chunk-signature=<sig>]\r\n
//
// followed by "\r\n" or, in the trailer modes, by "name:value" lines, a
// signed "x-amz-trailer-signature:<sig>" line and a blank line. In the
// signed modes every chunk signature is checked against the chain that
// starts at the request signature. It returns decoded data as it arrives and
// io.EOF only after the final chunk, the trailers and the decoded length
// all verified (see the package comment for the contract). It is not safe
// for concurrent use.
type ChunkedReader struct {
	r          *bufio.Reader
	signed     bool // chunk signatures present and checked
	trailers   bool // a trailer section follows the final chunk
	chain      chain
	prev       [32]byte // previous signature in the chain
	declared   []string // X-Amz-Trailer names
	decodedLen int64    // -1 = unknown

	decoded   int64
	remaining int64 // data bytes left in the current chunk
	inChunk   bool  // data chunk open: CRLF and signature check pending
	want      [32]byte
	h         hash.Hash // hashes the current chunk (signed modes)
	sum       [32]byte  // chunk digest; a field so that it does not escape per chunk
	sts       []byte    // reused string-to-sign buffer
	trailer   http.Header
	err       error // sticky; io.EOF once verified
}

func newChunkedReader(body io.Reader, a *Auth) *ChunkedReader {
	cr := &ChunkedReader{
		r:          bufio.NewReaderSize(body, chunkBufSize),
		signed:     a.Payload == StreamingSigned || a.Payload == StreamingSignedTrailer,
		trailers:   a.Payload == StreamingSignedTrailer || a.Payload == StreamingUnsignedTrailer,
		declared:   a.Trailer,
		decodedLen: a.DecodedLength,
	}
	if a.chain != nil {
		cr.chain = *a.chain
		cr.prev = a.chain.seed
	}
	if cr.signed {
		cr.h = sha256.New()
	}
	return cr
}

// Trailer returns the trailing headers (for example x-amz-checksum-crc32)
// once Read has returned io.EOF, and nil before that or when there were
// none. Keys are in canonical form, values trimmed.
func (cr *ChunkedReader) Trailer() http.Header {
	if cr.err != io.EOF {
		return nil
	}
	return cr.trailer
}

// Read implements io.Reader.
func (cr *ChunkedReader) Read(p []byte) (int, error) {
	if cr.err != nil {
		return 0, cr.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for cr.remaining == 0 {
		if cr.inChunk {
			if err := cr.endChunk(); err != nil {
				return 0, cr.fail(err)
			}
		}
		last, err := cr.readChunkHeader()
		if err != nil {
			return 0, cr.fail(err)
		}
		if last {
			if err := cr.finish(); err != nil {
				return 0, cr.fail(err)
			}
			cr.err = io.EOF
			return 0, io.EOF
		}
	}
	if int64(len(p)) > cr.remaining {
		p = p[:cr.remaining]
	}
	n, err := cr.r.Read(p)
	if cr.signed {
		cr.h.Write(p[:n])
	}
	cr.remaining -= int64(n)
	cr.decoded += int64(n)
	switch {
	case err == io.EOF:
		// Whatever was due next (data, CRLF, final chunk) is missing.
		return n, cr.fail(fmt.Errorf("%w: body ended inside a chunk", ErrIncompleteBody))
	case err != nil:
		return n, cr.fail(err)
	}
	return n, nil
}

func (cr *ChunkedReader) fail(err error) error {
	cr.err = err
	return err
}

// endChunk consumes the CRLF after chunk data and checks its signature.
func (cr *ChunkedReader) endChunk() error {
	if err := cr.readCRLF("chunk data"); err != nil {
		return err
	}
	cr.inChunk = false
	return cr.verifyChunk()
}

// readCRLF consumes the CRLF that ends chunk data.
func (cr *ChunkedReader) readCRLF(after string) error {
	for _, want := range [2]byte{'\r', '\n'} {
		c, err := cr.r.ReadByte()
		if err != nil {
			return eofIsIncomplete(err, "before the CRLF after "+after)
		}
		if c != want {
			return fmt.Errorf("%w: %s not followed by CRLF", ErrMalformedChunk, after)
		}
	}
	return nil
}

// verifyChunk checks the signature of the chunk just read (signed modes):
// HMAC(key, "AWS4-HMAC-SHA256-PAYLOAD\n" + date + "\n" + scope + "\n" +
// previous signature + "\n" + hex(sha256("")) + "\n" + hex(sha256(data))).
func (cr *ChunkedReader) verifyChunk() error {
	if !cr.signed {
		return nil
	}
	cr.h.Sum(cr.sum[:0])
	cr.h.Reset()
	b := cr.stsPrefix("AWS4-HMAC-SHA256-PAYLOAD\n")
	b = append(b, emptySHA256+"\n"...)
	b = hex.AppendEncode(b, cr.sum[:])
	return cr.check(b, "chunk")
}

// stsPrefix starts a chunk or trailer string to sign in cr.sts.
func (cr *ChunkedReader) stsPrefix(alg string) []byte {
	b := append(cr.sts[:0], alg...)
	b = append(b, cr.chain.amzDate...)
	b = append(b, '\n')
	b = append(b, cr.chain.scope...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, cr.prev[:])
	return append(b, '\n')
}

// check compares the signature of sts with cr.want and advances the chain.
func (cr *ChunkedReader) check(sts []byte, what string) error {
	cr.sts = sts
	sig := hmacSHA256(cr.chain.key[:], sts)
	if subtle.ConstantTimeCompare(sig[:], cr.want[:]) != 1 {
		return fmt.Errorf("%w: %s ending at decoded byte %d", ErrChunkSignatureMismatch, what, cr.decoded)
	}
	cr.prev = sig
	return nil
}

func eofIsIncomplete(err error, where string) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: body ended %s", ErrIncompleteBody, where)
	}
	return err
}

// readLine returns the next line including its '\n', bounded by maxLineLen.
// At a clean end of input it returns io.EOF and no line.
func (cr *ChunkedReader) readLine() ([]byte, error) {
	line, err := cr.r.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull || len(line) > maxLineLen:
		return nil, fmt.Errorf("%w: line longer than %d bytes", ErrMalformedChunk, maxLineLen)
	case err == io.EOF && len(line) == 0:
		return nil, io.EOF
	case err != nil:
		return nil, eofIsIncomplete(err, "inside a line")
	}
	return line, nil
}

// readChunkHeader parses "<hex-size>[;chunk-signature=<64 hex>]\r\n". It
// reports whether this is the final (zero-size) chunk, whose signature it
// checks at once since no data follows.
func (cr *ChunkedReader) readChunkHeader() (last bool, err error) {
	line, err := cr.readLine()
	if err != nil {
		return false, eofIsIncomplete(err, "before the final chunk")
	}
	line, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return false, fmt.Errorf("%w: chunk header not terminated by CRLF", ErrMalformedChunk)
	}
	sizeHex, ext, hasExt := bytes.Cut(line, []byte(";"))
	size, err := parseChunkSize(sizeHex)
	if err != nil {
		return false, err
	}
	if cr.signed {
		sig, ok := bytes.CutPrefix(ext, []byte("chunk-signature="))
		if !hasExt || !ok {
			return false, fmt.Errorf("%w: chunk header lacks chunk-signature", ErrMalformedChunk)
		}
		if cr.want, err = decodeSignature(sig); err != nil {
			return false, fmt.Errorf("%w: chunk-signature is not 64 lower-case hex digits", ErrMalformedChunk)
		}
	} else if hasExt {
		return false, fmt.Errorf("%w: chunk extension in an unsigned aws-chunked body", ErrMalformedChunk)
	}
	if cr.decodedLen >= 0 && size > cr.decodedLen-cr.decoded {
		return false, fmt.Errorf("%w: chunks exceed %d bytes", ErrDecodedLengthMismatch, cr.decodedLen)
	}
	if size == 0 {
		return true, cr.verifyChunk()
	}
	cr.remaining, cr.inChunk = size, true
	return false, nil
}

// parseChunkSize parses a hex chunk size (leading zeros allowed) without
// overflow, bounded by MaxChunkSize.
func parseChunkSize(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, fmt.Errorf("%w: empty chunk size", ErrMalformedChunk)
	}
	var n int64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("%w: chunk size is not hex", ErrMalformedChunk)
		}
		n = n<<4 | int64(d)
		if n > MaxChunkSize {
			return 0, fmt.Errorf("%w: chunk larger than %d bytes", ErrMalformedChunk, MaxChunkSize)
		}
	}
	return n, nil
}

// finish reads what follows the final chunk and checks the decoded length.
func (cr *ChunkedReader) finish() error {
	if cr.trailers {
		if err := cr.readTrailers(); err != nil {
			return err
		}
	} else {
		if err := cr.readCRLF("the final chunk"); err != nil {
			return err
		}
		if err := cr.expectEOF(); err != nil {
			return err
		}
	}
	if cr.decodedLen >= 0 && cr.decoded != cr.decodedLen {
		return fmt.Errorf("%w: got %d bytes, declared %d", ErrDecodedLengthMismatch, cr.decoded, cr.decodedLen)
	}
	return nil
}

func (cr *ChunkedReader) expectEOF() error {
	switch _, err := cr.r.ReadByte(); {
	case err == io.EOF:
		return nil
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: data after the final chunk", ErrMalformedChunk)
}

// readTrailers reads "name:value" lines up to the end of the body. Blank
// lines are skipped: the section ends with one, and minio-go writes
// "name:value\n" followed by CRLF. In the signed mode the last line must be
// x-amz-trailer-signature over the other lines as sent, each ended by '\n'.
// Every trailer must have been declared in X-Amz-Trailer, and every declared
// one must be present.
func (cr *ChunkedReader) readTrailers() error {
	var canon []byte
	var gotSig bool
	total := 0
	for {
		line, err := cr.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if total += len(line); total > maxTrailerBytes {
			return fmt.Errorf("%w: trailer section longer than %d bytes", ErrMalformedChunk, maxTrailerBytes)
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if len(line) == 0 {
			continue
		}
		if gotSig {
			return fmt.Errorf("%w: trailer after x-amz-trailer-signature", ErrMalformedChunk)
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok {
			return fmt.Errorf("%w: trailer line without ':'", ErrMalformedChunk)
		}
		// Only optional whitespace (SP, HTAB) is trimmed: anything else in
		// the signature line would be a byte the signature does not cover.
		name = strings.ToLower(strings.Trim(name, " \t"))
		value = strings.Trim(value, " \t")
		if name == trailerSignatureName {
			if !cr.signed {
				return fmt.Errorf("%w: trailer signature in an unsigned body", ErrMalformedChunk)
			}
			if cr.want, err = decodeSignature(value); err != nil {
				return fmt.Errorf("%w: x-amz-trailer-signature is not 64 lower-case hex digits", ErrMalformedChunk)
			}
			gotSig = true
			continue
		}
		if err := cr.addTrailer(name, value); err != nil {
			return err
		}
		canon = append(append(canon, line...), '\n')
	}
	if cr.signed {
		if !gotSig {
			return fmt.Errorf("%w: x-amz-trailer-signature missing", ErrChunkSignatureMismatch)
		}
		sum := sha256.Sum256(canon)
		if err := cr.check(hex.AppendEncode(cr.stsPrefix("AWS4-HMAC-SHA256-TRAILER\n"), sum[:]), "trailer"); err != nil {
			return err
		}
	}
	for _, name := range cr.declared {
		if cr.trailer.Get(name) == "" {
			return fmt.Errorf("%w: declared trailer %s missing", ErrMalformedChunk, name)
		}
	}
	return nil
}

func (cr *ChunkedReader) addTrailer(name, value string) error {
	if !isLowerToken(name) {
		return fmt.Errorf("%w: trailer name %q", ErrMalformedChunk, truncate(name))
	}
	declared := false
	for _, d := range cr.declared {
		declared = declared || d == name
	}
	if !declared {
		return fmt.Errorf("%w: trailer %s not declared in x-amz-trailer", ErrMalformedChunk, name)
	}
	if cr.trailer == nil {
		cr.trailer = make(http.Header, len(cr.declared))
	}
	if cr.trailer.Get(name) != "" {
		return fmt.Errorf("%w: trailer %s sent twice", ErrMalformedChunk, name)
	}
	if value == "" {
		return fmt.Errorf("%w: trailer %s is empty", ErrMalformedChunk, name)
	}
	cr.trailer.Set(name, value)
	return nil
}

var _ io.Reader = (*ChunkedReader)(nil)
