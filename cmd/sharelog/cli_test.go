package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestExitCodes runs one failing command of each class and checks the exit
// status main gives it.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Recipients = filepath.Join("..", "..", "deploy", "recipients.example.yaml")
	m := startMain(t, cfg)
	publishDisclosures(t, m, 1, 3)
	m.Checkpointer.Checkpoint(context.Background())
	out, _, err := runCLI("checkpoint-key", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(out)
	down := "http://" + freeAddr(t)
	otherKey := otherVerifierKey(t)

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"ok", []string{"who", "dbs-ref:S1", "--server", m.HTTP.URL()}, ExitOK},
		{"help", []string{"--help"}, ExitOK},
		{"version", []string{"--version"}, ExitOK},
		{"unknown command", []string{"whom"}, ExitUsage},
		{"unknown flag", []string{"who", "dbs-ref:S1", "--colour"}, ExitUsage},
		{"missing argument", []string{"who"}, ExitUsage},
		{"empty key", []string{"prove", "1", "--key", "", "--server", m.HTTP.URL()}, ExitUsage},
		{"consistency without FROM", []string{"consistency", "--key", vkey, "--server", m.HTTP.URL()}, ExitUsage},
		{"server down", []string{"recipients", "--server", down}, ExitUnavailable},
		{"no such disclosure", []string{"disclosure", "nope", "--server", m.HTTP.URL()}, ExitNotFound},
		{"no such request", []string{"status", "ER-none", "--server", m.HTTP.URL()}, ExitNotFound},
		{"size without a checkpoint", []string{"consistency", "2", "--key", vkey, "--server", m.HTTP.URL()}, ExitNotFound},
		{"no ledger", []string{"verify", "--data", t.TempDir(), "--key", vkey}, ExitNotFound},
		{"bad subject", []string{"who", "A1", "--server", m.HTTP.URL()}, ExitRefused},
		{"refused event", []string{"publish", writeFile(t, `{"specversion":"1.0"}`), "--server", m.HTTP.URL()}, ExitRefused},
		{"wrong key", []string{"prove", "1", "--key", otherKey, "--server", m.HTTP.URL()}, ExitTampered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb strings.Builder
			err := run(context.Background(), tc.args, &out, &errb)
			if got := exitCode(err); got != tc.want {
				t.Fatalf("sharelog %s: exit %d (%v), want %d\n%s%s", strings.Join(tc.args, " "), got, err, tc.want, out.String(), errb.String())
			}
		})
	}
}

