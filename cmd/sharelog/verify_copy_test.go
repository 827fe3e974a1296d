package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVerifyCopyOfRunningServer verifies a copy of a running server's data
// directory (cp keeps Badger's preallocated files sparse, as a backup tool
// would): its write-ahead log needs recovery, which must not copy the value
// log to a scratch directory.
func TestVerifyCopyOfRunningServer(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, testConfig(dir))
	registerRecipient(t, m, "acro")
	publishDisclosures(t, m, 1, 69)
	vkey, _, err := runCLI("checkpoint-key", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-r", dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	before := digests(t, cp)
	scratch := t.TempDir()
	t.Setenv("TMPDIR", scratch)
	start := time.Now()
	stdout, stderr, err := runCLI("verify", "--data", cp, "--key", strings.TrimSpace(vkey))
	took := time.Since(start)
	if err != nil {
		t.Fatalf("verify: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "intact: size 70 ") || !strings.Contains(stderr, "needed recovery") {
		t.Errorf("verify of a copy:\n%s%s", stdout, stderr)
	}
	if after := digests(t, cp); !maps.Equal(before, after) {
		t.Errorf("verify changed the directory it verified:\nbefore %v\nafter  %v", before, after)
	}
	if left, _ := os.ReadDir(scratch); len(left) > 0 {
		t.Errorf("verify left %d files in TMPDIR", len(left))
	}
	t.Logf("verify of a copy of a running server's data: %v", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("verify took %v", took)
	}
}

// digests describes every file under dir, by path: its size and modification
// time, and the SHA-256 of the files under 128 MiB (not the value log,
// preallocated to 2 GiB and mostly holes).
func digests(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[path] = fmt.Sprintf("%d %s", fi.Size(), fi.ModTime())
		if fi.Size() < 128<<20 {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			out[path] += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestVerifyReadOnlyCopy verifies a copy, taken while the server ran, whose
// files cannot be written (a backup on read-only media). Its few entries are
// all in the memtable's log, so it does not reach the tables, which are
// copied rather than linked when they cannot be opened for writing. Skipped
// as root, who can write anything.
func TestVerifyReadOnlyCopy(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can write read-only files")
	}
	dir := t.TempDir()
	m := startMain(t, testConfig(dir))
	registerRecipient(t, m, "acro")
	publishDisclosures(t, m, 1, 9)
	vkey, _, err := runCLI("checkpoint-key", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-r", dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "a-w", cp).CombinedOutput(); err != nil {
		t.Fatalf("chmod: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chmod", "-R", "u+w", cp).Run() })
	stdout, stderr, err := runCLI("verify", "--data", cp, "--key", strings.TrimSpace(vkey))
	if err != nil || !strings.Contains(stdout, "intact: size 10 ") {
		t.Fatalf("verify of a read-only copy: %v\n%s%s", err, stdout, stderr)
	}
}
