package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/alecthomas/kong"

	slhttp "github.com/sharelog/sharelog/internal/http"
)

// serverTLS is the TLS configuration of the HTTP API and the embedded NATS
// listener, from --tls-cert, --tls-key and --client-ca; nil without them.
func (c Config) serverTLS() (*tls.Config, error) {
	if c.TLSCert == "" && c.TLSKey == "" {
		if c.ClientCA != "" {
			return nil, errors.New("--client-ca needs --tls-cert and --tls-key: mutual TLS is TLS")
		}
		return nil, nil
	}
	return slhttp.ServerTLS(c.TLSCert, c.TLSKey, c.ClientCA)
}

// limits are the HTTP API's limits from the flags.
func (c Config) limits() slhttp.Limits {
	return slhttp.Limits{
		MaxConns:    c.MaxConns,
		ReadTimeout: c.ReadTimeout,
		LookupRate:  c.LookupRate,
		LookupBurst: c.LookupBurst,
	}
}

// caFlag is --ca: a PEM file of CA certificates that the client trusts to
// sign the server's certificate, read when the flag is parsed so that a bad
// file is named at once.
type caFlag struct {
	pool *x509.CertPool
}

// Decode implements kong.MapperValue.
func (f *caFlag) Decode(ctx *kong.DecodeContext) error {
	var path string
	if err := ctx.Scan.PopValueInto("file", &path); err != nil {
		return err
	}
	pool, err := slhttp.CertPool(kong.ExpandPath(path))
	if err != nil {
		return err
	}
	f.pool = pool
	return nil
}
