package ledger

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestErasureForgets: UK GDPR Art. 17(1) and 19 — a person is forgotten
// after an erasure of all their data once every recipient has answered or
// been exempted, or after the configured time whatever the answers.
func TestErasureForgets(t *testing.T) {
	open := Obligation{State: StatePending}
	closed := Obligation{State: StateAcknowledged}
	exempt := Obligation{State: StateExempted}
	forgotten := t0
	tests := []struct {
		name   string
		rec    RequestRecord
		obs    []Obligation
		policy ForgetPolicy
		now    time.Time
		want   string
	}{
		{"Art17(1) every recipient answered", RequestRecord{Type: TypeErasure}, []Obligation{closed, exempt}, ForgetPolicy{}, at(1), ForgetErasureClosed},
		{"Art17(1) no recipient to tell", RequestRecord{Type: TypeErasure}, nil, ForgetPolicy{}, at(1), ForgetErasureClosed},
		{"Art19 a recipient still to tell keeps the person", RequestRecord{Type: TypeErasure, DecidedAt: t0}, []Obligation{closed, open}, ForgetPolicy{}, at(400), ""},
		{"policy: the time limit passed", RequestRecord{Type: TypeErasure, DecidedAt: t0}, []Obligation{open}, ForgetPolicy{ErasureAfter: 48 * time.Hour}, at(2), ForgetErasureTimeout},
		{"policy: the time limit not yet passed", RequestRecord{Type: TypeErasure, DecidedAt: t0}, []Obligation{open}, ForgetPolicy{ErasureAfter: 48 * time.Hour}, at(1), ""},
		{"Art17(1) an erasure of some categories keeps the rest", RequestRecord{Type: TypeErasure, Categories: []string{"user.contact"}}, nil, ForgetPolicy{}, at(1), ""},
		{"a rectification forgets nobody", RequestRecord{Type: TypeRectification}, nil, ForgetPolicy{}, at(1), ""},
		{"already forgotten", RequestRecord{Type: TypeErasure, ForgottenAt: &forgotten}, nil, ForgetPolicy{}, at(1), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.policy.ErasureForgets(&tt.rec, tt.obs, tt.now)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("ErasureForgets = %q, %v; want %q", got, ok, tt.want)
			}
		})
	}
}

// TestRetention: UK GDPR Art. 5(1)(e) — kept no longer than necessary: a
// person's record expires when every disclosure is past its purpose's
// retention (the DBS notice keeps general enquiries three months).
func TestRetention(t *testing.T) {
	p := ForgetPolicy{Retention: []RetentionRule{
		{Purpose: "enquiry", Months: 3},
		{Purpose: "enquiry", Regime: RegimeDPAPart3, Months: 12},
		{Purpose: "safeguarding", Days: 10},
	}}
	d := func(purpose, regime string, daysAgo int) DisclosureSummary {
		return DisclosureSummary{Purpose: purpose, Regime: regime, DisclosedAt: t0.AddDate(0, 0, -daysAgo)}
	}
	tests := []struct {
		name string
		sums []DisclosureSummary
		want bool
	}{
		{"Art5(1)(e) three months passed", []DisclosureSummary{d("enquiry", RegimeUKGDPR, 93)}, true},
		{"Art5(1)(e) three months not yet passed", []DisclosureSummary{d("enquiry", RegimeUKGDPR, 80)}, false},
		{"Art5(1)(e) the rule for the regime comes first", []DisclosureSummary{d("enquiry", RegimeDPAPart3, 93)}, false},
		{"Art5(1)(e) every disclosure must have expired", []DisclosureSummary{d("enquiry", RegimeUKGDPR, 93), d("safeguarding", RegimeUKGDPR, 5)}, false},
		{"Art5(1)(e) all expired", []DisclosureSummary{d("enquiry", RegimeUKGDPR, 93), d("safeguarding", RegimeUKGDPR, 11)}, true},
		{"a purpose no rule covers is kept", []DisclosureSummary{d("essential.service", RegimeUKGDPR, 4000)}, false},
		{"no disclosures, nothing to expire", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := p.RetentionForgets(tt.sums, t0); got != tt.want {
				t.Errorf("RetentionForgets = %v, want %v", got, tt.want)
			}
		})
	}
	if _, ok := (ForgetPolicy{}).RetentionForgets([]DisclosureSummary{d("enquiry", "", 999)}, t0); ok {
		t.Error("no rules: nothing expires")
	}
}

// TestDueForDelivery: when a notice is (re)sent — Art. 19 "shall
// communicate", with retries and reminders while the recipient is overdue.
func TestDueForDelivery(t *testing.T) {
	now := at(40)
	past, future := now.Add(-time.Minute), now.Add(time.Minute)
	long := now.Add(-48 * time.Hour)
	tests := []struct {
		name          string
		o             Obligation
		remind        time.Duration
		due, reminder bool
	}{
		{"never attempted", Obligation{State: StatePending, Channel: "nats", Due: at(60)}, 0, true, false},
		{"failed, retry time reached", Obligation{State: StatePending, Channel: "webhook", Attempts: 1, NextAttemptAt: &past, Due: at(60)}, 0, true, false},
		{"failed, retry time not reached", Obligation{State: StatePending, Channel: "webhook", Attempts: 1, NextAttemptAt: &future, Due: at(60)}, 0, false, false},
		{"failed for good", Obligation{State: StatePending, Channel: "webhook", Attempts: 3}, 0, false, false},
		{"manual notices are sent by a person", Obligation{State: StatePending, Channel: "manual"}, 0, false, false},
		{"delivered, not overdue", Obligation{State: StateDelivered, Channel: "nats", LastAttemptAt: &long, Due: at(60)}, time.Hour, false, false},
		{"Art19 delivered and overdue: remind", Obligation{State: StateDelivered, Channel: "nats", LastAttemptAt: &long, Due: at(30)}, time.Hour, true, true},
		{"overdue, reminded recently", Obligation{State: StateDelivered, Channel: "nats", LastAttemptAt: &past, Due: at(30)}, time.Hour, false, true},
		{"overdue, reminders off", Obligation{State: StateDelivered, Channel: "nats", LastAttemptAt: &long, Due: at(30)}, 0, false, false},
		{"answered", Obligation{State: StateAcknowledged, Channel: "nats", Due: at(30)}, time.Hour, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.SetOverdue(now)
			due, reminder := tt.o.DueForDelivery(now, tt.remind)
			if due != tt.due || (due && reminder != tt.reminder) {
				t.Errorf("DueForDelivery = %v, %v; want %v, %v", due, reminder, tt.due, tt.reminder)
			}
		})
	}
}

