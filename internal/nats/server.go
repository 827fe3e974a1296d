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
	natsio "github.com/nats-io/nats.go"
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
	// EncryptionKey, when set, encrypts the JetStream store at rest
	// (AtRestKey of the master key; see atrest.go).
	EncryptionKey string
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
	encryptAtRest(opts, cfg.EncryptionKey)
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
	if err := checkRecovered(ns, opts.StoreDir, cfg.EncryptionKey != ""); err != nil {
		ns.Shutdown()
		return nil, err
	}
	logger.Info("embedded nats server started", "url", ns.ClientURL(), "store", opts.StoreDir, "sync_always", cfg.SyncAlways, "encrypted", cfg.EncryptionKey != "")
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

// ConnectEmbedded connects sharelog's own client to the embedded server ns:
// over TCP to its client listener (at the loopback address when it listens
// on every interface), or in-process when the listener requires TLS (this
// client holds no certificate to trust).
//
// In-process connections are a net.Pipe, whose writes wait for the reader:
// the server then hands each 512-byte chunk of outbound messages to the
// client by a goroutine switch, and while Badger's compactions keep both
// cores busy the ingest consumer received about 2,000 messages a second
// instead of 10,000 (publish-to-queryable p99 208-350 ms against 116-121 ms
// over loopback at 10,000 events/s, sharelog bench --events 300000 --latency
// 20s --latency-rate 10000, two runs of each). The kernel's socket buffers
// let the server write what it has and the client read it in one go.
func ConnectEmbedded(ns *server.Server, tlsRequired bool, opts ...natsio.Option) (*natsio.Conn, error) {
	addr, ok := ns.Addr().(*net.TCPAddr)
	if tlsRequired || !ok {
		return natsio.Connect("", append(opts, natsio.InProcessServer(ns))...)
	}
	host := addr.IP
	if host.IsUnspecified() { // every interface: 0.0.0.0 and :: take IPv4 too
		host = net.IPv4(127, 0, 0, 1)
	}
	url := "nats://" + net.JoinHostPort(host.String(), strconv.Itoa(addr.Port))
	// The server is in this process: a lost connection is a broken socket,
	// not a server gone, so the client reconnects for as long as it lives.
	return natsio.Connect(url, append(opts, natsio.MaxReconnects(-1), natsio.ReconnectWait(100*time.Millisecond))...)
}
