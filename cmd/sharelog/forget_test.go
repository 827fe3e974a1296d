package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// TestForgetPerson runs the real serve code as a DPO would: a person's data
// disclosed to a nats recipient and a manual one, rectified (with a new
// address) and erased; a disclosure resent over NATS (a duplicate), resent
// with other content (a conflict, kept in SHARELOG_REJECTED) and a refused
// message naming the person; every recipient answers; the forgetting job
// forgets the person. Afterwards who finds nothing, no file under --data
// (Badger, SHARELOG_IN, SHARELOG_NOTICES, SHARELOG_REJECTED) holds the
// identifier or any sealed value (the rectified address, who disclosed, the
// justification, the record reference, the values of the refused copies),
// status still shows every recipient told, and verify passes. Before
// forgetting, the same search finds each, so the search can fail.
func TestForgetPerson(t *testing.T) {
	const (
		personID      = "ZQ-FORGET-99817"
		newAddr       = "Flat 9, Quillon Lane"
		disclosedBy   = "Officer Quentin Marlowe"
		justification = "Quarrel at Vexley Street"
		recordRef     = "REF-QV-55213"
		conflicting   = "Clerk Yardley Brisk"
		conflictHTTP  = "Clerk Ozanne Threlkeld"
		refusedText   = "Refused note Wexcombe"
	)
	sealed := []string{personID, newAddr, disclosedBy, justification, recordRef, conflicting, conflictHTTP, refusedText}
	dir := t.TempDir()
	// In clear, so that the search of the files sees what forgetting
	// leaves (TestEncryptedAtRestByDefault: encrypted, it finds nothing).
	cfg := testConfig(dir)
	cfg.UnencryptedLedger, cfg.UnencryptedJetStream = true, true
	m := startMain(t, cfg)
	_, js := m.connect(t)
	ctx := context.Background()

	p := ledger.Subject{Scheme: "dbs-ref", ID: personID}
	other := ledger.Subject{Scheme: "dbs-ref", ID: "KEEP-ME-1"}
	t0 := time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)
	f1By := func(by string) map[string]any {
		return withData(ukDisclosure("f-1", p, "police", []string{"user.contact.address"}, t0), func(d map[string]any) {
			d["disclosedBy"], d["justification"] = by, justification
			d["records"] = []map[string]any{{"system": "casework", "ref": recordRef}}
		})
	}
	f1 := f1By(disclosedBy)
	outcomes := publishAll(t, m,
		recipientEvent("police", map[string]any{"type": "nats"}),
		manualRecipient("web", "", 0),
		f1,
		ukDisclosure("f-2", p, "web", []string{"user.contact.email"}, t0.Add(time.Hour)),
		ukDisclosure("f-3", other, "web", []string{"user.contact.email"}, t0.Add(2*time.Hour)),
		ce("dpo", "rect-1", ledger.TypeRectification, map[string]any{
			"request": "R-1", "subject": p, "decidedAt": "2025-02-01T10:00:00Z",
			"changes": []map[string]any{{"category": "user.contact.address", "field": "address", "value": newAddr}},
		}),
		ce("dpo", "erase-1", ledger.TypeErasure, map[string]any{
			"request": "E-1", "subject": p, "ground": "art17-1-a", "decidedAt": "2025-02-02T10:00:00Z",
		}),
	)
	if want := strings.Repeat("recorded ", 7); strings.Join(outcomes, " ")+" " != want {
		t.Fatalf("outcomes = %v", outcomes)
	}
	// The nats recipient's notices (with the identifier and the new
	// address) reach SHARELOG_NOTICES.
	checkFor(t, 10*time.Second, func() error {
		for _, r := range []string{"R-1", "E-1"} {
			st, err := m.Store.Status(ctx, r)
			if err != nil {
				return err
			}
			for _, o := range st.Obligations {
				if o.Recipient == "police" && o.State != ledger.StateDelivered {
					return fmt.Errorf("%s to police is %s", r, o.State)
				}
			}
		}
		return nil
	})
	// Over NATS: f-1 resent (a duplicate), resent with another discloser
	// (a conflict), and a refused disclosure naming the person.
	refused := withData(ukDisclosure("f-bad", p, "police", nil, t0), func(d map[string]any) {
		d["categories"], d["justification"] = "not-an-array", refusedText
	})
	seqs := map[uint64]int{}
	for i, ev := range []map[string]any{f1, f1By(conflicting), refused} {
		ack, err := js.Publish(ctx, "sharelog.in.casework", mustJSON(t, ev))
		if err != nil {
			t.Fatal(err)
		}
		seqs[ack.Sequence] = i
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	delete(seqs, firstKey(seqs, 0)) // the duplicate is not refused
	// Over HTTP: f-1 with another discloser, refused 409 and kept too.
	if resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", nil, mustJSON(t, f1By(conflictHTTP))); resp.StatusCode != http.StatusConflict {
		t.Fatalf("conflict over HTTP: %d %s", resp.StatusCode, body)
	}
	in, err := js.Stream(ctx, nats.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := in.GetLastMsgForSubject(ctx, nats.SubjectInHTTP)
	if err != nil || !strings.Contains(string(kept.Data), conflictHTTP) {
		t.Fatalf("conflict over HTTP not in SHARELOG_IN: %v, %v", kept, err)
	}
	seqs[kept.Sequence] = 3
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	for i, msg := range rejectedOf(t, ctx, js, seqs) {
		if want := []ledger.Reason{1: ledger.ReasonConflict, 2: ledger.ReasonInvalidData, 3: ledger.ReasonConflict}[i]; msg.Headers().Get(nats.HeaderReason) != string(want) {
			t.Errorf("NATS message %d refused for %q, want %q", i, msg.Headers().Get(nats.HeaderReason), want)
		}
	}
	for _, needle := range sealed {
		if hits := filesContaining(t, dir, needle); len(hits) == 0 {
			t.Fatalf("before forgetting, no file holds %q: the search cannot tell", needle)
		}
	}
	hash, _ := m.Store.SubjectHashOf(ctx, p)

	// Nothing to forget while recipients have not answered.
	rep, err := m.Retention.Round(ctx)
	if err != nil || len(rep.Forgotten) != 0 {
		t.Fatalf("round before answers = %+v, %v", rep, err)
	}
	// Every recipient answers.
	for i, r := range []string{"R-1", "E-1"} {
		st, _ := m.Store.Status(ctx, r)
		for j, o := range st.Obligations {
			ack := mustJSON(t, ce("recipient", fmt.Sprintf("ack-%d-%d", i, j), ledger.TypeNoticeAck, map[string]any{"notice": o.Notice, "outcome": "done"}))
			if _, err := js.Publish(ctx, "sharelog.in.ack."+o.Recipient, ack); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := m.Ingester.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}

	rep, err = m.Retention.Round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Forgotten) != 1 || rep.Forgotten[0].SubjectHash != hash || rep.Forgotten[0].Reason != ledger.ForgetErasureClosed ||
		rep.ScrubbedMessages < 7 || rep.ScrubbedNotices < 2 || rep.ScrubbedRejected != 3 || !rep.Compacted {
		t.Fatalf("round = %+v", rep)
	}
	t.Logf("round: %d SHARELOG_IN messages, %d notices and %d rejections scrubbed, compaction took %v", rep.ScrubbedMessages, rep.ScrubbedNotices, rep.ScrubbedRejected, rep.CompactTook)
	if !strings.Contains(m.logs.String(), "subject forgotten") {
		t.Error("the job did not say what it did")
	}

	// Asked of the store: a lookup over the API is itself recorded in the
	// consultation log (DPA 2018 s.62), which would name the person again.
	if w, err := m.Store.Who(ctx, p); err != nil || len(w.Recipients) != 0 || w.Disclosures != 0 {
		t.Errorf("who after forgetting = %+v, %v", w, err)
	}
	if w := who(t, m, "dbs-ref:KEEP-ME-1"); w.Disclosures != 1 {
		t.Errorf("who of another person = %+v", w)
	}
	status := m.cli(t, "status", "E-1")
	if !strings.Contains(status, "police") || !strings.Contains(status, "web") || strings.Count(status, "acknowledged") < 2 ||
		!strings.Contains(status, "The subject was forgotten") {
		t.Errorf("status E-1 after forgetting:\n%s", status)
	}
	// The disclosure facts remain, pseudonymous.
	rec, err := m.Store.Disclosure(ctx, "f-1", "casework")
	if err != nil || !rec.Forgotten || rec.Disclosure.Recipient != "police" || rec.Disclosure.Subjects[0].ID != "" {
		t.Errorf("f-1 after forgetting = %+v, %v", rec, err)
	}
	for _, needle := range sealed {
		if hits := filesContaining(t, dir, needle); len(hits) != 0 {
			t.Errorf("after forgetting, %q is still in %v", needle, hits)
		}
	}

	// Stopped, the files still hold neither, and the ledger verifies.
	vkey, _ := os.ReadFile(filepath.Join(dir, "checkpoint.pub"))
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, needle := range sealed {
		if hits := filesContaining(t, dir, needle); len(hits) != 0 {
			t.Errorf("after stopping, %q is still in %v", needle, hits)
		}
	}
	stdout, stderr, err := runCLI("verify", "--data", dir, "--key", strings.TrimSpace(string(vkey)))
	if err != nil || !strings.HasPrefix(stdout, "intact: size ") {
		t.Errorf("verify after forgetting = %q, %v\n%s", stdout, err, stderr)
	}
}

