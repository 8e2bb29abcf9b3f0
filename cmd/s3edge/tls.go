package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/s3edge/s3edge/cmd/s3edge/internal/config"
)

// tlsConfig returns the server's TLS configuration, or nil for plain http,
// and a function that releases what it started (certmagic's maintenance).
func tlsConfig(ctx context.Context, cfg *config.Config, log *slog.Logger) (*tls.Config, func(), error) {
	t := cfg.TLS
	switch {
	case t.CertFile != "":
		r, err := newCertReloader(t.CertFile, t.KeyFile, log)
		if err != nil {
			return nil, nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.get}, func() {}, nil
	case len(t.ACMEDomains) > 0:
		return acmeTLS(ctx, t, filepath.Join(cfg.DataDir, "acme"), log)
	}
	return nil, func() {}, nil
}

// certReloader serves a static certificate and reloads it when its file
// changes (a renewal by certbot, say), checking at most every
// certCheckInterval. A reload that fails keeps the old certificate.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	// mu guards the following.
	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

const certCheckInterval = time.Minute

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	fi, err := os.Stat(certFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
	}
	r.cert, r.modTime, r.checked = &cert, fi.ModTime(), time.Now()
	return r, nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if now.Sub(r.checked) < certCheckInterval {
		return r.cert, nil
	}
	r.checked = now
	// A stat and, rarely, a read of two small local files: cheap enough to
	// do under the lock, and it keeps concurrent handshakes from reloading
	// twice.
	fi, err := os.Stat(r.certFile)
	if err != nil || fi.ModTime().Equal(r.modTime) {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		r.log.Warn("tls: reloading the certificate failed; keeping the old one", "cert_file", r.certFile, "err", err)
		return r.cert, nil
	}
	r.cert, r.modTime = &cert, fi.ModTime()
	r.log.Info("tls: certificate reloaded", "cert_file", r.certFile)
	return r.cert, nil
}

// acmeTLS obtains and renews certificates for t.ACMEDomains with certmagic,
// storing them under storage. It builds its own certmagic cache and config
// instead of changing certmagic's package-level defaults. Challenges:
// TLS-ALPN-01 through the returned configuration (so the listener should be
// on port 443) and HTTP-01 on port 80, which certmagic binds while it
// solves one.
func acmeTLS(ctx context.Context, t config.TLS, storage string, log *slog.Logger) (*tls.Config, func(), error) {
	zl := zap.New(slogCore{h: log.With("component", "acme").Handler()})
	var magic *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return magic, nil },
		Logger:           zl,
	})
	magic = certmagic.New(cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: storage},
		Logger:  zl,
	})
	magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:     cmp.Or(t.ACMECA, certmagic.LetsEncryptProductionCA),
		Email:  t.ACMEEmail,
		Agreed: true,
		Logger: zl,
	})}
	log.Info("tls: managing certificates with ACME", "domains", t.ACMEDomains, "ca", cmp.Or(t.ACMECA, certmagic.LetsEncryptProductionCA), "storage", storage)
	if err := magic.ManageSync(ctx, t.ACMEDomains); err != nil {
		cache.Stop()
		return nil, nil, fmt.Errorf("tls.acme_domains: %w", err)
	}
	tc := magic.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	// S3 clients speak HTTP/1.1; keep "acme-tls/1" for the TLS-ALPN challenge.
	tc.NextProtos = slices.DeleteFunc(tc.NextProtos, func(p string) bool { return p == "h2" })
	return tc, cache.Stop, nil
}

// slogCore is a zapcore.Core that writes to a slog.Handler, so that
// certmagic's zap logs join s3edge's log.
type slogCore struct{ h slog.Handler }

func (c slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c slogCore) With(fields []zapcore.Field) zapcore.Core {
	return slogCore{h: c.h.WithAttrs(zapAttrs(fields))}
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("logger", e.LoggerName))
	}
	r.AddAttrs(zapAttrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

func (c slogCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l < zapcore.InfoLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func zapAttrs(fields []zapcore.Field) []slog.Attr {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, slog.Any(k, enc.Fields[k]))
	}
	return attrs
}
