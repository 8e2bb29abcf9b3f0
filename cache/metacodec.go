package cache

import (
	"encoding/binary"
	"errors"
	"time"
	"unsafe"
)

// The encoded form of a Meta, kept in memory by every entry and stored in
// index.db. It is immutable once built: decodeMeta returns strings that
// alias it, so a hit decodes without copying.
//
//	[0]      format version: 1, or 2 with a Tag
//	[1:9]    StoredAt, Unix nanoseconds
//	[9:17]   Size
//	[17:25]  LastModified, Unix nanoseconds (0: zero time)
//	uvarint-prefixed ETag, ContentType
//	uvarint header count, then uvarint-prefixed name and value pairs
//	version 2: uvarint-prefixed Tag
//
// Entries without a Tag keep version 1, which every earlier release reads.
const (
	metaVersion    = 1
	metaVersionTag = 2
	metaFixedLen   = 25
)

var errBadMeta = errors.New("cache: malformed metadata record")

// encodeMeta encodes m; SHA256 is kept elsewhere.
func encodeMeta(m *Meta) []byte {
	n := metaFixedLen + len(m.ETag) + len(m.ContentType) + len(m.Tag) + 4*binary.MaxVarintLen32
	for k, v := range m.Header {
		n += len(k) + len(v) + 2*binary.MaxVarintLen32
	}
	b := make([]byte, metaFixedLen, n)
	b[0] = metaVersion
	if m.Tag != "" {
		b[0] = metaVersionTag
	}
	binary.LittleEndian.PutUint64(b[1:], uint64(unixNano(m.StoredAt)))
	binary.LittleEndian.PutUint64(b[9:], uint64(m.Size))
	binary.LittleEndian.PutUint64(b[17:], uint64(unixNano(m.LastModified)))
	b = appendString(b, m.ETag)
	b = appendString(b, m.ContentType)
	b = binary.AppendUvarint(b, uint64(len(m.Header)))
	for k, v := range m.Header {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	if m.Tag != "" {
		b = appendString(b, m.Tag)
	}
	return b
}

// knownMetaFormat reports whether b starts like a record this version
// reads; the rest is checked when the entry is first decoded.
func knownMetaFormat(b []byte) bool {
	return len(b) >= metaFixedLen && (b[0] == metaVersion || b[0] == metaVersionTag)
}

// withStoredAt returns a copy of the encoded meta b with StoredAt set to t.
func withStoredAt(b []byte, t time.Time) []byte {
	c := append([]byte(nil), b...)
	binary.LittleEndian.PutUint64(c[1:], uint64(unixNano(t)))
	return c
}

// metaStoredAt reads StoredAt without decoding the rest.
func metaStoredAt(b []byte) time.Time {
	return fromUnixNano(int64(binary.LittleEndian.Uint64(b[1:])))
}

// metaSize reads Size without decoding the rest.
func metaSize(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b[9:])) }

// decodeMeta decodes b into m. The strings alias b.
func decodeMeta(b []byte, m *Meta) error {
	if !knownMetaFormat(b) {
		return errBadMeta
	}
	m.StoredAt = fromUnixNano(int64(binary.LittleEndian.Uint64(b[1:])))
	m.Size = int64(binary.LittleEndian.Uint64(b[9:]))
	m.LastModified = fromUnixNano(int64(binary.LittleEndian.Uint64(b[17:])))
	rest := b[metaFixedLen:]
	var ok bool
	if m.ETag, rest, ok = readString(rest); !ok {
		return errBadMeta
	}
	if m.ContentType, rest, ok = readString(rest); !ok {
		return errBadMeta
	}
	nh, w := binary.Uvarint(rest)
	if w <= 0 || nh > uint64(len(rest)) {
		return errBadMeta
	}
	rest = rest[w:]
	m.Header = nil
	if nh > 0 {
		m.Header = make(map[string]string, nh)
	}
	for range nh {
		var k, v string
		if k, rest, ok = readString(rest); !ok {
			return errBadMeta
		}
		if v, rest, ok = readString(rest); !ok {
			return errBadMeta
		}
		m.Header[k] = v
	}
	m.Tag = ""
	if b[0] == metaVersionTag {
		if m.Tag, rest, ok = readString(rest); !ok || m.Tag == "" {
			return errBadMeta
		}
	}
	if len(rest) != 0 {
		return errBadMeta
	}
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, bool) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return "", nil, false
	}
	b = b[w:]
	if n == 0 {
		return "", b, true
	}
	return unsafe.String(&b[0], int(n)), b[n:], true
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