// TestHoldBlocksForgetting: a legal hold by purpose keeps an erased person
// until it is released; who and status show it meanwhile.
func TestHoldBlocksForgetting(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	ctx := context.Background()
	p := ledger.Subject{Scheme: "dbs-ref", ID: "HOLD-ME-1"}
	publishAll(t, m,
		manualRecipient("web", "", 0),
		ukDisclosure("h-1", p, "web", []string{"user.contact.email"}, time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)),
		ce("dpo", "hold-1", ledger.TypeHold, map[string]any{
			"hold": "iicsa", "scope": map[string]any{"purpose": "essential.service"},
			"reason": "IICSA moratorium on destruction", "placedBy": "dpo@example.org", "reviewAt": "2026-06-01T00:00:00Z",
		}),
		ce("dpo", "erase-1", ledger.TypeErasure, map[string]any{"request": "E-1", "subject": p, "decidedAt": "2025-02-02T10:00:00Z"}),
	)
	st, _ := m.Store.Status(ctx, "E-1")
	publishAll(t, m, ce("dpo", "ex-1", ledger.TypeExemption, map[string]any{
		"notice": st.Obligations[0].Notice, "reason": "impossible", "justification": "no contact", "decidedBy": "dpo",
	}))
	if w := who(t, m, "dbs-ref:HOLD-ME-1"); len(w.Holds) != 1 || w.Holds[0] != "iicsa" {
		t.Errorf("who holds = %v", w.Holds)
	}
	if out := m.cli(t, "who", "dbs-ref:HOLD-ME-1"); !strings.Contains(out, "Legal holds (the ledger will not forget this person): iicsa.") {
		t.Errorf("who prints:\n%s", out)
	}
	if out := m.cli(t, "status", "E-1"); !strings.Contains(out, "Legal holds on the subject: iicsa.") {
		t.Errorf("status prints:\n%s", out)
	}
	rep, err := m.Retention.Round(ctx)
	if err != nil || len(rep.Forgotten) != 0 || len(rep.Held) != 1 || rep.Held[0].HeldBy[0] != "iicsa" {
		t.Fatalf("round under hold = %+v, %v", rep, err)
	}
	publishAll(t, m, ce("dpo", "release-1", ledger.TypeHoldReleased, map[string]any{"hold": "iicsa", "reason": "inquiry closed"}))
	rep, err = m.Retention.Round(ctx)
	if err != nil || len(rep.Forgotten) != 1 {
		t.Fatalf("round after release = %+v, %v", rep, err)
	}
	if w := who(t, m, "dbs-ref:HOLD-ME-1"); w.Disclosures != 0 {
		t.Errorf("who after release and forgetting = %+v", w)
	}
}

