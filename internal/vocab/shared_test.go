package vocab_test

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

// readShared reads path, a file of the reference material in ../shared
// beside the repository. When it is absent the test is skipped, unless the
// environment variable CI is set: CI runs with ../shared in place, so there a
// missing file fails the test instead of hiding it.
func readShared(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is absent, and CI is set: CI needs ../shared beside the repository", path)
		}
		t.Skipf("%s is absent", path)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}
