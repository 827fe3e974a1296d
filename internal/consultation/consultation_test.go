package consultation_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/consultation"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
	"github.com/sharelog/sharelog/internal/vocab"
)

// rig is a real embedded NATS server with SHARELOG_IN, a Badger ledger and
// the ingest loop applying the one to the other.
type rig struct {
	pub *nats.Publisher
	st  *store.Store
	dec *cloudevents.Decoder
	log *slog.Logger
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: filepath.Join(dir, "js")}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := natsio.Connect("", natsio.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := nats.EnsureStreams(ctx, js, nats.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	voc, err := vocab.Load()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cloudevents.NewDecoder(voc)
	if err != nil {
		t.Fatal(err)
	}
	in := nats.NewIngester(js, st, dec, metrics.New(), logger, nats.IngestConfig{})
	ictx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { in.Run(ictx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return &rig{pub: nats.NewPublisher(js, false), st: st, dec: dec, log: logger}
}

// start runs a Log with wait until the test ends.
func (r *rig) start(t *testing.T, wait time.Duration) *consultation.Log {
	l := consultation.New(r.pub, r.st, r.dec, consultation.Config{Wait: wait}, r.log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return l
}

// TestConsult: a consultation is an entry of the ledger when Consult
// returns, sealed for the person and listed by person.
func TestConsult(t *testing.T) {
	r := newRig(t)
	l := r.start(t, 5*time.Second)
	ctx := context.Background()
	p := ledger.Subject{Scheme: "dbs-ref", ID: "CONSULT-DIRECT-1"}
	if err := l.Consult(ctx, ledger.Consultation{Principal: "jane.dpo", Operation: "who", Reason: "SAR", Subject: &p, Query: "q"}); err != nil {
		t.Fatal(err)
	}
	if n := r.st.Count(); n != 1 {
		t.Fatalf("%d entries when Consult returned, want 1", n)
	}
	e, err := r.st.Entry(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := e.Event.Data.(*ledger.Consultation)
	if !ok || e.Event.Source != consultation.Source || c.Principal != "jane.dpo" || c.Reason != "SAR" || c.Subject == nil || *c.Subject != p {
		t.Errorf("entry 1 = %s %+v", e.Event.Type, e.Event.Data)
	}
	pg, err := r.st.Consultations(ctx, ledger.ConsultationFilter{Subject: &p})
	if err != nil || len(pg.Consultations) != 1 {
		t.Errorf("by person: %+v %v", pg, err)
	}
	if err := l.Consult(ctx, ledger.Consultation{Principal: "jane.dpo"}); ledger.ErrorCode(err) != ledger.EINVALID {
		t.Errorf("a consultation without an operation = %v, want EINVALID", err)
	}
	if n := r.st.Count(); n != 1 {
		t.Errorf("an invalid consultation reached the ledger: %d entries", n)
	}
}

// TestConsultFailsWithoutRun: with nothing publishing, Consult gives up
// within its bound with EUNAVAILABLE, naming neither person nor reason.
func TestConsultFailsWithoutRun(t *testing.T) {
	r := newRig(t)
	l := consultation.New(r.pub, r.st, r.dec, consultation.Config{Wait: 300 * time.Millisecond}, r.log) // Run never started
	p := ledger.Subject{Scheme: "dbs-ref", ID: "CONSULT-REFUSED-1"}
	start := time.Now()
	err := l.Consult(context.Background(), ledger.Consultation{Operation: "who", Reason: "secret reason", Subject: &p})
	if ledger.ErrorCode(err) != ledger.EUNAVAILABLE || strings.Contains(err.Error(), p.ID) || strings.Contains(err.Error(), "secret") {
		t.Errorf("Consult = %v, want EUNAVAILABLE naming no one", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Consult took %v, want about its 300ms bound", took)
	}
	if n := r.st.Count(); n != 0 {
		t.Errorf("%d entries", n)
	}
}
