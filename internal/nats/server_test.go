package nats_test

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/nats"
)

// TestConnectEmbedded checks how sharelog's own client reaches the embedded
// server: over the loopback interface when the listener is plain, even when
// it listens on every interface, with the internal user's password when
// there is an access file; in-process when the listener requires TLS.
func TestConnectEmbedded(t *testing.T) {
	c, err := access.Parse([]byte("principals:\n  - {name: casework, roles: [producer], sources: [casework], certificate: casework.example.org}\n"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := nats.NewAuth(c)
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "127.0.0.1", 2, x509.ExtKeyUsageServerAuth)}, MinVersion: tls.VersionTLS12}
	for _, tc := range []struct {
		name, listen string
		auth         *nats.Auth
		tls          *tls.Config
		want         string // the connected address's prefix
	}{
		{name: "loopback", listen: "127.0.0.1:0", want: "127.0.0.1:"},
		{name: "every interface", listen: "0.0.0.0:0", want: "127.0.0.1:"},
		{name: "access file", listen: "127.0.0.1:0", auth: auth, want: "127.0.0.1:"},
		{name: "TLS", listen: "127.0.0.1:0", tls: serverTLS, want: "pipe"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := nats.StartServer(nats.ServerConfig{Listen: tc.listen, StoreDir: filepath.Join(t.TempDir(), "js"), Auth: tc.auth, TLS: tc.tls}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(ns.Shutdown)
			var opts []natsio.Option
			if tc.auth != nil {
				opts = append(opts, tc.auth.Internal())
			}
			nc, err := nats.ConnectEmbedded(ns, tc.tls != nil, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if got := nc.ConnectedAddr(); !strings.HasPrefix(got, tc.want) {
				t.Errorf("connected to %q, want %q...", got, tc.want)
			}
			// The connection carries requests: the JetStream account info
			// answers only a client the server admitted.
			if _, err := nc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
				t.Errorf("request over the connection: %v", err)
			}
		})
	}
}
