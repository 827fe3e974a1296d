package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/cluster"
	"github.com/sharelog/sharelog/internal/console"
	"github.com/sharelog/sharelog/internal/consultation"
	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
	"github.com/sharelog/sharelog/internal/policy"
	"github.com/sharelog/sharelog/internal/recipients"
	"github.com/sharelog/sharelog/internal/retention"
	"github.com/sharelog/sharelog/internal/snapshot"
	"github.com/sharelog/sharelog/internal/store"
	"github.com/sharelog/sharelog/internal/vocab"
	"github.com/sharelog/sharelog/internal/witness"
	"github.com/sharelog/sharelog/schemas"
)

// ServeCmd runs the server until SIGINT or SIGTERM.
type ServeCmd struct {
	Config
}

// Config is the server's configuration.
type Config struct {
	Data       string        `help:"Data directory (ledger, JetStream store, keys)." default:"./data" env:"SHARELOG_DATA" type:"path"`
	HTTP       string        `help:"HTTP API listen address." default:"127.0.0.1:8080" env:"SHARELOG_HTTP" name:"http"`
	NATSListen string        `help:"Embedded NATS server listen address, for producers to publish to." default:"127.0.0.1:4222" env:"SHARELOG_NATS_LISTEN" name:"nats-listen"`
	NATS       string        `help:"Use this existing NATS server or cluster (URL) instead of the embedded one." env:"SHARELOG_NATS" name:"nats"`
	Recipients string        `help:"YAML file of recipients to register at start." env:"SHARELOG_RECIPIENTS" type:"path"`
	SyncAlways bool          `help:"Embedded NATS: fsync every write before acknowledging it (survives power loss, slower)." env:"SHARELOG_SYNC_ALWAYS" name:"sync-always"`
	Duplicates time.Duration `help:"JetStream duplicate window on SHARELOG_IN (sharelog dedupes forever regardless); long enough for a producer's retry after a timeout (5s by default in nats.go)." default:"10s" env:"SHARELOG_DUPLICATES"`
	// StreamKeep's default is no shorter than the default duplicate window:
	// JetStream's own Nats-Msg-Id dedupe, which a restart rebuilds from the
	// messages the stream still holds, sees every message of its window
	// (TestDuplicatesDefault); and it is short,
	// so that the stream holds minutes of input rather than a second copy of
	// the ledger (streamkeep.go).
	StreamKeep time.Duration `help:"How long SHARELOG_IN keeps a message once the ledger has applied it and a signed checkpoint covers it; then it is purged, so that each event is kept once, in the ledger. The default is longer than the default --duplicates window, so JetStream's own duplicate detection sees every message of its window even across a restart. With --replica the leader alone purges, and only up to the newest snapshot. 0: keep every message forever." default:"2m" env:"SHARELOG_STREAM_KEEP" name:"stream-keep"`
	LogLevel   slog.Level    `help:"Log level: debug, info, warn, error." default:"info" env:"SHARELOG_LOG_LEVEL"`
	Policy     string        `help:"YAML policy file: when notices to recipients are due, and retention (deploy/policy.example.yaml is an example)." env:"SHARELOG_POLICY" type:"path"`
	Access     string        `help:"Access file: the principals, their roles and token hashes (deploy/access.example.yaml); turns on authentication for HTTP and NATS. Without it sharelog listens on loopback addresses only." env:"SHARELOG_ACCESS" type:"path"`

	WebhookSecrets string        `help:"YAML file of the recipients' webhook secrets (see deploy/WEBHOOKS.md)." env:"SHARELOG_WEBHOOK_SECRETS" name:"webhook-secrets" type:"path"`
	RemindEvery    time.Duration `help:"Deliver an overdue notice again this often (0: never)." default:"168h" env:"SHARELOG_REMIND_EVERY" name:"remind-every"`

	MasterKeyFile string        `help:"File of the master key that wraps the keys sealing personal data (default DATA/master.key, created on first start). Keep it apart from backups of DATA." env:"SHARELOG_MASTER_KEY_FILE" name:"master-key-file" type:"path"`
	EncryptAtRest bool          `help:"Accepted so that older command lines still start: encryption at rest is now the default." env:"SHARELOG_ENCRYPT_AT_REST" name:"encrypt-at-rest" hidden:""`
	ForgetEvery   time.Duration `help:"Run the forgetting job (erasures closed, retention expired, then physical erasure) this often: the bound on the time to physical erasure (0: never)." default:"1h" env:"SHARELOG_FORGET_EVERY" name:"forget-every"`

	// The ledger and the embedded JetStream store are encrypted at rest by
	// default (at-rest.go).
	UnencryptedLedger bool `help:"Keep the ledger's Badger files unencrypted: only for a ledger created without encryption at rest (by a sharelog before it was the default), which is refused without this flag." env:"SHARELOG_UNENCRYPTED_LEDGER" name:"unencrypted-ledger"`
	// UnencryptedJetStream keeps the embedded JetStream store in clear. It
	// has no flag, since nats-server encrypts an existing unencrypted store
	// on its first start with a key; tests set it to search the stream
	// files for what they hold.
	UnencryptedJetStream bool `kong:"-"`

	RejectedMaxAge time.Duration `help:"How long SHARELOG_REJECTED keeps a refused message (0: the default, 720h)." default:"720h" env:"SHARELOG_REJECTED_MAX_AGE" name:"rejected-max-age"`

	// The checkpoint signing key (checkpoint_publish.go).
	CheckpointKeyFile string `help:"File of the key that signs checkpoints (default DATA/checkpoint.key, created on first start). Keep it apart from DATA: whoever can write the ledger and read this key can re-sign a rewritten ledger." env:"SHARELOG_CHECKPOINT_KEY_FILE" name:"checkpoint-key-file" type:"path"`

	// TLS and limits (tls.go).
	TLSCert        string        `help:"PEM certificate (chain) for HTTPS and for TLS on the embedded NATS listener." env:"SHARELOG_TLS_CERT" name:"tls-cert" type:"path"`
	TLSKey         string        `help:"PEM private key of --tls-cert." env:"SHARELOG_TLS_KEY" name:"tls-key" type:"path"`
	ClientCA       string        `help:"PEM CA certificates: HTTP clients presenting a certificate must have one they signed (mutual TLS)." env:"SHARELOG_CLIENT_CA" name:"client-ca" type:"path"`
	MaxBatchEvents int           `help:"Most events in one batch (HTTP or NATS service); a batch with more is refused (413) as it is read." default:"10000" env:"SHARELOG_MAX_BATCH_EVENTS" name:"max-batch-events"`
	MaxConns       int           `help:"Most HTTP connections served at once; more wait to be accepted." default:"1024" env:"SHARELOG_MAX_CONNS" name:"max-conns"`
	ReadTimeout    time.Duration `help:"Time allowed to read one HTTP request, headers and body; a slower body is refused and its connection closed." default:"30s" env:"SHARELOG_READ_TIMEOUT" name:"read-timeout"`
	LookupRate     float64       `help:"Lookups of people's data each principal (or address, without --access) may make per second; over it, 429 (negative: no limit)." default:"5" env:"SHARELOG_LOOKUP_RATE" name:"lookup-rate"`
	LookupBurst    int           `help:"Lookups a principal may make at once before --lookup-rate applies." default:"50" env:"SHARELOG_LOOKUP_BURST" name:"lookup-burst"`

	// OIDC is the web console's OpenID Connect sign-in (console.OIDC).
	OIDC string `help:"YAML file configuring the web console's sign-in with your OpenID Connect provider (deploy/oidc.example.yaml)." env:"SHARELOG_OIDC" name:"oidc" type:"path"`

	// Replicas on one NATS cluster (cluster.go) and their witness (witness.go).
	Replica       string        `help:"This process's replica name (letters, digits, '-', '_'): one of several sharelog processes on one NATS cluster (--nats), each folding the same stream and answering queries; the holder of a lease in NATS alone delivers notices, runs the forgetting job and publishes the official checkpoint." env:"SHARELOG_REPLICA" name:"replica"`
	LeaseTTL      time.Duration `help:"With --replica: how long the leader's lease lasts unrenewed, the longest side effects pause when the leader is lost; the same on every replica." default:"10s" env:"SHARELOG_LEASE_TTL" name:"lease-ttl"`
	WitnessKeys   string        `help:"File of the replicas' checkpoint keys (lines: REPLICA VERIFIER-KEY); only these are accepted. Without it each replica's key is pinned on first sight. Needs --replica." env:"SHARELOG_WITNESS_KEYS" name:"witness-keys" type:"path"`
	SnapshotEvery time.Duration `help:"With --replica: the leader snapshots the ledger into the NATS object store this often, for replicas to rebuild from (0: never)." default:"1h" env:"SHARELOG_SNAPSHOT_EVERY" name:"snapshot-every"`

	MemoryLimit int `help:"Soft limit, in MiB, of the memory the Go runtime holds (the ledger's memtables and caches and the embedded NATS server live in it); the garbage collector works harder near it. GOMEMLIMIT, when set, takes precedence. 0: no limit." default:"768" env:"SHARELOG_MEMORY_LIMIT" name:"memory-limit"`

	// StreamReplicas replicates sharelog's streams and buckets on a NATS cluster (replicas.go).
	StreamReplicas int `help:"Copies JetStream keeps of each of sharelog's streams and key-value buckets (1 to 5); above 1 needs --nats, a cluster of at least that many JetStream servers. An existing stream is moved to it." default:"1" env:"SHARELOG_STREAM_REPLICAS" name:"stream-replicas"`
}

