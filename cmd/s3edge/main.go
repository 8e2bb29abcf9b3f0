// Command s3edge is an S3-compatible caching reverse proxy.
//
//	s3edge serve [--config s3edge.yaml] [--listen host:port] [--data-dir dir]
//	s3edge config --config s3edge.yaml
//	s3edge version
//
// Without a configuration, serve runs a demo on an embedded S3 store. main
// is thin: it dispatches to one function per subcommand, each taking a
// context (cancelled on SIGINT or SIGTERM), its arguments and its output
// streams, so that tests run them in-process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/s3edge/s3edge/bench"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// command is one subcommand. run returns a usageError for bad arguments,
// flag.ErrHelp after printing its help, any other error for a failure.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the dispatch table. To add a subcommand ("cache stats",
// "bench", "doctor"), write its run function in its own file and add a line
// here.
func commands() []command {
	return []command{
		{"serve", "run the S3 endpoint (the embedded demo without --config)", serve},
		{"config", "check a configuration file and print it with defaults applied, secrets redacted", configCmd},
		{"cache", "show a running s3edge's cache statistics, or purge entries (stats|purge)", cacheCmd},
		{"bench", "run the side-by-side benchmark (s3edge bench --help)", bench.Main},
		{"version", "print the version", printVersion},
	}
}

// usageError is a command-line mistake: exit status 2 instead of 1.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal the default handling returns, so that a second
	// Ctrl-C ends a shutdown that takes too long.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args to a subcommand and returns the exit status: 0, 1 on
// failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue usageError
		var be *bench.UsageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue), errors.As(err, &be):
			fmt.Fprintf(stderr, "s3edge %s: %v\nRun 's3edge %s -h' for help.\n", c.name, err, c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "s3edge %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "s3edge: unknown command %q\n\n", name)
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "s3edge is an S3-compatible caching reverse proxy.\n\nUsage:\n  s3edge <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 's3edge <command> -h' for the flags of a command.\n"+
		"'s3edge serve' with no flags starts a demo on http://127.0.0.1:9000 with data in ./s3edge-data.\n")
}

// newFlagSet returns a flag set that reports errors instead of exiting and
// prints its usage to stderr.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: s3edge %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, rejecting positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErrorf("%v", err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = ""

// versionString describes the build: version, Go version, platform and,
// when built from a checkout, the VCS revision.
func versionString() string {
	v, rev, dirty := version, "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value[:min(12, len(s.Value))]
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if dirty && rev != "" {
		rev += "+dirty"
	}
	if v == "" {
		v = "(devel)"
	}
	s := fmt.Sprintf("s3edge %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if rev != "" {
		s += " " + rev
	}
	return s
}

func printVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, versionString())
	return err
}