// TestRetentionExpiry: a general enquiry kept three months is forgotten by
// the job, which reports it.
func TestRetentionExpiry(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Policy = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(cfg.Policy, []byte("retention:\n  rules:\n    - {purpose: essential.service, regime: uk-gdpr, months: 3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	old := ledger.Subject{Scheme: "email", ID: "old-enquirer@example.org"}
	recent := ledger.Subject{Scheme: "email", ID: "new-enquirer@example.org"}
	publishAll(t, m,
		manualRecipient("web", "", 0),
		ukDisclosure("g-1", old, "web", []string{"user.contact.email"}, time.Now().AddDate(0, -4, 0)),
		ukDisclosure("g-2", recent, "web", []string{"user.contact.email"}, time.Now().AddDate(0, -1, 0)),
	)
	rep, err := m.Retention.Round(context.Background())
	if err != nil || len(rep.Forgotten) != 1 || rep.Forgotten[0].Reason != ledger.ForgetRetention || rep.Forgotten[0].Purpose != "essential.service" {
		t.Fatalf("round = %+v, %v", rep, err)
	}
	if w := who(t, m, "email:old-enquirer@example.org"); w.Disclosures != 0 {
		t.Errorf("who old = %+v", w)
	}
	if w := who(t, m, "email:new-enquirer@example.org"); w.Disclosures != 1 {
		t.Errorf("who recent = %+v", w)
	}
}

// firstKey returns the key of m whose value is v.
func firstKey(m map[uint64]int, v int) uint64 {
	for k, x := range m {
		if x == v {
			return k
		}
	}
	return 0
}

// filesContaining returns the files under dir holding needle, reading only
// the data regions of sparse files (Badger preallocates its logs).
func filesContaining(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		var off int64
		for {
			start, err := f.Seek(off, 3) // SEEK_DATA
			if err != nil {
				return nil // no more data
			}
			end, err := f.Seek(start, 4) // SEEK_HOLE
			if err != nil {
				return err
			}
			buf := make([]byte, end-start)
			if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
				return err
			}
			if bytes.Contains(buf, []byte(needle)) {
				rel, _ := filepath.Rel(dir, path)
				hits = append(hits, rel)
				return nil
			}
			off = end
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}
