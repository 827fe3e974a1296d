package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// NATSConfigCmd prints the NATS authorization block of an access file, for
// an existing NATS server or cluster (--nats).
type NATSConfigCmd struct {
	Access string `help:"The access file (as serve --access)." required:"" env:"SHARELOG_ACCESS" type:"existingfile"`
}

// Run implements the nats-config command.
func (c *NATSConfigCmd) Run(env *Env) error {
	ctl, err := access.Load(c.Access)
	if err != nil {
		return err
	}
	return writeNATSConfig(env.Stdout, ctl)
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
// password is an environment variable of the nats-server process
// (TokenVar); the server refuses to start while one is unset.
func writeNATSConfig(w io.Writer, ctl *access.Control) error {
	if err := nats.CheckSubjects(ctl); err != nil {
		return err
	}
	vars := map[string]string{NATSPasswordVar: nats.InternalUser}
	var b strings.Builder
	b.WriteString(`# NATS authorization for sharelog, printed by "sharelog nats-config" from an
# access file: the permissions the embedded server gives each principal.
# Passwords are the principals' bearer tokens, taken from the nats-server's
# environment (the access file keeps only their SHA-256 hashes, which a NATS
# configuration cannot check); nats-server refuses to start while one is unset.
# Each principal's client connects with its own reply-inbox prefix
# (nats.go CustomInboxPrefix, nats CLI --inbox-prefix), given beside it.
authorization {
  users = [
    # sharelog itself: every permission (serve --nats nats://sharelog:$` + NATSPasswordVar + `@host:4222)
    {user: "` + nats.InternalUser + `", password: $` + NATSPasswordVar + `}
`)
	for _, e := range ctl.Entries() {
		p := e.Principal()
		v := TokenVar(p.Name)
		if other, dup := vars[v]; dup {
			return fmt.Errorf("principals %q and %q would share the password variable %s; rename one", other, p.Name, v)
		}
		vars[v] = p.Name
		perms := nats.Permissions(p)
		fmt.Fprintf(&b, "    # %s (%s), inbox prefix %s\n", p.Name, roleList(p.Roles), nats.InboxPrefix(p.Name))
		fmt.Fprintf(&b, "    {user: %s, password: $%s, permissions: {\n", confString(p.Name), v)
		fmt.Fprintf(&b, "      publish: %s\n", confPermission(perms.Publish))
		fmt.Fprintf(&b, "      subscribe: %s\n", confPermission(perms.Subscribe))
		b.WriteString("    }}\n")
	}
	b.WriteString("  ]\n}\n")
	_, err := io.WriteString(w, b.String())
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
