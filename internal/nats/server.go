package nats

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// Listen is the client address, host:port. Port 0 picks a free port.
	Listen string
	// StoreDir is where JetStream keeps its files.
	StoreDir string
	// SyncAlways makes JetStream fsync every write before it acknowledges it,
	// so that a producer's ack survives a power loss, not only a process crash.
	SyncAlways bool
	// Auth authenticates clients against the --access file (auth.go); nil
	// lets anyone connect and do anything.
	Auth *Auth
	// TLS, when set, makes the client listener require TLS (tls.go).
	TLS *tls.Config
}

// MaxPayload is the largest message the embedded server accepts. It is larger
// than the per-event limit so that an oversize event reaches the ingest loop
// and is refused with a reason, instead of being bounced by the server.
const MaxPayload = 8 << 20

// StartServer starts an embedded NATS server with JetStream and file storage
// and waits until it accepts connections.
func StartServer(cfg ServerConfig, logger *slog.Logger) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("nats-listen %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("nats-listen %q: bad port", cfg.Listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "sharelog",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Clean(cfg.StoreDir),
		SyncAlways: cfg.SyncAlways,
		MaxPayload: MaxPayload,
		NoSigs:     true,
		NoLog:      true,
	}
	applyAuth(opts, cfg.Auth)
	setTLS(opts, cfg.TLS)
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	// The server reports a port it cannot listen on only through its
	// logger's Fatalf (and otherwise waits out ReadyForConnections): catch
	// it to fail at once, naming the address and the cause.
	fatal := make(chan string, 1)
	ns.SetLoggerV2(&serverLogger{logger: logger.With("system", "nats-server"), fatal: fatal}, false, false, false)
	ns.Start()
	deadline := time.Now().Add(30 * time.Second)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-fatal:
			ns.Shutdown()
			return nil, fmt.Errorf("embedded nats server on %s (--nats-listen): %s", cfg.Listen, msg)
		default:
		}
		if time.Now().After(deadline) {
			ns.Shutdown()
			return nil, fmt.Errorf("embedded nats server on %s: not ready after 30s", cfg.Listen)
		}
	}
	logger.Info("embedded nats server started", "url", ns.ClientURL(), "store", opts.StoreDir, "sync_always", cfg.SyncAlways)
	return ns, nil
}

// serverLogger passes the embedded server's messages to slog at debug level
// (its errors are mostly clients coming and going), and its fatal errors at
// error level and to fatal, for StartServer to fail with.
type serverLogger struct {
	logger *slog.Logger
	fatal  chan<- string
}

func (l *serverLogger) Noticef(format string, v ...any) { l.logger.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.logger.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.logger.Debug(fmt.Sprintf(format, v...)) }
func (l *serverLogger) Debugf(format string, v ...any)  {}
func (l *serverLogger) Tracef(format string, v ...any)  {}

func (l *serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.logger.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
