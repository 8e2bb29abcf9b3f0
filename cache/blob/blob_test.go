package blob

import (
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestDisk(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "tmp"), 0o755)
	os.WriteFile(filepath.Join(root, "tmp", "fill-left-by-a-crash"), []byte("x"), 0o644)
	d, err := NewDisk(root)
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := readNames(filepath.Join(root, "tmp")); len(names) != 0 {
		t.Fatalf("NewDisk left temp files: %v", names)
	}
	data := []byte("hello, content")
	sum := sha256.Sum256(data)
	tmp, err := d.Create()
	if err != nil {
		t.Fatal(err)
	}
	tmp.Write(data[:5])
	buf := make([]byte, 5)
	if n, _ := tmp.ReadAt(buf, 0); n != 5 || string(buf) != "hello" {
		t.Fatalf("ReadAt of a growing temp = %q", buf[:n])
	}
	tmp.Write(data[5:])
	if err := tmp.Commit(sum); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Discard(); err != nil { // after Commit: a no-op
		t.Fatal(err)
	}
	tmp.Close()
	f, err := d.Open(sum)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(io.NewSectionReader(f, 0, int64(len(data))))
	f.Close()
	if string(got) != string(data) {
		t.Fatalf("Open = %q", got)
	}
	junk := filepath.Join(filepath.Dir(d.Path(sum)), "not-a-content-name")
	os.WriteFile(junk, nil, 0o644)
	var listed [][32]byte
	if err := d.Walk(func(s [32]byte) { listed = append(listed, s) }); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0] != sum {
		t.Fatalf("Walk listed %x", listed)
	}
	if _, err := os.Stat(junk); err == nil {
		t.Fatal("Walk kept a file that is not a content name")
	}
	if err := d.Remove(sum); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(sum); err != nil {
		t.Fatalf("Remove of a missing file = %v", err)
	}
	if free, err := d.Free(); err != nil || free <= 0 {
		t.Fatalf("Free = %d, %v", free, err)
	}
}
