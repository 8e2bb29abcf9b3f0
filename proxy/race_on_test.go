//go:build race

package proxy_test

// raceEnabled: the race detector multiplies memory use, so memory limits in
// tests are relaxed under it.
const raceEnabled = true