// TestObligationRegime: DPA 2018 s.48 applies when the request, the
// recipient or any affected disclosure is under Part 3.
func TestObligationRegime(t *testing.T) {
	tests := []struct {
		name               string
		request, recipient string
		disclosures        []string
		want               string
	}{
		{"s.48 via the request", RegimeDPAPart3, RegimeUKGDPR, []string{RegimeUKGDPR}, RegimeDPAPart3},
		{"s.48 via the recipient", "", RegimeDPAPart3, []string{RegimeUKGDPR}, RegimeDPAPart3},
		{"s.48 via a disclosure", RegimeUKGDPR, "", []string{RegimeDPAPart3, RegimeUKGDPR}, RegimeDPAPart3},
		{"Art19 the request's regime", RegimeEUGDPR, RegimeUKGDPR, nil, RegimeEUGDPR},
		{"Art19 the recipient's regime", "", RegimeUKGDPR, []string{RegimeEUGDPR}, RegimeUKGDPR},
		{"Art19 the disclosures' regime", "", "", []string{"", RegimeEUGDPR}, RegimeEUGDPR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ObligationRegime(tt.request, tt.recipient, tt.disclosures); got != tt.want {
				t.Errorf("ObligationRegime = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCovers: fideslang's hierarchical categories (../shared/reference/fideslang).
func TestCovers(t *testing.T) {
	tests := []struct {
		parent, child string
		want          bool
	}{
		{"user.contact", "user.contact", true},
		{"user.contact", "user.contact.email", true},
		{"user", "user.contact.address.city", true},
		{"user.contact", "user.contactless", false},
		{"user.contact.email", "user.contact", false},
		{"user.contact", "user", false},
		{"user.contact", "system.contact", false},
		{"", "user", false},
		{"user", "", false},
	}
	for _, tt := range tests {
		if got := Covers(tt.parent, tt.child); got != tt.want {
			t.Errorf("Covers(%q, %q) = %v, want %v", tt.parent, tt.child, got, tt.want)
		}
	}
}

// TestStandardLibraryOnly: the domain imports nothing but the standard
// library, so that every rule can be read and tested without storage or
// transport; its scenarios (ledgertest) import the domain besides.
func TestStandardLibraryOnly(t *testing.T) {
	for dir, allowed := range map[string]string{".": "", "ledgertest": "github.com/sharelog/sharelog/internal/ledger"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", dir, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range parsed.Imports {
				path := strings.Trim(imp.Path.Value, `"`)
				if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") && path != allowed {
					t.Errorf("%s imports %s: internal/ledger imports only the standard library", f, path)
				}
			}
		}
	}
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func at(days int) time.Time { return t0.AddDate(0, 0, days) }

// TestDecideDataMustMatchType: an event whose data is not its type's is a
// bug of the caller, never a refusal.
func TestDecideDataMustMatchType(t *testing.T) {
	ev := &Event{Type: TypeErasure, Data: &Restriction{}}
	if _, err := Decide(NewMemState(), ev, Sender{}, t0, Deadlines{}); err == nil || errors.As(err, new(*InvalidError)) {
		t.Errorf("Decide = %v, want a plain error", err)
	}
}

// TestValidSlug: recipient ids are lowercase slugs (DESIGN: "id (lowercase slug)").
func TestValidSlug(t *testing.T) {
	tests := map[string]bool{
		"acro": true, "devon-and-cornwall": true, "a1-b2": true, "0": true, strings.Repeat("a", 64): true,
		"": false, "-a": false, "a-": false, "a--b": false, "A": false, "a_b": false, "a b": false, "é": false,
		strings.Repeat("a", 65): false,
	}
	for in, want := range tests {
		if got := ValidSlug(in); got != want {
			t.Errorf("ValidSlug(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestStandardLibraryOnlyTransitively: every package the domain needs, at
// any depth, is in Go's standard library as the go command itself judges
// it (GOROOT). This includes packages whose paths carry a version, such as
// crypto/internal/entropy/v1.0.0, the Go Cryptographic Module that
// crypto/sha256 (notice ids) and crypto/subtle (replays) are built on.
func TestStandardLibraryOnlyTransitively(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg != "github.com/sharelog/sharelog/internal/ledger" {
			t.Errorf("internal/ledger depends on %s, which is not in the standard library", pkg)
		}
	}
	out, err = exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "crypto/sha256") {
		t.Fatalf("go list -deps found no crypto/sha256 (%v): the listing cannot tell\n%s", err, out)
	}
}
