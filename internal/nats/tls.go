package nats

import (
	"crypto/tls"

	"github.com/nats-io/nats-server/v2/server"
)

// tlsTimeout is how long, in seconds, a NATS client has to complete its TLS
// handshake.
const tlsTimeout = 5

// setTLS makes the embedded server's client listener require TLS with the
// certificates of cfg (nil: no TLS). Client certificates are not asked for:
// NATS clients authenticate by user and password. Sharelog's own connection
// is in-process and needs no TLS. The server's ClientURL then has the
// scheme tls://.
func setTLS(opts *server.Options, cfg *tls.Config) {
	if cfg == nil {
		return
	}
	c := cfg.Clone()
	c.ClientAuth, c.ClientCAs = tls.NoClientCert, nil
	opts.TLSConfig = c
	opts.TLSTimeout = tlsTimeout
}
