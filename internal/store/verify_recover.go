package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// recoveryDir makes a scratch directory in which Badger can recover the
// write-ahead log of the ledger in dir, opened read-write, without writing
// to dir. Badger writes, on such an open and its close, only the memtables'
// WAL files (*.mem, trimmed to their last whole entry), the last value log
// (trimmed likewise), MANIFEST, KEYREGISTRY and DISCARD, and it adds new
// files: those are copied, keeping their holes (Badger preallocates WAL and
// value log files, so a copy that fills the holes writes gigabytes). The
// tables and the earlier value logs, which it only reads, are symbolic
// links to dir's files (copies, if they cannot be opened for writing); verify opens the scratch ledger with no compactor,
// so no table is rewritten. The caller removes the directory.
func recoveryDir(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	lastVlog := -1
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".vlog"); ok {
			if fid, err := strconv.Atoi(n); err == nil && fid > lastVlog {
				lastVlog = fid
			}
		}
	}
	scratch, err := os.MkdirTemp("", "sharelog-verify-*")
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		os.RemoveAll(scratch)
		return "", err
	}
	for _, e := range entries {
		name := e.Name()
		src, dst := filepath.Join(abs, name), filepath.Join(scratch, name)
		switch {
		case e.IsDir() || name == "LOCK":
			continue
		case (strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".vlog") && name != fmt.Sprintf("%06d.vlog", lastVlog)) && writable(src):
			err = os.Symlink(src, dst)
		default:
			err = copySparse(src, dst)
		}
		if err != nil {
			os.RemoveAll(scratch)
			return "", err
		}
	}
	return scratch, nil
}

// writable says Badger, which opens every file read-write unless the whole
// ledger is opened read-only, can open src through a link: a copy on
// read-only media gets its files copied instead.
func writable(src string) bool {
	f, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// copySparse copies the file src to dst, leaving holes in dst where src
// has holes (found with dataRanges) or blocks of zeros: Badger's
// preallocated files are mostly holes, which reading would fill with zeros.
func copySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm()|0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	ranges, err := dataRanges(in, fi.Size())
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for _, r := range ranges {
		for off := r[0]; off < r[1]; {
			n, err := in.ReadAt(buf[:min(int64(len(buf)), r[1]-off)], off)
			if n > 0 && !zero(buf[:n]) {
				if _, err := out.WriteAt(buf[:n], off); err != nil {
					return err
				}
			}
			off += int64(n)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
		}
	}
	if err := out.Truncate(fi.Size()); err != nil {
		return err
	}
	return out.Close()
}

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
