// Package access reads the --access file: the principals, their roles and
// the hashes of their bearer tokens, and tells who a credential belongs to.
// What each role may do is decided by the domain (internal/ledger, access.go);
// this package only knows who is who.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/sharelog/sharelog/internal/ledger"
)

// File is the --access file (DESIGN.md, "Access").
type File struct {
	Principals []Entry `yaml:"principals"`
}

// Entry is one principal as the file gives it.
type Entry struct {
	Name        string        `yaml:"name"`
	Roles       []ledger.Role `yaml:"roles"`
	Sources     []string      `yaml:"sources"`
	Recipient   string        `yaml:"recipient"`
	TokenSHA256 string        `yaml:"tokenSHA256"`
	// Certificate is the subject common name of a client certificate that
	// names this principal under mutual TLS ("" for none).
	Certificate string `yaml:"certificate"`
}

// Principal returns e as the domain sees it.
func (e Entry) Principal() *ledger.Principal {
	return &ledger.Principal{Name: e.Name, Roles: e.Roles, Sources: e.Sources, Recipient: e.Recipient}
}

// Control is a loaded access file: who each credential belongs to.
type Control struct {
	entries []Entry
	byHash  map[[sha256.Size]byte]int
	byCert  map[string]int
	byName  map[string]int
}

// Load reads and checks the access file at path.
func Load(path string) (*Control, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("access file: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("access file %s: %w", path, err)
	}
	return c, nil
}

// Parse checks an access file's contents: known fields only, each principal
// valid (ledger.ValidatePrincipal), names, token hashes, certificates and
// sources unique (a source belongs to one principal, so that NATS subject
// sharelog.in.<source> names who published).
func Parse(b []byte) (*Control, error) {
	var f File
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if len(f.Principals) == 0 {
		return nil, errors.New("no principals")
	}
	c := &Control{
		entries: f.Principals,
		byHash:  map[[sha256.Size]byte]int{},
		byCert:  map[string]int{},
		byName:  map[string]int{},
	}
	sources := map[string]string{}
	for i, e := range f.Principals {
		if err := ledger.ValidatePrincipal(*e.Principal()); err != nil {
			return nil, err
		}
		if _, dup := c.byName[e.Name]; dup {
			return nil, fmt.Errorf("principal %q listed twice", e.Name)
		}
		c.byName[e.Name] = i
		if e.TokenSHA256 == "" && e.Certificate == "" {
			return nil, fmt.Errorf("principal %q: no credential (tokenSHA256, or certificate for mutual TLS)", e.Name)
		}
		if e.TokenSHA256 != "" {
			raw, err := hex.DecodeString(e.TokenSHA256)
			if err != nil || len(raw) != sha256.Size {
				return nil, fmt.Errorf("principal %q: tokenSHA256 must be 64 hex digits (sharelog token makes one)", e.Name)
			}
			h := [sha256.Size]byte(raw)
			if _, dup := c.byHash[h]; dup {
				return nil, fmt.Errorf("principal %q: tokenSHA256 is another principal's too", e.Name)
			}
			c.byHash[h] = i
		}
		if e.Certificate != "" {
			if _, dup := c.byCert[e.Certificate]; dup {
				return nil, fmt.Errorf("principal %q: certificate %q names another principal too", e.Name, e.Certificate)
			}
			c.byCert[e.Certificate] = i
		}
		for _, s := range e.Sources {
			if other, dup := sources[s]; dup {
				return nil, fmt.Errorf("principal %q: source %q belongs to principal %q too", e.Name, s, other)
			}
			sources[s] = e.Name
		}
	}
	return c, nil
}

// Entries returns the principals in file order.
func (c *Control) Entries() []Entry { return c.entries }

// Token returns the principal whose token is token, or nil. The token is
// hashed and looked up by its hash; only hashes are kept.
func (c *Control) Token(token string) *ledger.Principal {
	if c == nil || token == "" {
		return nil
	}
	h := sha256.Sum256([]byte(token))
	i, ok := c.byHash[h]
	if !ok {
		return nil
	}
	// The map found it by the whole hash; compare once more in constant
	// time so that no timing tells how much of a guess was right.
	want, _ := hex.DecodeString(c.entries[i].TokenSHA256)
	if subtle.ConstantTimeCompare(h[:], want) != 1 {
		return nil
	}
	return c.entries[i].Principal()
}

// Certificate returns the principal a verified client certificate's common
// name names, or nil.
func (c *Control) Certificate(commonName string) *ledger.Principal {
	if c == nil || commonName == "" {
		return nil
	}
	if i, ok := c.byCert[commonName]; ok {
		return c.entries[i].Principal()
	}
	return nil
}

// Named returns the principal called name, or nil.
func (c *Control) Named(name string) *ledger.Principal {
	if c == nil {
		return nil
	}
	if i, ok := c.byName[name]; ok {
		return c.entries[i].Principal()
	}
	return nil
}

// SourceOwner returns the principal that may publish as source, or nil.
func (c *Control) SourceOwner(source string) *ledger.Principal {
	if c == nil {
		return nil
	}
	for _, e := range c.entries {
		for _, s := range e.Sources {
			if s == source {
				return e.Principal()
			}
		}
	}
	return nil
}

// NewToken returns a new random bearer token (256 bits, hex) and the
// tokenSHA256 to put in the access file.
func NewToken() (token, sha string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	token = "slt_" + hex.EncodeToString(b)
	h := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(h[:])
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p, the authenticated principal.
func WithPrincipal(ctx context.Context, p *ledger.Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal ctx carries, or nil.
func From(ctx context.Context) *ledger.Principal {
	p, _ := ctx.Value(ctxKey{}).(*ledger.Principal)
	return p
}