// otherVerifierKey returns the verifier key of another server.
func otherVerifierKey(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	startMain(t, testConfig(dir))
	out, _, err := runCLI("checkpoint-key", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "f.json")
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestClientOutput: every client command prints a table unless --json, in
// words that agree with their numbers.
func TestClientOutput(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Recipients = filepath.Join("..", "..", "deploy", "recipients.example.yaml")
	m := startMain(t, cfg)
	publishDisclosures(t, m, 1, 1)
	m.Checkpointer.Checkpoint(context.Background())

	if out := m.cli(t, "who", "dbs-ref:S1"); !strings.HasSuffix(out, "\n1 disclosure to 1 recipient.\n") {
		t.Errorf("who:\n%s", out)
	}
	if out := m.cli(t, "disclosures", "--recipient", "acro"); !strings.HasSuffix(out, "\n1 disclosure.\n") {
		t.Errorf("disclosures:\n%s", out)
	}
	out := m.cli(t, "disclosure", "d-1")
	if !strings.HasPrefix(out, "FIELD") || !strings.Contains(out, "recipient      acro\n") || strings.HasPrefix(out, "{") {
		t.Errorf("disclosure: want a table\n%s", out)
	}
	if out := m.cli(t, "disclosure", "d-1", "--json"); !strings.HasPrefix(out, "{") {
		t.Errorf("disclosure --json:\n%s", out)
	}
	// The JSON first, then the table: the checkpointer may sign another
	// checkpoint between the two calls (the lookups above are ledger
	// entries too), and a later table holds every earlier size.
	var sizes struct{ Sizes []int64 }
	if err := jsonUnmarshal(m.cli(t, "checkpoints", "--json"), &sizes); err != nil || len(sizes.Sizes) == 0 {
		t.Fatalf("checkpoints --json: %v %v", sizes, err)
	}
	out = m.cli(t, "checkpoints")
	if !strings.HasPrefix(out, "SIZE\n") {
		t.Errorf("checkpoints:\n%s", out)
	}
	size := sizes.Sizes[len(sizes.Sizes)-1]
	if !strings.Contains(out, ledgerInt(size)+"\n") {
		t.Errorf("checkpoints table lacks %d:\n%s", size, out)
	}

	keyFile := filepath.Join(t.TempDir(), "checkpoint.pub")
	if _, stderr, err := runCLI("checkpoint-key", "--data", dir, "--out", keyFile); err != nil {
		t.Fatalf("checkpoint-key --out: %v %s", err, stderr)
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "checkpoint.pub"))
	got, _ := os.ReadFile(keyFile)
	if strings.TrimSpace(string(got)) != strings.TrimSpace(string(pub)) {
		t.Errorf("--out wrote %q, want %q", got, pub)
	}
	if out := m.cli(t, "prove", "1", "--key", keyFile); !strings.HasSuffix(out, "proven\n") {
		t.Errorf("prove with --key FILE:\n%s", out)
	}
	// A size with no checkpoint: consistency says which sizes it can prove.
	if err, _ := m.cliErr(t, "consistency", ledgerInt(size+1000), "--key", keyFile); !strings.Contains(err.Error(), "'sharelog checkpoints' lists them") {
		t.Errorf("consistency of an unsigned size: %v", err)
	}
	if _, stderr, err := runCLI("verify", "--data", dir, "--key", ""); exitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--key is required and must not be empty") {
		t.Errorf("verify --key '': %v (exit %d) %s", err, exitCode(err), stderr)
	}

	help, _, err := runCLI("--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Exit status:", "Evidence (the tamper-evident ledger):", "Examples:", "completion"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	everyday := help[:strings.Index(help, "Other:")]
	if strings.Contains(everyday, "bench") {
		t.Errorf("bench among the everyday commands:\n%s", help)
	}
	if strings.Contains(help, "internal/") || strings.Contains(help, ".go") {
		t.Errorf("--help names a source path:\n%s", help)
	}
	if v, _, _ := runCLI("--version"); !strings.HasPrefix(v, "sharelog ") || !strings.Contains(v, "go1.") {
		t.Errorf("--version = %q", v)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func ledgerInt(n int64) string { return strconv.FormatInt(n, 10) }

// TestCompletion: with COMP_LINE set, as the completion script sets it,
// sharelog prints the completions of the command line.
func TestCompletion(t *testing.T) {
	tests := []struct {
		line string
		want []string
	}{
		{"sharelog ver", []string{"verify"}},
		{"sharelog checkpoint", []string{"checkpoint-key", "checkpoints"}},
		{"sharelog verify --key-", []string{"--key-in-data"}},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			t.Setenv("COMP_LINE", tc.line)
			out, _, err := runCLI()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Fields(out)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("completions of %q = %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}

// TestVerifyJSON: verify --json prints the result as JSON.
func TestVerifyJSON(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, testConfig(dir))
	registerRecipient(t, m, "acro")
	publishDisclosures(t, m, 1, 2)
	vkey, _, err := runCLI("checkpoint-key", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	out, stderr, err := runCLI("verify", "--data", dir, "--key", strings.TrimSpace(vkey), "--json")
	if err != nil {
		t.Fatalf("%v %s", err, stderr)
	}
	var res struct {
		Intact bool
		Size   int64
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res.Intact || res.Size != 3 {
		t.Errorf("verify --json = %s (%v)", out, err)
	}
}
