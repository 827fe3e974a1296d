package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/nats"
)

// TestRecipientsFileAppliedWhenChanged restarts serve with the same
// --recipients file after JetStream's duplicate window has passed: nothing
// is published again. A changed definition publishes that one recipient.
func TestRecipientsFileAppliedWhenChanged(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "..", "deploy", "recipients.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "recipients.yaml")
	if err := os.WriteFile(file, example, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t.TempDir())
	cfg.Recipients = file
	cfg.Duplicates = 100 * time.Millisecond

	inMsgs := func(m *testMain) uint64 {
		t.Helper()
		s, err := m.JetStream.Stream(context.Background(), nats.StreamIn)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	m := startMain(t, cfg)
	first := inMsgs(m)
	entries := m.Store.Count()
	if first == 0 {
		t.Fatal("the recipients file published nothing")
	}
	m.Close()

	time.Sleep(300 * time.Millisecond) // past the duplicate window
	m = startMain(t, cfg)
	if got := inMsgs(m); got != first {
		t.Errorf("restart with the same file: SHARELOG_IN has %d messages, want %d", got, first)
	}
	if got := m.Store.Count(); got != entries {
		t.Errorf("restart with the same file: ledger has %d entries, want %d", got, entries)
	}
	if !strings.Contains(m.logs.String(), "recipients file unchanged") {
		t.Errorf("no 'unchanged' log line:\n%s", m.logs)
	}
	m.Close()

	changed := strings.Replace(string(example), "ACRO Criminal Records Office", "ACRO Criminal Records Office (renamed)", 1)
	if changed == string(example) {
		t.Fatal("the example file has no ACRO to rename")
	}
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	m = startMain(t, cfg)
	if got := inMsgs(m); got != first+1 {
		t.Errorf("restart with one recipient changed: SHARELOG_IN has %d messages, want %d", got, first+1)
	}
	r, err := m.Store.Recipient(context.Background(), "acro")
	if err != nil || r.Name != "ACRO Criminal Records Office (renamed)" {
		t.Errorf("acro after the change = %+v, %v", r, err)
	}
}
