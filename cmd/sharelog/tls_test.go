package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"

	"github.com/sharelog/sharelog/internal/access"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

// newTestCA makes a self-signed CA and writes its certificate to dir/name.pem.
func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+".pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue makes a certificate for cn signed by ca, for a server (valid for
// 127.0.0.1 and localhost) or a client, and writes it and its key to
// dir/cn.pem and dir/cn-key.pem, returning their paths.
func (ca *testCA) issue(t *testing.T, dir, cn string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsClient returns an HTTP client trusting ca, presenting the certificate
// in certFile/keyFile if given.
func tlsClient(t *testing.T, ca *testCA, certFile, keyFile string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := &tls.Config{RootCAs: pool}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		// Sent whether or not the server's CAs signed it, so that the
		// server is the one to judge.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// TestTLS: with --tls-cert and --tls-key the HTTP API speaks HTTPS and the
// embedded NATS listener TLS; with --client-ca a client certificate, when
// presented, must be signed by that CA; the CLI trusts a private CA with
// --ca.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "sharelog-test-ca")
	other := newTestCA(t, dir, "other-ca")
	certFile, keyFile := ca.issue(t, dir, "sharelog-server", true)
	clientCert, clientKey := ca.issue(t, dir, "casework", false)
	strangerCert, strangerKey := other.issue(t, dir, "stranger", false)

	// The client certificate names the principal "registry" (an admin);
	// the stranger's common name is no principal.
	otherToken, sha := access.NewToken()
	accessFile := filepath.Join(dir, "access.yaml")
	if err := os.WriteFile(accessFile, []byte("principals:\n  - name: registry\n    roles: [admin]\n    certificate: casework\n"+
		"  - name: other\n    roles: [admin]\n    tokenSHA256: "+sha+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(filepath.Join(dir, "data"))
	cfg.TLSCert, cfg.TLSKey, cfg.ClientCA, cfg.Access = certFile, keyFile, ca.file, accessFile
	m := startMain(t, cfg)
	url := m.HTTP.URL()
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("URL %q, want https://", url)
	}

	t.Run("client certificate signed by the client CA", func(t *testing.T) {
		resp, err := tlsClient(t, ca, clientCert, clientKey).Get(url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
			t.Fatalf("status %s over TLS %v", resp.Status, resp.TLS != nil)
		}
	})
	t.Run("client certificate naming a principal of the access file", func(t *testing.T) {
		resp, err := tlsClient(t, ca, clientCert, clientKey).Get(url + "/v1/recipients")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/recipients as the certificate's principal: %s %s", resp.Status, b)
		}
	})
	t.Run("no client certificate: the connection is accepted, the API wants a credential", func(t *testing.T) {
		client := tlsClient(t, ca, "", "")
		resp, err := client.Get(url + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %s", resp.Status)
		}
		if resp, err = client.Get(url + "/v1/recipients"); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("GET /v1/recipients without a credential: %s, want 401", resp.Status)
		}
	})
	t.Run("client certificate of another CA: refused in the handshake", func(t *testing.T) {
		resp, err := tlsClient(t, ca, strangerCert, strangerKey).Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a certificate of another CA got %s", resp.Status)
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %v does not name the certificate", err)
		}
	})
	t.Run("server certificate from an untrusted CA: the client refuses", func(t *testing.T) {
		if _, err := (&http.Client{Timeout: 5 * time.Second}).Get(url + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("a client without the CA: %v, want a certificate error", err)
		}
	})
	t.Run("plain HTTP to the HTTPS port", func(t *testing.T) {
		resp, err := http.Get("http://" + strings.TrimPrefix(url, "https://") + "/healthz")
		if err != nil {
			return // refused outright is as good
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP got %s %s, want 400", resp.Status, b)
		}
	})
	t.Run("CLI with --ca", func(t *testing.T) {
		m.cli(t, "recipients", "--ca", ca.file, "--token", otherToken)
		t.Setenv("SHARELOG_CA", ca.file)
		m.cli(t, "recipients", "--token", otherToken)
	})
	t.Run("CLI without --ca", func(t *testing.T) {
		err, _ := m.cliErr(t, "recipients")
		if !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("recipients without --ca: %v, want a certificate error", err)
		}
	})
	t.Run("CLI with a --ca that is not PEM", func(t *testing.T) {
		err, _ := m.cliErr(t, "recipients", "--ca", keyFile+".missing")
		if !strings.Contains(err.Error(), "--ca") {
			t.Fatalf("recipients with a missing --ca file: %v, want an error naming --ca", err)
		}
	})
	t.Run("NATS over TLS", func(t *testing.T) {
		nurl := m.NATSURL()
		if !strings.HasPrefix(nurl, "tls://") {
			t.Fatalf("NATS URL %q, want tls://", nurl)
		}
		nc, err := natsio.Connect(nurl, natsio.RootCAs(ca.file), natsio.UserInfo("other", otherToken))
		if err != nil {
			t.Fatalf("connect with the CA: %v", err)
		}
		defer nc.Close()
		if !nc.TLSRequired() {
			t.Error("the connection does not require TLS")
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if nc2, err := natsio.Connect(nurl, natsio.UserInfo("other", otherToken), natsio.Timeout(2*time.Second), natsio.NoReconnect()); err == nil {
			nc2.Close()
			t.Error("a client that does not trust the CA connected")
		} else if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("a client that does not trust the CA: %v, want a certificate error", err)
		}
	})
}

// TestTLSConfigErrors: TLS flags that do not go together are named at start.
func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	certFile, keyFile := ca.issue(t, dir, "server", true)
	for _, tc := range []struct {
		name                string
		cert, key, clientCA string
		want                string
	}{
		{"certificate without key", certFile, "", "", "--tls-cert and --tls-key"},
		{"client CA without a certificate", "", "", ca.file, "--client-ca needs --tls-cert"},
		{"key not matching", certFile, certFile, "", "--tls-key"},
		{"client CA not PEM", certFile, keyFile, keyFile + ".missing", "--client-ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(filepath.Join(dir, "data"))
			cfg.TLSCert, cfg.TLSKey, cfg.ClientCA = tc.cert, tc.key, tc.clientCA
			_, err := cfg.serverTLS()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
