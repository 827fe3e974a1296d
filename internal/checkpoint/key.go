package checkpoint

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Key file names in the data directory.
const (
	KeyFileName = "checkpoint.key"
	PubFileName = "checkpoint.pub"
)

// DefaultName returns the default key name and checkpoint origin for a new
// key: "sharelog/" and the host name, reduced to letters, digits, '.', '-'
// and '_'.
func DefaultName() string {
	host, _ := os.Hostname()
	host = regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(host, "-")
	host = strings.Trim(host, "-")
	if host == "" {
		host = "ledger"
	}
	return "sharelog/" + host
}

// LoadOrCreateKey returns the signer whose key is in keyPath, creating a new
// Ed25519 key named name (mode 0600) if the file does not exist. It refuses
// a key file that its group or others may access. It (re)writes the
// verifier key to pubPath (mode 0644) when that file is absent or differs,
// and returns the verifier key.
func LoadOrCreateKey(keyPath, pubPath, name string) (s note.Signer, vkey string, created bool, err error) {
	f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		skey, _, gerr := note.GenerateKey(rand.Reader, name)
		if gerr == nil {
			_, gerr = f.WriteString(skey + "\n")
		}
		if gerr == nil {
			gerr = f.Sync()
		}
		if cerr := f.Close(); gerr == nil {
			gerr = cerr
		}
		if gerr != nil {
			os.Remove(keyPath)
			return nil, "", false, fmt.Errorf("checkpoint: create key file: %w", gerr)
		}
		created = true
	case !errors.Is(err, fs.ErrExist):
		return nil, "", false, fmt.Errorf("checkpoint: create key file: %w", err)
	}
	skey, err := readKeyFile(keyPath)
	if err != nil {
		return nil, "", false, err
	}
	s, err = note.NewSigner(skey)
	if err != nil {
		return nil, "", false, fmt.Errorf("checkpoint: key file %s: %w", keyPath, err)
	}
	vkey, err = verifierKey(skey)
	if err != nil {
		return nil, "", false, fmt.Errorf("checkpoint: key file %s: %w", keyPath, err)
	}
	if pubPath != "" {
		if old, err := os.ReadFile(pubPath); err != nil || strings.TrimSpace(string(old)) != vkey {
			if err := os.WriteFile(pubPath, []byte(vkey+"\n"), 0o644); err != nil {
				return nil, "", false, fmt.Errorf("checkpoint: write public key: %w", err)
			}
		}
	}
	return s, vkey, created, nil
}

// PublicKey returns the verifier key of the signing key in keyPath.
func PublicKey(keyPath string) (string, error) {
	skey, err := readKeyFile(keyPath)
	if err != nil {
		return "", err
	}
	vkey, err := verifierKey(skey)
	if err != nil {
		return "", fmt.Errorf("checkpoint: key file %s: %w", keyPath, err)
	}
	return vkey, nil
}

// readKeyFile reads a signer key, refusing a file others may access.
func readKeyFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("checkpoint: key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("checkpoint: key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("checkpoint: key file %s has mode %04o: group and others must have no access (chmod 600)", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("checkpoint: read key file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// verifierKey derives the verifier key from a note signer key of the form
// PRIVATE+KEY+name+hash+base64(0x01 || Ed25519 seed).
func verifierKey(skey string) (string, error) {
	// The base64 key may itself contain '+': split off the first four fields.
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("not a signer key")
	}
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", errors.New("not an Ed25519 signer key")
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// LoadVerifier returns the verifier for key, which is either a verifier key
// ("<name>+<hash>+<key>") or, if it is not, the path of a file holding one.
func LoadVerifier(key string) (note.Verifier, error) {
	if v, err := note.NewVerifier(strings.TrimSpace(key)); err == nil {
		return v, nil
	}
	b, err := os.ReadFile(key)
	if err != nil {
		return nil, fmt.Errorf("public key: not a verifier key, and not a readable file: %w", err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("public key file %s: %w", key, err)
	}
	return v, nil
}
