package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/checkpoint"
	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/store"
)

// runCLI runs a command that takes no --server and returns stdout, stderr and
// its error.
func runCLI(args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

// publishDisclosures records n disclosures to recipient acro over HTTP.
func publishDisclosures(t *testing.T, m *testMain, from, n int) {
	t.Helper()
	var batch []map[string]any
	for i := from; i < from+n; i++ {
		batch = append(batch, disclosure("cms", fmt.Sprintf("d-%d", i),
			[]ledger.Subject{{Scheme: "dbs-ref", ID: fmt.Sprintf("S%d", i)}}, "acro",
			[]string{"user.criminal_history"}, time.Date(2026, 1, 2, 0, 0, i, 0, time.UTC)))
	}
	resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents-batch+json", nil, mustJSON(t, batch))
	if resp.StatusCode != http.StatusAccepted || strings.Contains(string(body), "pending") {
		t.Fatalf("publish: %d %s", resp.StatusCode, body)
	}
}

// TestCheckpointsProofsAndVerify runs the auditor's and the third party's
// paths end to end: checkpoints signed by the server, inclusion and
// consistency proofs checked with only the public key, and an offline
// verify of the data directory before and after tampering.
func TestCheckpointsProofsAndVerify(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, testConfig(dir))
	ctx := context.Background()

	fi, err := os.Stat(filepath.Join(dir, "checkpoint.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("checkpoint.key mode = %04o, want 0600", fi.Mode().Perm())
	}
	stdout, _, err := runCLI("checkpoint-key", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	vkey := strings.TrimSpace(stdout)
	pub, _ := os.ReadFile(filepath.Join(dir, "checkpoint.pub"))
	if strings.TrimSpace(string(pub)) != vkey {
		t.Errorf("checkpoint.pub = %q, checkpoint-key printed %q", pub, vkey)
	}
	v, err := checkpoint.LoadVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(m.HTTP.URL() + "/v1/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/checkpoint of an empty ledger = %d, want 404", resp.StatusCode)
	}

	registerRecipient(t, m, "acro")
	publishDisclosures(t, m, 1, 20)
	first, err := m.Checkpointer.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp1, err := checkpoint.Open(first, v)
	if err != nil {
		t.Fatal(err)
	}
	if cp1.Size != 21 {
		t.Errorf("first checkpoint size = %d, want 21", cp1.Size)
	}
	oldFile := filepath.Join(t.TempDir(), "old.checkpoint")
	if err := os.WriteFile(oldFile, first, 0o644); err != nil {
		t.Fatal(err)
	}

	resp, err = http.Get(m.HTTP.URL() + "/v1/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	var served bytes.Buffer
	served.ReadFrom(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" || served.String() != string(first) {
		t.Errorf("GET /v1/checkpoint = %s %q, want the signed note %q", ct, served.String(), first)
	}

	out := m.cli(t, "prove", "5", "--key", vkey)
	if !strings.HasPrefix(out, "entry 5 (leaf hash ") || !strings.Contains(out, "in the tree of size 21") || !strings.HasSuffix(out, "proven\n") {
		t.Errorf("prove 5 = %q", out)
	}
	_, otherKey, _ := strings.Cut(vkey, "+") // a malformed key
	if err, _ := m.cliErr(t, "prove", "5", "--key", "sharelog/x+"+otherKey); err == nil {
		t.Error("prove with a wrong key succeeded")
	}
	var p *slhttp.Problem
	if err, _ := m.cliErr(t, "prove", "22", "--key", vkey); !errors.As(err, &p) || p.Code != ledger.EINVALID {
		t.Errorf("prove 22 of 21 = %v, want EINVALID", err)
	}

	publishDisclosures(t, m, 21, 10)
	if _, err := m.Checkpointer.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	out = m.cli(t, "consistency", "21", "--key", vkey)
	if !strings.HasPrefix(out, "tree of size 31 ") || !strings.Contains(out, "extends tree of size 21") {
		t.Errorf("consistency 21 = %q", out)
	}
	out = m.cli(t, "consistency", "--old", oldFile, "--key", vkey)
	if !strings.HasPrefix(out, "tree of size 31 ") {
		t.Errorf("consistency --old = %q", out)
	}

	// Stopping the server signs a last checkpoint; verify reads the copy.
	publishDisclosures(t, m, 31, 3)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := runCLI("verify", "--data", dir, "--key", vkey, "--checkpoint", oldFile, "--every", "10")
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "intact: size 34 root ") ||
		!strings.HasPrefix(lines[1], "derived state: ") || !strings.HasSuffix(lines[1], " records match the replay of the entries") {
		t.Errorf("verify printed %q", stdout)
	}
	// Checkpoints 21, 31 and 34 stored, and the auditor's copy of 21.
	if want := "4 checkpoint signatures by " + v.Name() + " checked; latest checkpoint size 34"; lines[len(lines)-1] != want {
		t.Errorf("verify printed %q, want last line %q", stdout, want)
	}
	if !strings.Contains(stderr, "verified 10 of 34 entries (29%)") || !strings.Contains(stderr, "verified 34 of 34 entries (100%)") {
		t.Errorf("verify progress = %q", stderr)
	}

	// Tamper with entry 7 behind sharelog's back.
	db := openLedgerBehindSharelog(t, dir)
	key := store.EntryKey(7)
	err = db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		stored, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		v, err := store.EntryValue(stored) // entries are kept compressed
		if err != nil {
			return err
		}
		// The identifiers are sealed; alter the clear recipient instead.
		altered := bytes.Replace(v, []byte(`"recipient":"acro"`), []byte(`"recipient":"acrx"`), 1)
		if bytes.Equal(altered, v) {
			t.Errorf("entry 7 does not name recipient acro in clear: %q", v)
		}
		return txn.Set(key, store.StoredEntry(altered))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	stdout, _, err = runCLI("verify", "--data", dir, "--key", vkey)
	// Entry 7 is in the tree's partial tile, whose leaf hashes are not
	// stored (internal/store/tree.go): the checkpoint of size 21 tells.
	const tampered = "checkpoint size 21 does not match the ledger: an entry from 1 to 21 was changed (where stored tree tiles cover it, with them rewritten to hide it)"
	if err == nil || err.Error() != "ledger is not intact: "+tampered || stdout != "TAMPERED: "+tampered+"\n" {
		t.Errorf("verify after tampering = %q, %v", stdout, err)
	}
}
