package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// cpuProfileEnv names a file that `serve` writes a CPU profile of its whole
// run into, written when it shuts down. It is for measuring the server on
// its own, apart from the load generator: `s3edge bench` passes its
// environment to the s3edge it starts.
const cpuProfileEnv = "S3EDGE_CPUPROFILE"

// startCPUProfile starts the profile cpuProfileEnv asks for, if any, and
// returns what stops it.
func startCPUProfile() (stop func(), err error) {
	path := os.Getenv(cpuProfileEnv)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cpuProfileEnv, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", cpuProfileEnv, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
