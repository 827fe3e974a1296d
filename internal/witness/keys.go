package witness

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/sharelog/sharelog/internal/cluster"
	"golang.org/x/mod/sumdb/note"
)

// LoadKeys reads a witness keys file (--witness-keys): one line per replica,
// its name and the verifier key of its checkpoints (what `sharelog
// checkpoint-key` prints, and what a Witness logs when it pins a key),
// separated by white space. Blank lines and lines starting with '#' are
// ignored. A malformed line, an invalid key or a name listed twice is an
// error naming the line.
func LoadKeys(path string) (map[string]note.Verifier, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("witness keys: %w", err)
	}
	defer f.Close()
	keys := map[string]note.Verifier{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("witness keys %s:%d: want a replica name and a verifier key, got %d fields", path, n, len(fields))
		}
		if err := cluster.ValidName(fields[0]); err != nil {
			return nil, fmt.Errorf("witness keys %s:%d: %w", path, n, err)
		}
		if _, dup := keys[fields[0]]; dup {
			return nil, fmt.Errorf("witness keys %s:%d: replica %s listed twice", path, n, fields[0])
		}
		v, err := note.NewVerifier(fields[1])
		if err != nil {
			return nil, fmt.Errorf("witness keys %s:%d: replica %s: %w", path, n, fields[0], err)
		}
		keys[fields[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("witness keys %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("witness keys %s: no replica listed", path)
	}
	return keys, nil
}
