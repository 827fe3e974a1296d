// Package sharedref reads, for tests, the reference material in ../shared
// beside the repository (the CloudEvents spec and conformance cases, the
// fideslang taxonomy, UK police forces). It is imported by tests only.
package sharedref

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

// Read reads path, a file of the reference material. When it is absent the
// test is skipped, unless the environment variable CI is set: CI runs with
// ../shared in place, so there a missing file fails the test instead of
// hiding it.
func Read(t testing.TB, path string) []byte {
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
