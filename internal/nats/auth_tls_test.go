package nats_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsio "github.com/nats-io/nats.go"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/nats"
)

// testCA is a certificate authority for mutual TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for cn, for a server (on 127.0.0.1) or a client.
func (ca *testCA) issue(t *testing.T, cn string, serial int64, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestEmbeddedServerCertificates: with mutual TLS, a client certificate whose
// common name an access file entry gives names that principal, with its
// permissions; any other certificate gets nothing.
func TestEmbeddedServerCertificates(t *testing.T) {
	_, sha := access.NewToken()
	c, err := access.Parse([]byte(`principals:
  - {name: casework, roles: [producer], sources: [casework], certificate: casework.example.org}
  - {name: auditor, roles: [auditor], tokenSHA256: ` + sha + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := nats.NewAuth(c)
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	opts := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: filepath.Join(t.TempDir(), "js"),
		TLS: true, TLSVerify: true,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{ca.issue(t, "127.0.0.1", 2, x509.ExtKeyUsageServerAuth)},
			ClientCAs:    ca.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		},
		CustomClientAuthentication: auth,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("not ready")
	}
	connect := func(cn string, serial int64) (*client, error) {
		cfg := &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{ca.issue(t, cn, serial, x509.ExtKeyUsageClientAuth)}, MinVersion: tls.VersionTLS12}
		return dial(ns.ClientURL(), "", "", natsio.Secure(cfg), natsio.CustomInboxPrefix(nats.InboxPrefix("casework")))
	}
	p, err := connect("casework.example.org", 3)
	if err != nil {
		t.Fatalf("casework's certificate: %v", err)
	}
	defer p.nc.Close()
	if err := p.nc.Publish(nats.SubjectInNotify, nil); err != nil {
		t.Fatal(err)
	}
	p.denied(t, "casework by certificate", nats.SubjectInNotify)
	sub, err := p.nc.SubscribeSync("sharelog.rejected.*.casework")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	p.noViolation(t, "casework by certificate, its own rejections")
	for _, cn := range []string{"auditor", "someone.example.org"} {
		if q, err := connect(cn, 4); err == nil {
			q.nc.Close()
			t.Errorf("certificate %q: connected, want refused", cn)
		}
	}
}
