package notify

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/sharelog/sharelog/internal/ledger"
	"go.yaml.in/yaml/v3"
)

// MinSecretLength is the shortest webhook secret accepted, in bytes.
const MinSecretLength = 16

// Secrets holds each recipient's webhook secret. Secrets are server
// configuration, never events: they are loaded from a file (LoadSecrets) and
// never logged. A nil *Secrets holds none. It is safe for concurrent reads.
type Secrets struct {
	m map[string][]byte
}

// NewSecrets returns Secrets holding m (recipient id -> secret).
func NewSecrets(m map[string][]byte) *Secrets {
	c := make(map[string][]byte, len(m))
	for k, v := range m {
		c[k] = bytes.Clone(v)
	}
	return &Secrets{m: c}
}

// Secret returns recipient's webhook secret, if one is configured.
func (s *Secrets) Secret(recipient string) ([]byte, bool) {
	if s == nil {
		return nil, false
	}
	v, ok := s.m[recipient]
	return v, ok
}

// Recipients returns the ids of the recipients with a secret, sorted.
func (s *Secrets) Recipients() []string {
	if s == nil {
		return nil
	}
	ids := make([]string, 0, len(s.m))
	for id := range s.m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// secretsFile is the YAML layout of a webhook secrets file.
type secretsFile struct {
	Recipients map[string]secretSpec `yaml:"recipients"`
}

// secretSpec names one recipient's secret: exactly one of the three.
type secretSpec struct {
	SecretFile string `yaml:"secretFile"`
	SecretEnv  string `yaml:"secretEnv"`
	Secret     string `yaml:"secret"`
}

// LoadSecrets reads a webhook secrets file:
//
//	recipients:
//	  dxc-technology: {secretFile: /etc/sharelog/dxc.secret}
//	  acro:           {secretEnv: SHARELOG_SECRET_ACRO}
//	  cgi:            {secret: "at least sixteen bytes"}
//
// Each recipient has exactly one of secretFile (a file holding the secret;
// trailing whitespace is trimmed; a relative path is relative to the secrets
// file), secretEnv (an environment variable) or secret (inline). A file that
// holds a secret inline must not be readable by group or others. Every secret
// must be at least MinSecretLength bytes. Errors name the recipient and the
// problem, never a secret.
func LoadSecrets(path string) (*Secrets, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("webhook secrets: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("webhook secrets %s: %w", path, err)
	}
	var sf secretsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&sf); err != nil && err != io.EOF {
		return nil, fmt.Errorf("webhook secrets %s: %s", path, yamlError(err))
	}
	out := make(map[string][]byte, len(sf.Recipients))
	inline := false
	for id, spec := range sf.Recipients {
		if !ledger.ValidSlug(id) {
			return nil, fmt.Errorf("webhook secrets %s: recipients.%s: not a recipient id (lowercase letters, digits and hyphens)", path, id)
		}
		n := 0
		for _, v := range []string{spec.SecretFile, spec.SecretEnv, spec.Secret} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("webhook secrets %s: recipients.%s: give exactly one of secretFile, secretEnv and secret", path, id)
		}
		var secret []byte
		switch {
		case spec.SecretFile != "":
			p := spec.SecretFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(path), p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("webhook secrets %s: recipients.%s.secretFile: %w", path, id, err)
			}
			secret = bytes.TrimRight(b, " \t\r\n")
		case spec.SecretEnv != "":
			secret = []byte(os.Getenv(spec.SecretEnv))
			if len(secret) == 0 {
				return nil, fmt.Errorf("webhook secrets %s: recipients.%s.secretEnv: environment variable %s is not set", path, id, spec.SecretEnv)
			}
		default:
			inline = true
			secret = []byte(spec.Secret)
		}
		if len(secret) < MinSecretLength {
			return nil, fmt.Errorf("webhook secrets %s: recipients.%s: the secret is shorter than %d bytes", path, id, MinSecretLength)
		}
		out[id] = secret
	}
	if inline && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("webhook secrets %s holds secrets inline and is readable by group or others (mode %04o): chmod 600 it, or use secretFile or secretEnv", path, fi.Mode().Perm())
	}
	return &Secrets{m: out}, nil
}

// yamlError returns a YAML error's message without quoting the document,
// which may hold secrets: only line numbers and field names survive.
func yamlError(err error) string {
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(l, "yaml: "))
		if i := strings.Index(l, "cannot unmarshal"); i >= 0 {
			// "line 3: cannot unmarshal !!str `secret...` into ..." quotes the value.
			head := l[:i]
			l = head + "wrong type of value"
		}
		if l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}
