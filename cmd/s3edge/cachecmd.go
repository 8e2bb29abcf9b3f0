package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/s3edge/s3edge/cmd/s3edge/internal/config"
)

// cacheCmd is `s3edge cache stats|purge`: it asks a running s3edge through
// the admin endpoints on its metrics listener (the cache's index is locked
// by the server while it runs).
func cacheCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "stats" && args[0] != "purge" {
		return usageErrorf("usage: s3edge cache stats|purge [--config file | --admin http://host:port] [--bucket B] [--prefix P]")
	}
	sub := args[0]
	fs := newFlagSet("cache "+sub, "[--config file | --admin url] [--bucket B] [--prefix P]", stderr)
	path := fs.String("config", "", "configuration `file` of the running s3edge (its metrics_listen is used)")
	admin := fs.String("admin", "", "base `url` of the metrics listener, e.g. http://127.0.0.1:9100")
	bucket := fs.String("bucket", "", "purge only this virtual `bucket`")
	prefix := fs.String("prefix", "", "purge only keys starting with `prefix`")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	base := *admin
	if base == "" {
		if *path == "" {
			return usageErrorf("give --admin URL or --config FILE (with metrics_listen set)")
		}
		cfg, err := config.Load(*path)
		if err != nil {
			return err
		}
		if cfg.MetricsListen == "" {
			return fmt.Errorf("%s has no metrics_listen: the cache admin endpoints live there", *path)
		}
		base = "http://" + cfg.MetricsListen
	}
	method, target := http.MethodGet, base+"/cache/stats"
	if sub == "purge" {
		method = http.MethodPost
		target = base + "/cache/purge?" + url.Values{"bucket": {*bucket}, "prefix": {*prefix}}.Encode()
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cache %s: %w (is s3edge running with a cache and metrics_listen?)", sub, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("cache %s: %s", sub, res.Status)
	}
	_, err = io.Copy(stdout, res.Body)
	return err
}
