package bench

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine is where and how a report was produced.
type Machine struct {
	Date         string   `json:"date"`
	NProc        int      `json:"nproc"`
	CPUModel     string   `json:"cpu_model"`
	MemTotal     string   `json:"mem_total"`
	Kernel       string   `json:"kernel"`
	GoVersion    string   `json:"go_version"`
	OSArch       string   `json:"os_arch"`
	Command      string   `json:"command"`
	Participants []string `json:"participants"` // name and version
	SignNs       float64  `json:"sign_ns_per_request"`
	SignAllocs   float64  `json:"sign_allocs_per_request"`
}

// machineInfo describes this machine; fields it cannot read are left
// empty rather than failing a run.
func machineInfo(cmdline string) Machine {
	m := Machine{
		Date: time.Now().UTC().Format(time.RFC3339), NProc: runtime.NumCPU(),
		GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH, Command: cmdline,
		CPUModel: procField("/proc/cpuinfo", "model name"),
		MemTotal: procField("/proc/meminfo", "MemTotal"),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if kb, err := strconv.ParseInt(strings.TrimSuffix(m.MemTotal, " kB"), 10, 64); err == nil {
		m.MemTotal = fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
	}
	return m
}

// procField returns the value of the first "key : value" line of a /proc
// file.
func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// version runs a binary's version flag and returns the first line of what
// it prints (nginx prints to stderr).
func version(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown version"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// signCost measures what SigV4 signing costs a client per GET, as the load
// generator signs: wall time and heap allocations over n signatures. The
// go test benchmark BenchmarkSign gives the same figure.
func signCost(n int) (nsPerOp, allocsPerOp float64) {
	s := newSigner(benchAccessKey, benchSecretKey, benchRegion)
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:9000/bench/local_thumbnails/ab/cd/efghijklmnopqrstuvwx/96-96-image-jpeg-crop", nil)
	now := time.Now()
	_ = s.sign(req, emptySHA256, now) // warm caches (the signer caches derived keys per day)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	for range n {
		_ = s.sign(req, emptySHA256, now)
	}
	d := time.Since(t0)
	runtime.ReadMemStats(&after)
	return float64(d.Nanoseconds()) / float64(n), float64(after.Mallocs-before.Mallocs) / float64(n)
}
