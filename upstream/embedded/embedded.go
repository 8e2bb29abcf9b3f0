// Package embedded is the demo default upstream: an S3 provider in the
// s3edge process, gofakes3 over its afero filesystem backend (s3afero),
// storing each object as a plain file under a directory, served on a random
// loopback port.
//
// Layout under dir: buckets/<bucket>/<key> (object bytes; the key's "/"
// are directories), metadata/ (s3afero's JSON per object), uploads/<id>/
// (multipart parts as files, kept across restarts) and tmp/ (PUT spools).
//
// Around gofakes3 and s3afero, this package:
//   - admits only requests that carry its random access key ID (gofakes3
//     verifies no signature, so this is a bearer check on loopback, not
//     SigV4: it keeps other local programs from stumbling in);
//   - refuses, with 400, keys the file layout would alter or could not
//     store ("a//b", "./a", "a/../b", a trailing "/", NUL, path segments
//     over 255 bytes, keys over 200 bytes, whose metadata file name would
//     be too long);
//   - spools each PUT body to tmp/ before s3afero replaces the object, so
//     that an upload cut short or failing its Content-MD5 leaves the old
//     object intact (s3afero truncates the file first), and a copy of an
//     object onto itself does not read the file it truncates;
//   - stores multipart parts on disk instead of gofakes3's in-memory
//     uploader, and streams them into the object on completion.
//
// Still s3afero's: one lock over the backend, held while a body is copied
// from the spool into place (at disk speed); listings are not paginated
// (every page holds the whole prefix); an object "a" and an object "a/b"
// cannot both exist; writes are not fsynced (objects survive a process
// restart, not a power loss).
package embedded

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/spf13/afero"

	"github.com/s3edge/s3edge/upstream"
)

// Embedded is a running embedded upstream. Close it.
type Embedded struct {
	cfg    upstream.Config
	client *upstream.S3
	srv    *http.Server
	log    *slog.Logger

	served    chan struct{} // closed when srv.Serve returns
	serveErr  error         // written before served is closed
	closeOnce sync.Once
	closeErr  error
}

// Open starts an embedded upstream that stores its objects under dir
// (created if missing), with the buckets created if missing. A nil logger
// discards.
func Open(dir string, logger *slog.Logger, buckets ...string) (*Embedded, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	st, err := openStore(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded: open %s: %w", dir, err)
	}
	for _, b := range buckets {
		if err := gofakes3.ValidateBucketName(b); err != nil {
			return nil, fmt.Errorf("embedded: bucket %q: %w", b, err)
		}
		exists, err := st.BucketExists(b)
		if err != nil {
			return nil, fmt.Errorf("embedded: bucket %q: %w", b, err)
		}
		if !exists {
			if err := st.CreateBucket(b); err != nil {
				return nil, fmt.Errorf("embedded: create bucket %q: %w", b, err)
			}
		}
	}

	keyID, secret := rand.Text()[:20], rand.Text()+rand.Text()
	faker := gofakes3.New(st, gofakes3.WithLogger(gofakesLogger{logger}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded: listen: %w", err)
	}
	e := &Embedded{
		log:    logger,
		served: make(chan struct{}),
		cfg: upstream.Config{
			Endpoint:        "http://" + ln.Addr().String(),
			Region:          "us-east-1",
			AccessKeyID:     keyID,
			SecretAccessKey: secret,
			PathStyle:       true,
			Logger:          logger,
		},
	}
	e.srv = &http.Server{
		Handler:           guard(keyID, faker.Server()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	if e.client, err = upstream.New(e.cfg); err != nil {
		ln.Close()
		return nil, fmt.Errorf("embedded: %w", err)
	}
	go func() {
		defer close(e.served)
		e.serveErr = e.srv.Serve(ln)
	}()
	logger.Info("embedded upstream started", "addr", ln.Addr().String(), "dir", dir, "buckets", buckets)
	return e, nil
}

// Client returns a client of this upstream.
func (e *Embedded) Client() *upstream.S3 { return e.client }

// Config returns the configuration of Client: the loopback endpoint, path
// style and the random credentials of this run.
func (e *Embedded) Config() upstream.Config { return e.cfg }

// Close stops accepting requests, waits up to 10s for those in flight,
// then cuts the rest. It is safe to call more than once.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.srv.Shutdown(ctx); err != nil {
			e.closeErr = errors.Join(err, e.srv.Close())
		}
		<-e.served
		if !errors.Is(e.serveErr, http.ErrServerClosed) {
			e.closeErr = errors.Join(e.closeErr, e.serveErr)
		}
		if e.closeErr != nil {
			e.closeErr = fmt.Errorf("embedded: close: %w", e.closeErr)
		}
	})
	return e.closeErr
}

// guard admits requests signed or presigned with keyID and whose object
// key the file layout can store.
func guard(keyID string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hasKeyID(r, keyID) {
			writeError(w, r, http.StatusForbidden, "InvalidAccessKeyId", "The AWS access key ID you provided does not exist in our records.")
			return
		}
		_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if msg := unsupportedKey(key); msg != "" {
			writeError(w, r, http.StatusBadRequest, "InvalidArgument", "The embedded upstream cannot store this key: "+msg+".")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hasKeyID reports whether the request's credential scope names keyID.
func hasKeyID(r *http.Request, keyID string) bool {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if auth := r.Header.Get("Authorization"); auth != "" {
		_, after, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return false
		}
		cred = after
	}
	id, _, ok := strings.Cut(cred, "/")
	return ok && subtle.ConstantTimeCompare([]byte(id), []byte(keyID)) == 1
}

// maxKeyLen keeps s3afero's metadata file name (the key with "/" replaced,
// plus a 33-byte hash suffix) under the usual 255-byte limit.
const maxKeyLen = 200

// unsupportedKey says why the file layout cannot store key, or "".
func unsupportedKey(key string) string {
	switch {
	case key == "":
		return ""
	case len(key) > maxKeyLen:
		return fmt.Sprintf("longer than %d bytes", maxKeyLen)
	case strings.HasSuffix(key, "/"):
		return "it ends with /"
	case strings.ContainsRune(key, 0):
		return "it holds a NUL byte"
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return "it has an empty path segment"
		case seg == "." || seg == "..":
			return "it has a . or .. path segment"
		case len(seg) > 255:
			return "a path segment is longer than 255 bytes"
		}
	}
	return ""
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
	}
}

// gofakesLogger sends gofakes3's log to slog; its INFO lines (one or more
// per request) go to debug.
type gofakesLogger struct{ log *slog.Logger }

func (l gofakesLogger) Print(level gofakes3.LogLevel, v ...any) {
	msg := strings.TrimSuffix(fmt.Sprintln(v...), "\n")
	switch level {
	case gofakes3.LogErr:
		l.log.Error("gofakes3: "+msg, "component", "embedded")
	case gofakes3.LogWarn:
		l.log.Warn("gofakes3: "+msg, "component", "embedded")
	default:
		l.log.Debug("gofakes3: "+msg, "component", "embedded")
	}
}

// osFs is the afero filesystem rooted at dir.
func osFs(dir string) (afero.Fs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return afero.NewBasePathFs(afero.NewOsFs(), dir), nil
}
