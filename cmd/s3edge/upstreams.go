package main

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"path/filepath"
	"slices"

	"github.com/s3edge/s3edge/cmd/s3edge/internal/config"
	"github.com/s3edge/s3edge/upstream"
	"github.com/s3edge/s3edge/upstream/embedded"
)

// upstreamSet is the opened upstreams and what must be closed on shutdown.
type upstreamSet struct {
	byName  map[string]upstream.Upstream
	closers []func() error
}

// Close closes the embedded upstreams, in reverse order of opening.
func (s *upstreamSet) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// openUpstreams builds a client per configured upstream; an embedded one
// is started first, with its data under <data_dir>/embedded/<name> and the
// upstream buckets the configuration maps to created.
func openUpstreams(cfg *config.Config, log *slog.Logger) (*upstreamSet, error) {
	set := &upstreamSet{byName: make(map[string]upstream.Upstream, len(cfg.Upstreams))}
	for _, name := range sortedNames(cfg.Upstreams) {
		u := cfg.Upstreams[name]
		ulog := log.With("upstream", name)
		switch u.Type {
		case config.TypeEmbedded:
			dir := filepath.Join(cfg.DataDir, "embedded", name)
			buckets := cfg.UpstreamBuckets(name)
			e, err := embedded.Open(dir, ulog, buckets...)
			if err != nil {
				set.Close()
				return nil, fmt.Errorf("upstream %s: %w", name, err)
			}
			set.closers = append(set.closers, e.Close)
			set.byName[name] = e.Client()
			ulog.Info("embedded upstream: a local gofakes3 store on loopback, a demo, not for production",
				"dir", dir, "buckets", buckets)
		default:
			c, err := upstream.New(upstreamConfig(u, ulog))
			if err != nil {
				set.Close()
				return nil, fmt.Errorf("upstream %s: %w", name, err)
			}
			set.byName[name] = c
			ulog.Info("upstream", "type", u.Type, "endpoint", redactURL(u.Endpoint), "region", u.Region,
				"path_style", u.PathStyle, "access_key_id", u.AccessKeyID)
		}
	}
	return set, nil
}

// upstreamConfig maps an s3 upstream's configuration to upstream.Config.
func upstreamConfig(u config.Upstream, log *slog.Logger) upstream.Config {
	return upstream.Config{
		Endpoint:              u.Endpoint,
		Region:                u.Region,
		AccessKeyID:           u.AccessKeyID,
		SecretAccessKey:       string(u.SecretAccessKey),
		PathStyle:             u.PathStyle,
		RequestChecksum:       u.RequestChecksumCalculation,
		ResponseChecksum:      u.ResponseChecksumValidation,
		ConnectTimeout:        u.ConnectTimeout.D(),
		ResponseHeaderTimeout: u.ResponseHeaderTimeout.D(),
		IdleConnTimeout:       u.IdleConnTimeout.D(),
		MaxConns:              u.MaxConnections,
		MaxAttempts:           u.MaxAttempts,
		MaxBackoff:            u.MaxBackoff.D(),
		Logger:                log,
	}
}

// redactURL drops any user info from an endpoint before it is logged
// (Validate refuses it, but a log line must not depend on that).
func redactURL(s string) string {
	if s == "" {
		return "(AWS)"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid)"
	}
	return u.Redacted()
}

func sortedNames[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
