package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/sharelog/sharelog/internal/access"
)

// openAccess loads the --access file into m.Access. Without one it makes
// the safe default hold (DESIGN.md, "Access"): nobody is authenticated, so
// sharelog listens on loopback addresses only, refuses any other --http or
// --nats-listen, and says so at start.
func (m *Main) openAccess() error {
	cfg := m.Config
	if cfg.Access != "" {
		c, err := access.Load(cfg.Access)
		if err != nil {
			return fmt.Errorf("--access: %w", err)
		}
		m.Access = c
		m.Logger.Info("access file loaded: every request is authenticated", "file", cfg.Access, "principals", len(c.Entries()))
		return nil
	}
	if !loopback(cfg.HTTP) {
		return fmt.Errorf("--http %q is not a loopback address: without --access nobody is authenticated, so sharelog listens on 127.0.0.1, ::1 or localhost only (give --access FILE to listen on a network)", cfg.HTTP)
	}
	if cfg.NATS == "" && !loopback(cfg.NATSListen) {
		return fmt.Errorf("--nats-listen %q is not a loopback address: without --access nobody is authenticated, so sharelog listens on 127.0.0.1, ::1 or localhost only (give --access FILE to listen on a network)", cfg.NATSListen)
	}
	m.Logger.Warn("no --access file: nobody is authenticated and anyone who can reach the loopback ports can do anything; listening on loopback only")
	return nil
}

// loopback reports whether addr (host:port) listens on a loopback address
// only: 127.0.0.0/8, ::1 or localhost. An empty host (":8080") or 0.0.0.0
// listens on every interface, and is not.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
