package proxy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/s3edge/s3edge/policy"
)

// TestSpoolMovesToMemoryMidBody: a spool file whose disk fills up mid-body
// (a write to /dev/full fails with ENOSPC) carries on in memory with every
// byte; the memory is returned on Close; without memory left, the write
// fails with an error that answers 503.
func TestSpoolMovesToMemoryMidBody(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	dir := t.TempDir()
	s, err := New(Config{Policy: func() *policy.Policy { return nil }, SpoolDir: dir, MemorySpool: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	full := func() *os.File {
		// Through a link, so that removing the spool file removes the
		// link and never the device.
		link := filepath.Join(dir, "full")
		os.Remove(link)
		if err := os.Symlink("/dev/full", link); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(link, os.O_WRONLY, 0)
		if err != nil {
			t.Skipf("open /dev/full: %v", err)
		}
		return f
	}
	body := bytes.Repeat([]byte("s3edge"), 100000) // 600,000 bytes
	sp := &spool{s: s, want: int64(len(body)), f: full()}
	if n, err := io.Copy(sp, bytes.NewReader(body)); err != nil || n != int64(len(body)) {
		t.Fatalf("copy into a spool whose disk is full: %d, %v", n, err)
	}
	if sp, err = sp.ready(int64(len(body)), nil); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(sp.body())
	if !bytes.Equal(got, body) || s.memSpool.Load() != int64(len(body)) {
		t.Errorf("memory spool holds %d bytes (%d reserved), want %d", len(got), s.memSpool.Load(), len(body))
	}
	if _, err := os.Lstat(filepath.Join(dir, "full")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed spool file was not removed: %v", err)
	}

	// The budget is taken: a second body does not fit and fails as 503.
	sp2 := &spool{s: s, want: int64(len(body)), f: full()}
	_, err = sp2.Write(body)
	if !errors.Is(err, errNoSpool) || !errors.Is(err, syscall.ENOSPC) || toAPIError(err).Status != 503 {
		t.Errorf("second spool over budget: %v", err)
	}
	sp2.Close()
	sp.Close()
	if n := s.memSpool.Load(); n != 0 {
		t.Errorf("%d bytes of memory spool still reserved after Close", n)
	}
}
