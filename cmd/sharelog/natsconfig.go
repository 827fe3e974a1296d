package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// NATSConfigCmd prints the NATS authorization block of an access file, for
// an existing NATS server or cluster (--nats).
type NATSConfigCmd struct {
	Access string `help:"The access file (as serve --access)." required:"" env:"SHARELOG_ACCESS" type:"existingfile"`
	Bcrypt bool   `help:"Print bcrypt hashes of the passwords instead of environment variable references: each token is read now from SHARELOG_TOKEN_<NAME> (and sharelog's password from SHARELOG_NATS_PASSWORD), checked against the access file's hash, and not needed by nats-server afterwards." name:"bcrypt"`
}

// Run implements the nats-config command.
func (c *NATSConfigCmd) Run(env *Env) error {
	ctl, err := access.Load(c.Access)
	if err != nil {
		return err
	}
	password := envPassword
	if c.Bcrypt {
		password = bcryptPassword
	}
	return writeNATSConfig(env.Stdout, ctl, password)
}

// A password writes the password of a principal (or, with an empty hash,
// of sharelog's own user) whose token has SHA-256 hash tokenSHA256 and
// whose environment variable is v.
type password func(v, tokenSHA256 string) (string, error)

// envPassword refers to the environment variable v of the nats-server.
func envPassword(v, _ string) (string, error) { return "$" + v, nil }

// bcryptCost is the cost of the printed bcrypt hashes (tests lower it).
var bcryptCost = bcrypt.DefaultCost

// bcryptPassword reads the token from v now, checks it against the access
// file's hash, and returns its bcrypt hash, which nats-server checks.
func bcryptPassword(v, tokenSHA256 string) (string, error) {
	tok := os.Getenv(v)
	if tok == "" {
		return "", fmt.Errorf("--bcrypt: %s is not set", v)
	}
	if tokenSHA256 != "" {
		h := sha256.Sum256([]byte(tok))
		if hex.EncodeToString(h[:]) != strings.ToLower(tokenSHA256) {
			return "", fmt.Errorf("--bcrypt: %s is not the token whose tokenSHA256 the access file holds", v)
		}
	}
	b, err := bcrypt.GenerateFromPassword([]byte(tok), bcryptCost)
	if err != nil {
		return "", fmt.Errorf("--bcrypt: %s: %w", v, err)
	}
	return confString(string(b)), nil
}

// NATSPasswordVar is the environment variable of sharelog's own password in
// the printed configuration; sharelog gives the same password in its --nats
// URL (nats://sharelog:PASSWORD@host:4222).
const NATSPasswordVar = "SHARELOG_NATS_PASSWORD"

// TokenVar returns the environment variable that holds the bearer token of
// the principal called name in the printed configuration:
// SHARELOG_TOKEN_<NAME>, the name upper-cased with every byte other than a
// letter or digit as "_".
func TokenVar(name string) string {
	return "SHARELOG_TOKEN_" + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, name)
}

// writeNATSConfig writes the authorization block of ctl's principals in
// the NATS server configuration format: one user per principal, with the
// permissions the embedded server gives it (nats.Permissions), and sharelog's
// own user with every permission. The access file keeps only SHA-256 hashes
// of the tokens, which a NATS server's configuration cannot check, so each
// password is written by password: an environment variable of the
// nats-server process (TokenVar; the server refuses to start while one is
// unset), or a bcrypt hash of the token. A principal with a certificate and
// no token is left out: the block has no way to name it.
func writeNATSConfig(w io.Writer, ctl *access.Control, password password) error {
	if err := nats.CheckSubjects(ctl); err != nil {
		return err
	}
	vars := map[string]string{NATSPasswordVar: nats.InternalUser}
	own, err := password(NATSPasswordVar, "")
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString(`# NATS authorization for sharelog, printed by "sharelog nats-config" from an
# access file: the permissions the embedded server gives each principal.
# Passwords are the principals' bearer tokens: the access file keeps only their
# SHA-256 hashes, which a NATS configuration cannot check, so each password is
# the nats-server's environment variable SHARELOG_TOKEN_<NAME> (nats-server
# refuses to start while one is unset) or, with --bcrypt, the token's bcrypt hash.
# Each principal's client connects with its own reply-inbox prefix
# (nats.go CustomInboxPrefix, nats CLI --inbox-prefix), given beside it.
authorization {
  users = [
    # sharelog itself: every permission (serve --nats nats://sharelog:$` + NATSPasswordVar + `@host:4222)
    {user: "` + nats.InternalUser + `", password: ` + own + `}
`)
	for _, e := range ctl.Entries() {
		p := e.Principal()
		if e.TokenSHA256 == "" {
			fmt.Fprintf(&b, "    # %s: a certificate and no token, so no user here\n", p.Name)
			continue
		}
		v := TokenVar(p.Name)
		if other, dup := vars[v]; dup {
			return fmt.Errorf("principals %q and %q would share the password variable %s; rename one", other, p.Name, v)
		}
		vars[v] = p.Name
		pw, err := password(v, e.TokenSHA256)
		if err != nil {
			return err
		}
		perms := nats.Permissions(p)
		fmt.Fprintf(&b, "    # %s (%s), inbox prefix %s\n", p.Name, roleList(p.Roles), nats.InboxPrefix(p.Name))
		fmt.Fprintf(&b, "    {user: %s, password: %s, permissions: {\n", confString(p.Name), pw)
		fmt.Fprintf(&b, "      publish: %s\n", confPermission(perms.Publish))
		fmt.Fprintf(&b, "      subscribe: %s\n", confPermission(perms.Subscribe))
		b.WriteString("    }}\n")
	}
	b.WriteString("  ]\n}\n")
	_, err = io.WriteString(w, b.String())
	return err
}

func roleList(roles []ledger.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// confPermission writes a subject permission as {allow: [...], deny: [...]}.
func confPermission(sp *server.SubjectPermission) string {
	var parts []string
	if len(sp.Allow) > 0 {
		parts = append(parts, "allow: "+confList(sp.Allow))
	}
	if len(sp.Deny) > 0 {
		parts = append(parts, "deny: "+confList(sp.Deny))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func confList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = confString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// confString quotes s for the configuration format, whose double-quoted
// strings take the escapes of Go's.
func confString(s string) string { return strconv.Quote(s) }
