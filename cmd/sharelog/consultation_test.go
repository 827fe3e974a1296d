package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestConsultationLog: a lookup recorded through the server's Consult
// (what the HTTP handlers call before answering) is an entry of the ledger
// before Consult returns, in the Merkle tree, listed by sharelog accesses by
// person, principal and period (table, JSON, CSV); reading the log by person
// is recorded too; forgetting the person leaves the consultations,
// unlinkable, and no file under --data holds the identifier or the reason;
// verify passes.
func TestConsultationLog(t *testing.T) {
	const (
		personID = "ZQ-CONSULT-55210"
		reason   = "SAR REQ-4471 from Zoe Quill"
	)
	dir := t.TempDir()
	cfg := testConfig(dir)
	// In clear, so that the search of every file can see what they hold
	// (TestEncryptedAtRestByDefault covers the default).
	cfg.UnencryptedLedger, cfg.UnencryptedJetStream = true, true
	m := startMain(t, cfg)
	_, js := m.connect(t)
	ctx := context.Background()
	p := ledger.Subject{Scheme: "dbs-ref", ID: personID}
	t0 := time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)
	if out := publishAll(t, m,
		recipientEvent("police", map[string]any{"type": "nats"}),
		ukDisclosure("c-1", p, "police", []string{"user.contact.address"}, t0),
	); strings.Join(out, " ") != "recorded recorded" {
		t.Fatalf("outcomes = %v", out)
	}

	before := m.Store.Count()
	if err := m.HTTP.Consult(ctx, ledger.Consultation{Principal: "jane.dpo", Operation: "who", Reason: reason, Subject: &p}); err != nil {
		t.Fatalf("Consult: %v", err)
	}
	// Durable in the ledger when Consult returns: no waiting here.
	if got := m.Store.Count(); got != before+1 {
		t.Fatalf("entries after Consult = %d, want %d", got, before+1)
	}
	if err := m.HTTP.Consult(ctx, ledger.Consultation{Principal: "sam.clerk", Operation: "listManual", Query: "manual queue"}); err != nil {
		t.Fatal(err)
	}
	seq := before + 1

	// By principal: the table says who, what, whom and why.
	out := m.cli(t, "accesses", "--principal", "jane.dpo")
	for _, want := range []string{"jane.dpo", "who", "dbs-ref:" + personID, reason, "1 consultation."} {
		if !strings.Contains(out, want) {
			t.Errorf("accesses --principal jane.dpo lacks %q:\n%s", want, out)
		}
	}
	// By period: both; nothing before.
	var page ledger.ConsultationPage
	if err := json.Unmarshal([]byte(m.cli(t, "accesses", "--since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), "--json")), &page); err != nil || len(page.Consultations) != 2 {
		t.Errorf("accesses --since an hour ago: %+v %v", page, err)
	}
	if err := json.Unmarshal([]byte(m.cli(t, "accesses", "--until", "2025-01-01", "--json")), &page); err != nil || len(page.Consultations) != 0 {
		t.Errorf("accesses --until 2025: %+v %v", page, err)
	}
	// By person: the query of the log by person is itself recorded before
	// the answer, so it lists itself.
	page = ledger.ConsultationPage{}
	if err := json.Unmarshal([]byte(m.cli(t, "accesses", "--subject", "dbs-ref:"+personID, "--json")), &page); err != nil || len(page.Consultations) != 2 {
		t.Fatalf("accesses --subject: %+v %v", page, err)
	}
	c := page.Consultations[0]
	if c.Seq != seq || c.Principal != "jane.dpo" || c.Operation != "who" || c.Reason != reason || c.Subject == nil || *c.Subject != p || c.RecordedAt.IsZero() {
		t.Errorf("consultation = %+v", c)
	}
	if self := page.Consultations[1]; self.Operation != "listAccesses" || self.Subject == nil || *self.Subject != p {
		t.Errorf("the query of the log by person was not recorded: %+v", self)
	}
	rows, err := csv.NewReader(strings.NewReader(m.cli(t, "accesses", "--principal", "sam.clerk", "--csv"))).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][1] != "PRINCIPAL" || rows[1][1] != "sam.clerk" || rows[1][2] != "listManual" || rows[1][3] != "" {
		t.Errorf("accesses --csv: %v %v", rows, err)
	}

	// In the tree: an inclusion proof of the entry against a signed checkpoint.
	keyFile := filepath.Join(dir, "checkpoint.pub")
	checkFor(t, 10*time.Second, func() error {
		out, _, err := runCLI("prove", strconv.FormatUint(seq, 10), "--key", keyFile, "--server", m.HTTP.URL())
		if err != nil || !strings.HasSuffix(out, "proven\n") {
			return fmt.Errorf("prove %d: %v %s", seq, err, out)
		}
		return nil
	})

	// Before forgetting, the stream holds the consultation as published:
	// the search can find the identifier and the reason.
	for _, needle := range []string{personID, reason} {
		if hits := filesContaining(t, dir, needle); len(hits) == 0 {
			t.Fatalf("before forgetting, no file holds %q: the search cannot tell", needle)
		}
	}
	// The person is erased, the recipient answers, the job forgets them.
	publishAll(t, m, ce("dpo", "erase-1", ledger.TypeErasure, map[string]any{
		"request": "E-1", "subject": p, "ground": "art17-1-a", "decidedAt": "2025-02-02T10:00:00Z",
	}))
	st, err := m.Store.Status(ctx, "E-1")
	if err != nil || len(st.Obligations) != 1 {
		t.Fatalf("status E-1: %+v %v", st, err)
	}
	ack := mustJSON(t, ce("recipient", "ack-1", ledger.TypeNoticeAck, map[string]any{"notice": st.Obligations[0].Notice, "outcome": "done"}))
	if _, err := js.Publish(ctx, "sharelog.in.ack.police", ack); err != nil {
		t.Fatal(err)
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := m.Retention.Round(ctx)
	if err != nil || len(rep.Forgotten) != 1 {
		t.Fatalf("round = %+v, %v", rep, err)
	}
	page = ledger.ConsultationPage{}
	if err := json.Unmarshal([]byte(m.cli(t, "accesses", "--principal", "jane.dpo", "--json")), &page); err != nil || len(page.Consultations) != 1 {
		t.Fatalf("after forgetting: %+v %v", page, err)
	}
	if c := page.Consultations[0]; !c.Forgotten || c.Subject != nil || c.Reason != "" || !c.BySubject || c.Seq != seq {
		t.Errorf("a forgotten person's consultation = %+v; want it kept, linked to no one", c)
	}
	for _, needle := range []string{personID, reason} {
		if hits := filesContaining(t, dir, needle); len(hits) != 0 {
			t.Errorf("after forgetting, %q is still in %v", needle, hits)
		}
	}
	vkey, _ := os.ReadFile(keyFile)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runCLI("verify", "--data", dir, "--key", strings.TrimSpace(string(vkey)))
	if err != nil || !strings.HasPrefix(stdout, "intact: size ") {
		t.Errorf("verify = %q, %v\n%s", stdout, err, stderr)
	}
}

// TestConsultBatched: lookups made at the same time share JetStream
// batches and ingest transactions, and each is recorded once.
func TestConsultBatched(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	ctx := context.Background()
	const n = 200
	before, batchesBefore := m.Store.Count(), metricValue(t, m, "sharelog_ingest_batch_messages_count")
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			subj := ledger.Subject{Scheme: "case", ID: fmt.Sprintf("BATCH-%04d", i)}
			errs <- m.HTTP.Consult(ctx, ledger.Consultation{Principal: "jane.dpo", Operation: "who", Subject: &subj})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := m.Store.Count() - before; got != n {
		t.Errorf("%d entries for %d consultations", got, n)
	}
	page, err := m.Store.Consultations(ctx, ledger.ConsultationFilter{Principal: "jane.dpo"})
	if err != nil || len(page.Consultations) != n {
		t.Fatalf("log: %d, %v", len(page.Consultations), err)
	}
	batches := metricValue(t, m, "sharelog_ingest_batch_messages_count") - batchesBefore
	t.Logf("%d consultations in %v ingest batches", n, batches)
	if batches >= n {
		t.Errorf("%v ingest batches for %d concurrent consultations: not batched", batches, n)
	}
}

// TestConsultFailsClosed: when the log cannot be written, Consult returns
// an error within its bound, and a request that reads a person's data is
// refused.
func TestConsultFailsClosed(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	ctx := context.Background()
	p := ledger.Subject{Scheme: "dbs-ref", ID: "ZQ-REFUSED-1"}
	if err := m.HTTP.Consult(ctx, ledger.Consultation{Operation: "who", Subject: &p}); err != nil {
		t.Fatalf("Consult while up: %v", err)
	}
	// Only sharelog records consultations: a producer's is refused.
	forged := mustJSON(t, ce("casework", "forged-1", ledger.TypeConsultation, map[string]any{"principal": "jane.dpo", "operation": "who"}))
	if resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, forged); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "only by sharelog itself") {
		t.Errorf("a producer's consultation = %d %s, want 400", resp.StatusCode, body)
	}
	// An invalid consultation is refused as such, before anything is published.
	long := strings.Repeat("x", 1001)
	if err := m.HTTP.Consult(ctx, ledger.Consultation{Operation: "who", Reason: long, Subject: &p}); ledger.ErrorCode(err) != ledger.EINVALID || strings.Contains(err.Error(), long) {
		t.Errorf("Consult with a reason too long = %v, want EINVALID not quoting it", err)
	}

	m.NATSServer.Shutdown() // the log cannot be written
	start := time.Now()
	err := m.HTTP.Consult(ctx, ledger.Consultation{Operation: "who", Subject: &p})
	took := time.Since(start)
	if ledger.ErrorCode(err) != ledger.EUNAVAILABLE || strings.Contains(err.Error(), p.ID) {
		t.Errorf("Consult with NATS down = %v, want EUNAVAILABLE not naming the person", err)
	}
	if took > 7*time.Second {
		t.Errorf("Consult took %v to fail, want at most its 5s bound", took)
	}
	t.Logf("Consult with NATS down failed in %v: %v", took, err)

	// The HTTP API refuses the lookup: here, the consultation log by person.
	resp, err := http.Post(m.HTTP.URL()+"/v1/accesses", "application/json", strings.NewReader(`{"subject":{"scheme":"dbs-ref","id":"ZQ-REFUSED-1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST /v1/accesses by person with the log down = %d, want 503", resp.StatusCode)
	}
}

// metricValue reads one unlabelled sample from /metrics.
func metricValue(t *testing.T, m *testMain, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(get(t, m.HTTP.URL()+"/metrics"), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestConsultationLogWithAccess: with an access file, a DPO's who is
// recorded under the DPO's name with the reason given, before it is
// answered; the auditor lists the log for the Commissioner without the
// person or the reason, and may not select by person.
func TestConsultationLogWithAccess(t *testing.T) {
	accessFile, tokens := writeAccessFile(t)
	cfg := testConfig(t.TempDir())
	cfg.Access = accessFile
	m := startMain(t, cfg)
	const personID = "ZQ-ACCESS-30117"

	before := m.Store.Count()
	m.cli(t, "who", "dbs-ref:"+personID, "--token", tokens["jane.dpo"], "--reason", "SAR 2026-17 for Zoe Quill", "--json")
	if got := m.Store.Count(); got != before+1 {
		t.Fatalf("entries after who = %d, want %d: the lookup is recorded before it is answered", got, before+1)
	}
	var page ledger.ConsultationPage
	out := m.cli(t, "accesses", "--subject", "dbs-ref:"+personID, "--token", tokens["jane.dpo"], "--reason", "audit of lookups", "--json")
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Consultations) != 2 {
		t.Fatalf("accesses as the DPO: %s %v", out, err)
	}
	if c := page.Consultations[0]; c.Principal != "jane.dpo" || c.Operation != "who" || c.Reason != "SAR 2026-17 for Zoe Quill" || c.Subject == nil || c.Subject.ID != personID {
		t.Errorf("the DPO's who recorded as %+v", c)
	}
	out = m.cli(t, "accesses", "--principal", "jane.dpo", "--token", tokens["audit"], "--reason", "ICO inspection", "--json")
	if strings.Contains(out, personID) || strings.Contains(out, "Zoe Quill") {
		t.Errorf("the auditor sees personal data:\n%s", out)
	}
	page = ledger.ConsultationPage{}
	if err := json.Unmarshal([]byte(out), &page); err != nil || len(page.Consultations) != 2 || !page.Consultations[0].BySubject || page.Consultations[0].Operation != "who" {
		t.Errorf("accesses as the auditor: %s %v", out, err)
	}
	err, _ := m.cliErr(t, "accesses", "--subject", "dbs-ref:"+personID, "--token", tokens["audit"], "--reason", "ICO inspection")
	if exitCode(err) != ExitRefused || !strings.Contains(err.Error(), ledger.EFORBIDDEN) {
		t.Errorf("the auditor by person: %v (exit %d), want forbidden", err, exitCode(err))
	}
	err, _ = m.cliErr(t, "accesses", "--token", tokens["a.clerk"], "--reason", "x")
	if exitCode(err) != ExitRefused || !strings.Contains(err.Error(), ledger.EFORBIDDEN) {
		t.Errorf("the clerk: %v (exit %d), want forbidden", err, exitCode(err))
	}
}
