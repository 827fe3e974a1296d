package nats

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"

	"github.com/nats-io/nats-server/v2/server"
	natsio "github.com/nats-io/nats.go"

	"github.com/sharelog/sharelog/internal/access"
)

// InternalUser is the NATS user of sharelog's own connection, the one user
// with every permission. No principal may be called so (CheckSubjects).
const InternalUser = "sharelog"

// Auth authenticates the embedded server's clients against the --access
// file: user = the principal's name, password = its bearer token (DESIGN.md,
// "Access"). The file keeps only SHA-256 hashes of the tokens, which the
// server's own user list cannot check, so Auth is the server's
// CustomClientAuthentication: it hashes the password, looks the principal up
// by it (access.Control.Token), checks the name, and registers the
// principal's Permissions on the connection. A client without a password
// is named by its verified client certificate instead, when the server
// verifies them (mutual TLS). sharelog's own connection logs
// in as InternalUser with a random secret made at each start.
type Auth struct {
	control *access.Control
	secret  string
	hash    [sha256.Size]byte // of secret
}

// NewAuth returns an Auth for the principals of c, with a new secret for
// sharelog's own connection. It refuses an access file whose principals
// cannot be told apart by subject (CheckSubjects).
func NewAuth(c *access.Control) (*Auth, error) {
	if err := CheckSubjects(c); err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	secret := hex.EncodeToString(b)
	return &Auth{control: c, secret: secret, hash: sha256.Sum256([]byte(secret))}, nil
}

// Control returns the access file a is for.
func (a *Auth) Control() *access.Control { return a.control }

// Internal returns the connect option of sharelog's own connection.
func (a *Auth) Internal() natsio.Option { return natsio.UserInfo(InternalUser, a.secret) }

// Check implements server.Authentication: it admits a client connection
// whose user and password name a principal, or sharelog's own, and
// registers its permissions. Everything else is refused.
func (a *Auth) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	o := c.GetOpts()
	if o.Username == "" && o.Password == "" {
		return a.checkCertificate(c)
	}
	if o.Username == "" || o.Password == "" {
		return false
	}
	if o.Username == InternalUser {
		h := sha256.Sum256([]byte(o.Password))
		if subtle.ConstantTimeCompare(h[:], a.hash[:]) != 1 {
			return false
		}
		c.RegisterUser(&server.User{Username: InternalUser}) // no permissions: every subject
		return true
	}
	p := a.control.Token(o.Password)
	if p == nil || p.Name != o.Username {
		return false
	}
	c.RegisterUser(&server.User{Username: p.Name, Permissions: Permissions(p)})
	return true
}

// checkCertificate admits a client without user and password whose client
// certificate the server verified (mutual TLS, when the server requires
// and verifies client certificates) and whose subject common name names a
// principal (access.Control.Certificate).
func (a *Auth) checkCertificate(c server.ClientAuthentication) bool {
	st := c.GetTLSConnectionState()
	if st == nil || len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		return false
	}
	p := a.control.Certificate(st.VerifiedChains[0][0].Subject.CommonName)
	if p == nil {
		return false
	}
	c.RegisterUser(&server.User{Username: p.Name, Permissions: Permissions(p)})
	return true
}

// applyAuth makes the server authenticate clients with auth, when there is
// one.
func applyAuth(opts *server.Options, auth *Auth) {
	if auth != nil {
		opts.CustomClientAuthentication = auth
	}
}
