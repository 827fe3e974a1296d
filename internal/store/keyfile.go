package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// siteSecretLen is the length of the site secret that keys subject hashes.
const siteSecretLen = 32

// loadSiteSecret reads the site secret from path, creating it with
// siteSecretLen random bytes and mode 0600 if it does not exist. It refuses a
// file of the wrong size or one that its group or others may access.
func loadSiteSecret(path string) (secret []byte, created bool, err error) {
	if path == "" {
		return nil, false, errors.New("store: KeyFile is required")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		secret, err := createSiteSecret(f, path)
		return secret, err == nil, err
	case !errors.Is(err, fs.ErrExist):
		return nil, false, fmt.Errorf("store: create key file: %w", err)
	}

	f, err = os.Open(path)
	if err != nil {
		return nil, false, fmt.Errorf("store: open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("store: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("store: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, false, fmt.Errorf("store: key file %s has mode %04o: group and others must have no access (chmod 600)", path, perm)
	}
	if fi.Size() != siteSecretLen {
		return nil, false, fmt.Errorf("store: key file %s holds %d bytes, want %d", path, fi.Size(), siteSecretLen)
	}
	secret = make([]byte, siteSecretLen)
	if _, err := io.ReadFull(f, secret); err != nil {
		return nil, false, fmt.Errorf("store: read key file: %w", err)
	}
	return secret, false, nil
}

// createSiteSecret fills the newly created key file f and syncs it. On failure
// it removes the file so that the next start does not find a short secret.
func createSiteSecret(f *os.File, path string) ([]byte, error) {
	secret := make([]byte, siteSecretLen)
	_, err := rand.Read(secret)
	if err == nil {
		_, err = f.Write(secret)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("store: write key file: %w", err)
	}
	return secret, nil
}