// defaultMemoryLimit is --memory-limit's default, in MiB.
const defaultMemoryLimit = 768

// setMemoryLimit sets the Go runtime's soft memory limit to mib MiB unless
// it is 0 or the environment sets GOMEMLIMIT.
func setMemoryLimit(mib int, logger *slog.Logger) {
	if mib <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(int64(mib) << 20)
	logger.Debug("memory limit set", "MiB", mib)
}

// natsOptions are the options of sharelog's own NATS connection, to the
// embedded server or to --nats: its name, and a log line when it drops (not
// when it is closed) and when it is back.
func (m *Main) natsOptions() []natsio.Option {
	return []natsio.Option{natsio.Name("sharelog"),
		natsio.DisconnectErrHandler(func(_ *natsio.Conn, err error) {
			if err != nil {
				m.Logger.Warn("nats disconnected", "err", err)
			}
		}),
		natsio.ReconnectHandler(func(*natsio.Conn) { m.Logger.Info("nats reconnected") })}
}

// Run implements the serve command.
func (c *ServeCmd) Run(env *Env) error {
	logger := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	m := NewMain(c.Config, logger)
	if err := m.Open(env.Ctx); err != nil {
		m.Close()
		return err
	}
	logger.Info("sharelog ready", "http", m.HTTP.URL(), "nats", m.NATSURL())
	err := m.Run(env.Ctx) // a failed loop's error is logged as it fails, and returned here
	logger.Info("shutting down")
	if cerr := m.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// Main is one running sharelog: the components, started in order by Open and
// stopped in reverse by Close. The end-to-end tests run the same Main.
//
// Main owns every background loop (ingest, notify, retention, checkpoint):
// each runs in one group under one lifetime context, through the same
// contract, Run(ctx) error, which returns nil once ctx is done and otherwise
// only on a fatal error, wrapped with the loop's name. The first loop to fail
// ends the lifetime: the other loops stop, /readyz names the failed loop, and
// Run returns its error.
type Main struct {
	Config Config
	Logger *slog.Logger

	// Access is the loaded --access file; nil without one (access.go).
	Access *access.Control

	NATSServer *server.Server // nil with --nats
	Conn       *natsio.Conn
	JetStream  jetstream.JetStream
	Store      *store.Store
	Decoder    *cloudevents.Decoder
	Metrics    *metrics.Metrics
	Publisher  *nats.Publisher
	Ingester   *nats.Ingester
	Keys       *nats.Keys // secrets replicas share; nil unless --replica (determinism.go)
	HTTP       *slhttp.Server
	Service    *nats.Service // request-reply for producers on nats.SubjectService
	// Lease says whether this replica does the side effects; nil without
	// --replica, when it always does (cluster.go).
	Lease *cluster.Lease
	// Notifier delivers notices (notify.go).
	Notifier *notify.Dispatcher

	// Checkpointer signs checkpoints of the ledger's Merkle tree (checkpoint.go).
	Checkpointer *checkpoint.Checkpointer
	// Witness checks the other replicas' checkpoints (witness.go); nil
	// without --replica.
	Witness *witness.Witness
	// Retention is the forgetting job (retention.go).
	Retention *retention.Job
	// Snapshots keeps the ledger's snapshots in NATS; nil outside replica
	// mode (snapshot.go).
	Snapshots *snapshot.Snapshots
	// restored says the ledger was rebuilt from a snapshot at this start:
	// it is checked against the other replicas before serving (snapshot.go).
	restored bool

	// Consultations records the consultation log (DPA 2018 s.62); the HTTP
	// API calls its Consult before answering a lookup.
	Consultations *consultation.Log

	// consultOff, set before Open by the benchmark alone (bench.go), turns
	// the consultation log off while it holds true, so that who is timed
	// with the log on and off on the same ledger. serve never sets it.
	consultOff *atomic.Bool

	// lifetime is the background loops' context: cancelled by Close, or by
	// the group when a loop fails.
	lifetime context.Context
	cancel   context.CancelFunc
	group    *errgroup.Group
	failed   atomic.Pointer[loopFailure] // the first loop that failed
}

// loopFailure is a background loop that returned an error.
type loopFailure struct {
	name string
	err  error
}

// Names of the background loops, as /readyz and the logs give them.
const (
	loopIngest     = "ingest"
	loopNotify     = "notify"
	loopRetention  = "retention"
	loopCheckpoint = "checkpoint"
	loopService    = "service"
	loopConsult    = "consultation"
	loopSnapshot   = "snapshot"
	loopStreamKeep = "stream-keep"
)

// goLoop runs a background loop in Main's group. run must follow the loops'
// contract: return nil once its ctx is done, or a fatal error.
func (m *Main) goLoop(name string, run func(context.Context) error) {
	ctx := m.lifetime
	m.group.Go(func() error {
		err := run(ctx)
		if err == nil && ctx.Err() == nil {
			err = fmt.Errorf("%s: stopped before shutdown", name)
		}
		if err != nil {
			m.failed.CompareAndSwap(nil, &loopFailure{name: name, err: err})
			m.Logger.Error("background loop failed", "loop", name, "err", err)
		}
		return err
	})
}

// NewMain returns a Main for cfg.
func NewMain(cfg Config, logger *slog.Logger) *Main {
	if logger == nil {
		logger = slog.Default()
	}
	return &Main{Config: cfg, Logger: logger}
}

// NATSURL returns the URL producers publish to.
func (m *Main) NATSURL() string {
	if m.NATSServer != nil {
		return m.NATSServer.ClientURL()
	}
	return m.Config.NATS
}

// Open starts every component. On error, call Close to release what started.
func (m *Main) Open(ctx context.Context) error {
	cfg := m.Config
	if err := m.openAccess(); err != nil {
		return err
	}
	if err := cfg.checkStreamReplicas(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	setMemoryLimit(cfg.MemoryLimit, m.Logger)
	lifetime, cancel := context.WithCancel(context.Background())
	m.group, m.lifetime = errgroup.WithContext(lifetime)
	m.cancel = cancel
	tlsConfig, err := cfg.serverTLS()
	if err != nil {
		return err
	}
	if cfg.NATS == "" {
		var natsAuth *nats.Auth
		if natsAuth, err = m.natsAuth(); err != nil {
			return err
		}
		var key string
		if key, err = jetStreamKey(cfg); err != nil {
			return err
		}
		m.NATSServer, err = nats.StartServer(nats.ServerConfig{
			Listen:        cfg.NATSListen,
			StoreDir:      filepath.Join(cfg.Data, "jetstream"),
			SyncAlways:    cfg.SyncAlways,
			Auth:          natsAuth,
			TLS:           tlsConfig,
			EncryptionKey: key,
		}, m.Logger)
		if err != nil {
			return err
		}
		opts := m.natsOptions()
		if natsAuth != nil {
			opts = append(opts, natsAuth.Internal())
		}
		m.Conn, err = nats.ConnectEmbedded(m.NATSServer, tlsConfig != nil, opts...)
	} else {
		m.Conn, err = natsio.Connect(cfg.NATS, append(m.natsOptions(), natsio.MaxReconnects(-1))...)
	}
	if err != nil {
		return fmt.Errorf("nats connect: %w", err)
	}
	if m.JetStream, err = nats.NewJetStream(m.Conn); err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	if err := m.startCluster(ctx); err != nil {
		return err
	}
	atomic, err := nats.EnsureStreams(ctx, m.JetStream, nats.StreamConfig{Duplicates: cfg.Duplicates, RejectedMaxAge: cfg.RejectedMaxAge, Replicas: cfg.streamReplicas()})
	if err != nil {
		return err
	}
	pol, err := policy.Load(cfg.Policy)
	if err != nil {
		return err
	}
	deadlines, err := pol.LedgerDeadlines()
	if err != nil {
		return err
	}
	secrets, err := m.openKeys(ctx) // determinism.go
	if err != nil {
		return err
	}
	m.Store, err = m.openLedger(ctx, store.Config{
		Dir:           filepath.Join(cfg.Data, "ledger"),
		KeyFile:       filepath.Join(cfg.Data, "site.key"),
		MasterKeyFile: cfg.MasterKeyFile,
		EncryptAtRest: !cfg.UnencryptedLedger,
		Logger:        m.Logger,
		Deadlines:     deadlines,
		Secrets:       secrets,
	})
	if err != nil {
		return ledgerAtRestError(err)
	}
	if err := m.startCheckpoints(ctx); err != nil {
		return err
	}
	voc, err := vocab.Load()
	if err != nil {
		return err
	}
	if m.Decoder, err = cloudevents.NewDecoder(voc); err != nil {
		return err
	}
	m.Decoder.MaxBatchEvents = cfg.MaxBatchEvents
	m.Metrics = metrics.New()
	m.observeLease()
	st := m.Store
	m.Metrics.ObserveObligations(func() (int, int, error) { return st.ObligationCounts(context.Background()) })
	m.Publisher = nats.NewPublisher(m.JetStream, atomic)
	m.Ingester = nats.NewIngester(m.JetStream, m.Store, m.Decoder, m.Metrics, m.Logger, nats.IngestConfig{Access: m.Access, Gapless: cfg.Replica != ""})
	if err := m.startWitness(ctx); err != nil {
		return err
	}

	m.goLoop(loopIngest, m.Ingester.Run)
	m.startShredder()                             // determinism.go
	if err := m.verifyRestored(ctx); err != nil { // snapshot.go
		return err
	}

	if cfg.Recipients != "" {
		if err := m.loadRecipients(ctx, cfg.Recipients); err != nil {
			return err
		}
	}
	if err := m.startNotify(ctx); err != nil {
		return err
	}
	m.startRetention(pol)
	m.startSnapshots()
	m.startStreamKeep() // streamkeep.go
	openapi, err := schemas.FS.ReadFile("openapi.yaml")
	if err != nil {
		return err
	}
	m.HTTP = &slhttp.Server{
		Addr:      cfg.HTTP,
		Ledger:    m.Store,
		Tree:      m.Store,
		Decoder:   m.Decoder,
		Publisher: m.Publisher,
		CatchUp:   m.Ingester.CatchUp,
		Ready:     m.ready,
		Role:      m.role,
		Metrics:   m.Metrics,
		Logger:    m.Logger,
		OpenAPI:   openapi,
		Access:    m.Access,
		TLS:       tlsConfig,
		Limits:    cfg.limits(),
	}
	m.HTTP.Notices = m.Notifier
	if m.Witness != nil {
		m.HTTP.ReadyDetail = m.Witness.Warnings
	}
	m.HTTP.CheckReplay = m.Store.CheckReplay // a replay with other content: 409
	// Every lookup of a person is in the ledger before it is answered. Its
	// events are published asynchronously, not in atomic batches: an
	// atomic batch's commit costs JetStream a sync of its own (about 15 ms
	// here), and the consultation is durable once the ingest has committed
	// it, which Consult waits for.
	m.Consultations = consultation.New(nats.NewPublisher(m.JetStream, false), m.Store, m.Decoder, consultation.Config{}, m.Logger)
	m.goLoop(loopConsult, m.Consultations.Run)
	m.HTTP.Consult = m.Consultations.Consult
	if off := m.consultOff; off != nil {
		m.HTTP.Consult = func(ctx context.Context, c ledger.Consultation) error {
			if off.Load() {
				return nil
			}
			return m.Consultations.Consult(ctx, c)
		}
	}
	if cfg.OIDC != "" {
		if m.HTTP.ConsoleOIDC, err = console.LoadOIDC(cfg.OIDC); err != nil {
			return err
		}
	}
	// The NATS service answers producers as POST /v1/events does.
	m.Service = nats.NewService(m.Conn, m.Decoder, m.HTTP.Answer, m.Logger)
	m.Service.Access = m.Access
	m.goLoop(loopService, m.Service.Run)
	return m.HTTP.Open()
}

// RecipientsSource is the CloudEvents source of recipients loaded from --recipients.
const RecipientsSource = "sharelog/recipients-file"

// loadRecipients registers the recipients in path through the ordinary input
// path, so they are ledger entries like any other. Only the definitions the
// ledger's registry does not already hold are published: JetStream's
// duplicate window (--duplicates, 2 minutes by default) drops a message
// published again only within it, so publishing the whole file on every
// start appended it to SHARELOG_IN again on every restart after the window.
// The event ids are derived from the definitions, so the ledger would have
// recorded the copies as duplicates, but the stream kept growing.
func (m *Main) loadRecipients(ctx context.Context, path string) error {
	rs, err := recipients.Load(path)
	if err != nil {
		return err
	}
	// The registry must reflect every recipient event already in
	// SHARELOG_IN (published by an earlier start, say) before it is compared.
	if err := m.catchUp(ctx, path); err != nil {
		return err
	}
	current, err := m.Store.Recipients(ctx)
	if err != nil {
		return err
	}
	held := make(map[string]string, len(current)) // recipient id -> event id of its definition
	for _, r := range current {
		if held[r.ID], err = recipients.EventID(r); err != nil {
			return err
		}
	}
	var changed []ledger.Recipient
	for _, r := range rs {
		id, err := recipients.EventID(r)
		if err != nil {
			return err
		}
		if held[r.ID] != id {
			changed = append(changed, r)
		}
	}
	if len(changed) == 0 {
		m.Logger.Info("recipients file unchanged: the ledger holds every definition", "file", path, "count", len(rs))
		return nil
	}
	raws, err := recipients.Events(changed, RecipientsSource, time.Now().UTC())
	if err != nil {
		return err
	}
	events := make([]*ledger.Event, 0, len(raws))
	for _, raw := range raws {
		ev, err := m.Decoder.DecodeStructured(raw)
		if err != nil {
			return fmt.Errorf("recipients file %s: %w", path, err)
		}
		events = append(events, ev)
	}
	if _, err := m.Publisher.Publish(ctx, "sharelog.in.config", events); err != nil {
		return fmt.Errorf("recipients file %s: %w", path, err)
	}
	if err := m.catchUp(ctx, path); err != nil {
		return err
	}
	m.Logger.Info("recipients loaded", "file", path, "count", len(rs), "new_or_changed", len(changed))
	return nil
}

// catchUp waits until the ledger has applied everything in SHARELOG_IN.
func (m *Main) catchUp(ctx context.Context, path string) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stop := context.AfterFunc(m.lifetime, cancel) // the ingest loop failed: do not wait for it
	defer stop()
	if err := m.Ingester.CatchUp(cctx); err != nil {
		if f := m.failed.Load(); f != nil {
			return f.err
		}
		return fmt.Errorf("recipients file %s: waiting for the ledger: %w", path, err)
	}
	return nil
}

// ready says why the server cannot take events, if it cannot: a failed
// background loop (by name only: its error may say more than a probe should),
// NATS disconnected, or the ingest loop not consuming.
func (m *Main) ready() error {
	var problems []string
	if f := m.failed.Load(); f != nil {
		problems = append(problems, f.name+" failed")
	}
	if !m.Conn.IsConnected() {
		problems = append(problems, "nats not connected")
	}
	if !m.Ingester.Ready() {
		problems = append(problems, "ingest not running")
	}
	if m.Notifier != nil && m.Notifier.StreamMissing() {
		problems = append(problems, "notices not delivered: no stream "+notify.StreamNotices)
	}
	if m.Witness != nil {
		if err := m.Witness.Ready(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// Run blocks until ctx is done, and then returns nil, or until a background
// loop fails, and then returns its error. Either way, call Close next.
func (m *Main) Run(ctx context.Context) error {
	if m.lifetime == nil {
		<-ctx.Done()
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case <-m.lifetime.Done(): // a loop failed, or Close was called
		if f := m.failed.Load(); f != nil {
			return f.err
		}
		return nil
	}
}

// Close stops sharelog and releases what Open started. It stops the HTTP API
// first, so that no request is left waiting for a loop that has stopped;
// then it cancels the loops' lifetime and waits for every loop; then it
// closes the other components in reverse order of start: a last checkpoint
// (covering every entry the ingest loop committed), the NATS connection, the
// embedded NATS server, the ledger. A loop's failure is Run's to return, not
// Close's. It is safe to call more than once.
func (m *Main) Close() error {
	var errs []error
	if m.HTTP != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, m.HTTP.Close(ctx))
		cancel()
		m.HTTP = nil
	}
	if m.cancel != nil {
		m.cancel()
		_ = m.group.Wait() // the first failure is Run's result
		m.cancel = nil
	}
	if m.Checkpointer != nil && m.Store != nil {
		if _, err := m.Checkpointer.Checkpoint(context.Background()); err != nil {
			m.Logger.Error("final checkpoint failed", "err", err)
		}
		m.Checkpointer = nil
	}
	if m.Conn != nil {
		m.Conn.Close()
		m.Conn = nil
	}
	if m.NATSServer != nil {
		m.NATSServer.Shutdown()
		m.NATSServer.WaitForShutdown()
		m.NATSServer = nil
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
		m.Store = nil
	}
	return errors.Join(errs...)
}

// natsAuth returns the embedded NATS server's authentication from the
// access file, or nil without one.
func (m *Main) natsAuth() (*nats.Auth, error) {
	if m.Access == nil {
		return nil, nil
	}
	return nats.NewAuth(m.Access)
}
