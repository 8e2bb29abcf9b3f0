package embedded

import (
	"cmp"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// uploads is a gofakes3.MultipartBackend that keeps each upload in its own
// directory: info.json (bucket, key, metadata) and one file per part named
// "<number>-<md5 hex>", written to a temporary name and renamed, so that a
// part is either whole or absent and its ETag is its name. Completion
// claims the upload by renaming its directory, then streams the parts into
// the object store; the parts never sit in memory.
type uploads struct {
	dir     string
	objects gofakes3.Backend // where completed uploads go
}

// uploadInfo is info.json.
type uploadInfo struct {
	Bucket    string
	Object    string
	Meta      map[string]string
	Initiated time.Time
}

// part is one stored part.
type part struct {
	number int
	md5    string // hex
	path   string
	size   int64
	mtime  time.Time
}

const claimed = ".completing"

func openUploads(dir string, objects gofakes3.Backend) (*uploads, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// Completions cut by a crash are garbage; so are their parts.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), claimed) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	return &uploads{dir: dir, objects: objects}, nil
}

// validID reports whether id is one of ours (rand.Text: 26 base32
// characters), which also keeps it from naming any other path.
func validID(id gofakes3.UploadID) bool {
	if len(id) != 26 {
		return false
	}
	for _, c := range []byte(id) {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

func (u *uploads) CreateMultipartUpload(bucket, object string, meta map[string]string) (gofakes3.UploadID, error) {
	id := gofakes3.UploadID(rand.Text())
	dir := filepath.Join(u.dir, string(id))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	data, err := json.Marshal(uploadInfo{Bucket: bucket, Object: object, Meta: meta, Initiated: time.Now().UTC()})
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, "info.json"), data); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return id, nil
}

// load returns the upload's info, checking that it belongs to bucket/object.
func (u *uploads) load(bucket, object string, id gofakes3.UploadID) (uploadInfo, error) {
	if !validID(id) {
		return uploadInfo{}, gofakes3.ErrNoSuchUpload
	}
	data, err := os.ReadFile(filepath.Join(u.dir, string(id), "info.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return uploadInfo{}, gofakes3.ErrNoSuchUpload
	} else if err != nil {
		return uploadInfo{}, err
	}
	var info uploadInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return uploadInfo{}, fmt.Errorf("upload %s: %w", id, err)
	}
	if info.Bucket != bucket || info.Object != object {
		return uploadInfo{}, gofakes3.ErrNoSuchUpload
	}
	return info, nil
}

func (u *uploads) UploadPart(bucket, object string, id gofakes3.UploadID, number int, size int64, input io.Reader) (string, error) {
	if number < 1 || number > gofakes3.MaxUploadPartNumber {
		return "", gofakes3.ErrInvalidPart
	}
	if _, err := u.load(bucket, object, id); err != nil {
		return "", err
	}
	dir := filepath.Join(u.dir, string(id))
	f, err := os.CreateTemp(dir, ".part-*")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", gofakes3.ErrNoSuchUpload // aborted or completed meanwhile
		}
		return "", err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), input)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if n != size {
		return "", gofakes3.ErrIncompleteBody
	}
	sum := hex.EncodeToString(h.Sum(nil))
	name := fmt.Sprintf("%05d-%s", number, sum)
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return "", err
	}
	// A part uploaded again replaces the earlier one.
	parts, err := u.parts(dir)
	if err != nil {
		return "", err
	}
	for _, p := range parts {
		if p.number == number && p.md5 != sum {
			os.Remove(p.path)
		}
	}
	return `"` + sum + `"`, nil
}

// parts lists the parts stored in an upload directory, by part number.
func (u *uploads) parts(dir string) ([]part, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, gofakes3.ErrNoSuchUpload
	} else if err != nil {
		return nil, err
	}
	var parts []part
	for _, e := range entries {
		num, sum, ok := strings.Cut(e.Name(), "-")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || len(sum) != 32 {
			continue // info.json, .part-* in progress
		}
		fi, err := e.Info()
		if err != nil {
			continue // replaced meanwhile
		}
		parts = append(parts, part{number: n, md5: sum, path: filepath.Join(dir, e.Name()), size: fi.Size(), mtime: fi.ModTime()})
	}
	slices.SortFunc(parts, func(a, b part) int { return cmp.Or(cmp.Compare(a.number, b.number), a.mtime.Compare(b.mtime)) })
	return parts, nil
}

func (u *uploads) ListParts(bucket, object string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	if _, err := u.load(bucket, object, id); err != nil {
		return nil, err
	}
	parts, err := u.parts(filepath.Join(u.dir, string(id)))
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = gofakes3.DefaultMaxUploadParts
	}
	res := &gofakes3.ListMultipartUploadPartsResult{
		Bucket: bucket, Key: object, UploadID: id,
		StorageClass: "STANDARD", PartNumberMarker: marker, MaxParts: limit,
	}
	for _, p := range parts {
		if p.number <= marker {
			continue
		}
		if int64(len(res.Parts)) == limit {
			res.IsTruncated = true
			break
		}
		res.Parts = append(res.Parts, gofakes3.ListMultipartUploadPartItem{
			PartNumber: p.number, ETag: `"` + p.md5 + `"`, Size: p.size, LastModified: gofakes3.NewContentTime(p.mtime),
		})
		res.NextPartNumberMarker = p.number
	}
	return res, nil
}

func (u *uploads) AbortMultipartUpload(bucket, object string, id gofakes3.UploadID) error {
	if _, err := u.load(bucket, object, id); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(u.dir, string(id)))
}

func (u *uploads) CompleteMultipartUpload(bucket, object string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	info, err := u.load(bucket, object, id)
	if err != nil {
		return "", "", err
	}
	if len(in.Parts) == 0 {
		return "", "", gofakes3.ErrMalformedXML
	}
	for i := 1; i < len(in.Parts); i++ {
		if in.Parts[i].PartNumber <= in.Parts[i-1].PartNumber {
			return "", "", gofakes3.ErrInvalidPartOrder
		}
	}
	// Claim the upload: a concurrent Complete, Abort or UploadPart now
	// finds no upload.
	dir := filepath.Join(u.dir, string(id))
	work := dir + claimed
	if err := os.Rename(dir, work); err != nil {
		return "", "", gofakes3.ErrNoSuchUpload
	}
	version, etag, err := u.assemble(bucket, object, work, info, in)
	if err != nil {
		// Give the upload back, so that the client may fix its list.
		if rerr := os.Rename(work, dir); rerr != nil {
			os.RemoveAll(work)
		}
		return "", "", err
	}
	os.RemoveAll(work)
	return version, etag, nil
}

// assemble streams the listed parts into the object.
func (u *uploads) assemble(bucket, object, dir string, info uploadInfo, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	stored, err := u.parts(dir)
	if err != nil {
		return "", "", err
	}
	byNumber := make(map[int]part, len(stored))
	for _, p := range stored {
		byNumber[p.number] = p // the latest of a number, as parts() sorts
	}
	var (
		readers []io.Reader
		size    int64
		sums    = md5.New()
	)
	for _, want := range in.Parts {
		p, ok := byNumber[want.PartNumber]
		if !ok || strings.Trim(want.ETag, `"`) != p.md5 {
			return "", "", gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d is missing or has another ETag", want.PartNumber)
		}
		f, err := os.Open(p.path)
		if err != nil {
			return "", "", err
		}
		defer f.Close()
		readers = append(readers, f)
		size += p.size
		raw, _ := hex.DecodeString(p.md5)
		sums.Write(raw)
	}
	res, err := u.objects.PutObject(bucket, object, info.Meta, io.MultiReader(readers...), size, nil)
	if err != nil {
		return "", "", err
	}
	return res.VersionID, fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(sums.Sum(nil)), len(in.Parts)), nil
}

func (u *uploads) ListMultipartUploads(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	type upload struct {
		id   gofakes3.UploadID
		info uploadInfo
	}
	all, err := u.list(bucket)
	if err != nil {
		return nil, err
	}
	var ups []upload
	for id, info := range all {
		ups = append(ups, upload{id, info})
	}
	slices.SortFunc(ups, func(a, b upload) int {
		return cmp.Or(strings.Compare(a.info.Object, b.info.Object), a.info.Initiated.Compare(b.info.Initiated), strings.Compare(string(a.id), string(b.id)))
	})
	if limit <= 0 {
		limit = gofakes3.DefaultMaxUploads
	}
	res := &gofakes3.ListMultipartUploadsResult{
		Bucket: bucket, Prefix: prefix.Prefix, Delimiter: prefix.Delimiter, MaxUploads: limit,
	}
	start := 0
	if marker != nil {
		// Start after the marker upload, or after every upload of the
		// marker key when the upload ID is not given or not found.
		res.KeyMarker, res.UploadIDMarker = marker.Object, marker.UploadID
		start = slices.IndexFunc(ups, func(up upload) bool { return up.info.Object > marker.Object })
		if start < 0 {
			start = len(ups)
		}
		if marker.UploadID != "" {
			if i := slices.IndexFunc(ups, func(up upload) bool { return up.info.Object == marker.Object && up.id == marker.UploadID }); i >= 0 {
				start = i + 1
			}
		}
	}
	seen := make(map[string]bool)
	var match gofakes3.PrefixMatch
	for _, up := range ups[start:] {
		if !prefix.Match(up.info.Object, &match) || (match.CommonPrefix && seen[match.MatchedPart]) {
			continue
		}
		if int64(len(res.Uploads)+len(res.CommonPrefixes)) == limit {
			res.IsTruncated = true
			break
		}
		if match.CommonPrefix {
			seen[match.MatchedPart] = true
			res.CommonPrefixes = append(res.CommonPrefixes, match.AsCommonPrefix())
		} else {
			res.Uploads = append(res.Uploads, gofakes3.ListMultipartUploadItem{
				Key: up.info.Object, UploadID: up.id, StorageClass: "STANDARD", Initiated: gofakes3.NewContentTime(up.info.Initiated),
			})
		}
		res.NextKeyMarker, res.NextUploadIDMarker = up.info.Object, up.id
	}
	if !res.IsTruncated {
		res.NextKeyMarker, res.NextUploadIDMarker = "", ""
	}
	return res, nil
}

// list returns the uploads of bucket in progress.
func (u *uploads) list(bucket string) (map[gofakes3.UploadID]uploadInfo, error) {
	entries, err := os.ReadDir(u.dir)
	if err != nil {
		return nil, err
	}
	out := make(map[gofakes3.UploadID]uploadInfo)
	for _, e := range entries {
		id := gofakes3.UploadID(e.Name())
		if !validID(id) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(u.dir, e.Name(), "info.json"))
		if err != nil {
			continue // completed or aborted meanwhile
		}
		var info uploadInfo
		if json.Unmarshal(data, &info) == nil && info.Bucket == bucket {
			out[id] = info
		}
	}
	return out, nil
}

// any reports whether bucket has uploads in progress.
func (u *uploads) any(bucket string) (bool, error) {
	ups, err := u.list(bucket)
	return len(ups) > 0, err
}

// writeFileAtomic writes data to a temporary file beside name and renames
// it into place.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}
