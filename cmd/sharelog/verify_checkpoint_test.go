package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/nats-io/nats-server/v2/server"
	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
)

const keyInDataWarning = "the checkpoint signing key is inside the data directory"

// TestCheckpointsKeptInNATS runs serve against an existing NATS server that
// asks for a user and password, with the signing key kept apart from the
// data directory: each checkpoint appears on sharelog.checkpoint and in the
// bucket SHARELOG_CHECKPOINTS, `checkpoints --nats` reads and saves them as
// an auditor, and `verify` checks the stopped server's ledger against the
// saved one and the latest kept in NATS.
func TestCheckpointsKeptInNATS(t *testing.T) {
	ctx := context.Background()
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(),
		Users: []*server.User{
			{Username: "sharelog", Password: "pw"},
			{Username: "auditor", Password: "s3cret", Permissions: nats.Permissions(
				&ledger.Principal{Name: "auditor", Roles: []ledger.Role{ledger.RoleAuditor}})},
		},
		NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	url := ns.ClientURL()
	withCreds := strings.Replace(url, "nats://", "nats://sharelog:pw@", 1)

	dir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "checkpoint.key")
	cfg := testConfig(dir)
	cfg.NATS = withCreds
	cfg.CheckpointKeyFile = keyFile
	m := startMain(t, cfg)

	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("--checkpoint-key-file: %v, mode %v; want it created 0600", err, fi)
	}
	if _, err := os.Stat(filepath.Join(dir, checkpoint.KeyFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a signing key was written to the data directory too: %v", err)
	}
	if strings.Contains(m.logs.String(), keyInDataWarning) {
		t.Errorf("serve warned of a key inside the data directory with the key apart:\n%s", m.logs)
	}
	pubFile := filepath.Join(t.TempDir(), "checkpoint.pub")
	if _, stderr, err := runCLI("checkpoint-key", "--data", dir, "--checkpoint-key-file", keyFile, "--out", pubFile); err != nil {
		t.Fatalf("checkpoint-key: %v %s", err, stderr)
	}
	v, err := checkpoint.LoadVerifier(pubFile)
	if err != nil {
		t.Fatal(err)
	}

	auditor, err := natsio.Connect(url, natsio.UserInfo("auditor", "s3cret"), natsio.CustomInboxPrefix(nats.InboxPrefix("auditor")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(auditor.Close)
	sub, err := auditor.SubscribeSync(nats.SubjectCheckpoint)
	if err != nil {
		t.Fatal(err)
	}
	auditor.Flush()

	registerRecipient(t, m, "acro")
	publishDisclosures(t, m, 1, 9)
	signed, err := m.Checkpointer.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err := checkpoint.Open(signed, v); err != nil || cp.Size != 10 {
		t.Fatalf("checkpoint = %+v, %v; want size 10 signed by the key apart", cp, err)
	}
	// The loop may have published an earlier checkpoint first.
	for {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("checkpoint of size 10 not on %s: %v", nats.SubjectCheckpoint, err)
		}
		if _, err := checkpoint.Open(msg.Data, v); err != nil {
			t.Errorf("message on %s does not verify: %v: %q", nats.SubjectCheckpoint, err, msg.Data)
		}
		if string(msg.Data) == string(signed) {
			break
		}
	}
	js, err := jetstream.New(auditor)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, nats.BucketCheckpoints)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, nats.KeyLatestCheckpoint); err != nil || string(e.Value()) != string(signed) {
		t.Errorf("bucket %s latest = %v; want the checkpoint of size 10", nats.BucketCheckpoints, err)
	}
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	if _, err := kv.Put(pctx, nats.KeyLatestCheckpoint, []byte("forged")); err == nil {
		t.Error("the auditor, allowed to read the bucket, wrote to it")
	}
	cancel()

	// The auditor's command, without and with credentials.
	if _, _, err := runCLI("checkpoints", "--nats", url); exitCode(err) != ExitUnavailable {
		t.Errorf("checkpoints --nats without credentials = %v (exit %d), want exit 3", err, exitCode(err))
	}
	saved := filepath.Join(t.TempDir(), "kept.checkpoint")
	stdout, stderr, err := runCLI("checkpoints", "--nats", url, "--nats-user", "auditor", "--nats-password", "s3cret", "--key", pubFile, "--save", saved)
	if err != nil {
		t.Fatalf("checkpoints --nats: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if !strings.HasPrefix(lines[0], "REVISION") || !strings.Contains(lines[len(lines)-1], "kept in SHARELOG_CHECKPOINTS (each signed by "+v.Name()+")") {
		t.Errorf("checkpoints --nats printed %q", stdout)
	}
	if f := strings.Fields(lines[len(lines)-3]); len(f) < 2 || f[1] != "10" {
		t.Errorf("checkpoints --nats: last row %q, want size 10", lines[len(lines)-3])
	}
	if b, _ := os.ReadFile(saved); string(b) != string(signed) || !strings.Contains(stderr, "checkpoint of size 10 saved to ") {
		t.Errorf("--save wrote %q (%s), want the latest kept", b, stderr)
	}
	if os.Getenv("SHARELOG_TOKEN") != "" {
		t.Fatal("SHARELOG_TOKEN set outside the test")
	}

	// Stopping the server signs and publishes a last checkpoint; the NATS
	// server keeps it after sharelog has gone.
	publishDisclosures(t, m, 10, 5)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHARELOG_TOKEN", "s3cret")
	stdout, _, err = runCLI("checkpoints", "--nats", url, "--nats-user", "auditor", "--json")
	var rows []struct {
		Revision uint64
		Size     int64
	}
	if err != nil || json.Unmarshal([]byte(stdout), &rows) != nil || len(rows) < 2 || rows[len(rows)-1].Size != 15 {
		t.Fatalf("checkpoints --nats --json = %q, %v; want the last kept of size 15", stdout, err)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].Size <= rows[i-1].Size || rows[i].Revision <= rows[i-1].Revision {
			t.Errorf("kept checkpoints out of order: %+v", rows)
		}
	}
	stdout, stderr, err = runCLI("verify", "--data", dir, "--key", pubFile, "--checkpoint", saved, "--nats", url, "--nats-user", "auditor")
	if err != nil || !strings.HasPrefix(stdout, "intact: size 15 ") {
		t.Errorf("verify against the kept checkpoints = %v\n%s%s", err, stdout, stderr)
	}
}

// TestCheckpointKeyMigration: a key already in the data directory keeps
// signing, with a warning at every start, until it is moved to
// --checkpoint-key-file; serve refuses to start with a new key elsewhere
// while the old one is still there.
func TestCheckpointKeyMigration(t *testing.T) {
	dir := t.TempDir()
	m := startMain(t, testConfig(dir))
	if !strings.Contains(m.logs.String(), keyInDataWarning) {
		t.Errorf("serve with the key in the data directory did not warn:\n%s", m.logs)
	}
	vkey, err := checkpoint.PublicKey(filepath.Join(dir, checkpoint.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	m.Close()

	cfg := testConfig(dir)
	cfg.CheckpointKeyFile = filepath.Join(t.TempDir(), "checkpoint.key")
	m2 := NewMain(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	err = m2.Open(context.Background())
	m2.Close()
	if err == nil || !strings.Contains(err.Error(), "move it there (mv ") {
		t.Fatalf("serve with a new --checkpoint-key-file while the data directory holds the key = %v, want a refusal saying to move it", err)
	}
	if _, err := os.Stat(cfg.CheckpointKeyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a new key was created at %s: %v", cfg.CheckpointKeyFile, err)
	}
	if err := os.Rename(filepath.Join(dir, checkpoint.KeyFileName), cfg.CheckpointKeyFile); err != nil {
		t.Fatal(err)
	}
	m3 := startMain(t, cfg)
	if strings.Contains(m3.logs.String(), keyInDataWarning) || strings.Contains(m3.logs.String(), "created checkpoint signing key") {
		t.Errorf("after moving the key:\n%s", m3.logs)
	}
	if got, _ := checkpoint.PublicKey(cfg.CheckpointKeyFile); got != vkey {
		t.Errorf("moved key = %q, want %q", got, vkey)
	}
	if pub, _ := os.ReadFile(filepath.Join(dir, checkpoint.PubFileName)); strings.TrimSpace(string(pub)) != vkey {
		t.Errorf("checkpoint.pub = %q, want %q", pub, vkey)
	}

	// checkpoints --save over HTTP keeps the server's latest, once it has
	// one, and only if the key the caller holds signed it.
	saved := filepath.Join(t.TempDir(), "kept.checkpoint")
	if err, _ := m3.cliErr(t, "checkpoints", "--save", saved); exitCode(err) != ExitNotFound {
		t.Errorf("checkpoints --save of an empty ledger = %v, want exit 4", err)
	}
	registerRecipient(t, m3, "acro")
	signed, err := m3.Checkpointer.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m3.cli(t, "checkpoints", "--save", saved, "--key", vkey)
	if b, _ := os.ReadFile(saved); string(b) != string(signed) {
		t.Errorf("checkpoints --save wrote %q, want %q", b, signed)
	}
	if err, _ := m3.cliErr(t, "checkpoints", "--save", saved, "--key", otherKey(t)); exitCode(err) != ExitTampered {
		t.Errorf("checkpoints --save with another key = %v, want exit 6", err)
	}
}

// otherKey returns the public key of a new checkpoint key of the default
// name.
func otherKey(t *testing.T) string {
	t.Helper()
	_, vkey, _, err := checkpoint.LoadOrCreateKey(filepath.Join(t.TempDir(), checkpoint.KeyFileName), "", checkpoint.DefaultName())
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

// TestVerifyAgainstKeptCheckpoint tampers with copies of a ledger as an
// insider with the data directory could, and checks that verify against a
// checkpoint kept in NATS names each: a truncated ledger (an older copy
// restored), a rolled back one (an older copy restored and grown again), and
// a re-signed one (signed again with a new key, or rewritten and signed with
// the key in the data directory).
func TestVerifyAgainstKeptCheckpoint(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	m := startMain(t, testConfig(dir))
	registerRecipient(t, m, "acro")
	publishDisclosures(t, m, 1, 5)
	if _, err := m.Checkpointer.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	older := copyData(t, dir) // 6 entries

	m = startMain(t, testConfig(dir))
	publishDisclosures(t, m, 6, 5)
	if _, err := m.Checkpointer.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(t.TempDir(), "kept.checkpoint")
	if _, stderr, err := runCLI("checkpoints", "--nats", m.NATSURL(), "--save", kept); err != nil || !strings.Contains(stderr, "checkpoint of size 11 saved") {
		t.Fatalf("checkpoints --nats --save: %v %s", err, stderr)
	}
	m.Close()
	pubFile := filepath.Join(t.TempDir(), "checkpoint.pub")
	if _, _, err := runCLI("checkpoint-key", "--data", dir, "--out", pubFile); err != nil {
		t.Fatal(err)
	}
	verify := func(dir string, args ...string) (string, error) {
		t.Helper()
		stdout, stderr, err := runCLI(append([]string{"verify", "--data", dir, "--tree-only"}, args...)...)
		if err != nil && exitCode(err) != ExitTampered {
			t.Fatalf("verify %s: %v\n%s", args, err, stderr)
		}
		return stdout, err
	}

	if out, err := verify(dir, "--key", pubFile, "--checkpoint", kept); err != nil || !strings.HasPrefix(out, "intact: size 11 ") {
		t.Errorf("verify of the untouched ledger = %v\n%s", err, out)
	}

	// TRUNCATED: the older copy put back. Without the kept checkpoint it
	// passes: it agrees with itself.
	truncated := copyData(t, older)
	if out, err := verify(truncated, "--key", pubFile); err != nil || !strings.HasPrefix(out, "intact: size 6 ") {
		t.Fatalf("verify of the older copy without a kept checkpoint = %v\n%s", err, out)
	}
	out, err := verify(truncated, "--key", pubFile, "--checkpoint", kept)
	if want := "TRUNCATED: the ledger holds 6 entries, fewer than the 11 of the checkpoint kept in " + kept + ": entries 7 to 11 are gone\n"; err == nil || out != want {
		t.Errorf("verify of a truncated ledger = %v\n%q, want\n%q", err, out, want)
	}

	// ROLLED BACK / REWRITTEN: the older copy put back and grown again past
	// the kept size with other entries, signed with the key it holds.
	rolled := copyData(t, older)
	m = startMain(t, testConfig(rolled))
	publishDisclosures(t, m, 100, 7)
	m.Close()
	setCheckpoint(t, rolled, 11, nil) // none of the kept size, as it would be signed at another size most times
	out, err = verify(rolled, "--key", pubFile, "--checkpoint", kept)
	if err == nil || !strings.HasPrefix(out, "ROLLED BACK / REWRITTEN: the ledger's tree of size 13 ") || !strings.Contains(out, "does not extend the checkpoint kept in "+kept+" (size 11") {
		t.Errorf("verify of a rolled back ledger = %v\n%s", err, out)
	}
	if out, err := verify(rolled, "--key", pubFile); err != nil {
		t.Errorf("the rolled back ledger agrees with itself without the kept checkpoint: %v\n%s", err, out)
	}

	// RE-SIGNED with the key in the data directory: the rolled back ledger
	// with a checkpoint of the kept size signed over its own tree.
	dataSigner, _, _, err := checkpoint.LoadOrCreateKey(filepath.Join(rolled, checkpoint.KeyFileName), "", "")
	if err != nil {
		t.Fatal(err)
	}
	setCheckpoint(t, rolled, 11, signTree(t, rolled, 11, dataSigner))
	out, err = verify(rolled, "--key", pubFile, "--checkpoint", kept)
	if err == nil || !strings.HasPrefix(out, "RE-SIGNED: the ledger's own checkpoint of size 11, signed by ") || !strings.Contains(out, "could use the key") {
		t.Errorf("verify of a ledger rewritten and signed with its own key = %v\n%s", err, out)
	}

	// RE-SIGNED with a new key: every stored checkpoint signed again by a
	// key of the same name put in the data directory. The key inside the
	// directory vouches for it; the kept checkpoint does not.
	resigned := copyData(t, dir)
	os.Remove(filepath.Join(resigned, checkpoint.KeyFileName))
	os.Remove(filepath.Join(resigned, checkpoint.PubFileName))
	newSigner, _, _, err := checkpoint.LoadOrCreateKey(filepath.Join(resigned, checkpoint.KeyFileName), filepath.Join(resigned, checkpoint.PubFileName), checkpoint.DefaultName())
	if err != nil {
		t.Fatal(err)
	}
	if n := resignAll(t, resigned, newSigner); n < 2 {
		t.Fatalf("re-signed %d checkpoints, want at least 2", n)
	}
	if out, err := verify(resigned, "--key-in-data"); err != nil || !strings.HasPrefix(out, "intact: size 11 ") {
		t.Fatalf("verify --key-in-data of the re-signed ledger = %v\n%s", err, out)
	}
	oldV, _ := checkpoint.LoadVerifier(pubFile)
	newV, _ := checkpoint.LoadVerifier(filepath.Join(resigned, checkpoint.PubFileName))
	out, err = verify(resigned, "--key", pubFile, "--checkpoint", kept)
	if want := "RE-SIGNED: the ledger's own checkpoint of size 11 is signed by " + checkpoint.KeyID(newV) + ", not by " + checkpoint.KeyID(oldV) + ", which signed the checkpoint kept in " + kept + "\n"; err == nil || out != want {
		t.Errorf("verify of a re-signed ledger = %v\n%q, want\n%q", err, out, want)
	}
	out, err = verify(resigned, "--key-in-data", "--checkpoint", kept)
	if err == nil || !strings.HasPrefix(out, "RE-SIGNED: the checkpoint kept in "+kept+" is signed by "+checkpoint.KeyID(oldV)+", not by the key in the data directory") {
		t.Errorf("verify --key-in-data of a re-signed ledger = %v\n%s", err, out)
	}
	out, err = verify(resigned, "--key", pubFile, "--checkpoint", kept, "--json")
	var res struct {
		Intact bool
		Kind   string
	}
	if json.Unmarshal([]byte(out), &res) != nil || res.Intact || res.Kind != "re-signed" || exitCode(err) != ExitTampered {
		t.Errorf("verify --json of a re-signed ledger = %v (exit %d)\n%s", err, exitCode(err), out)
	}
}

// copyData copies a stopped server's data directory, modes kept.
func copyData(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", dir, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// updateLedger changes the ledger in dir behind sharelog's back.
func updateLedger(t *testing.T, dir string, f func(txn *badger.Txn) error) {
	t.Helper()
	db := openLedgerBehindSharelog(t, dir)
	err := db.Update(f)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

func checkpointKeyOf(size int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{'c'}, uint64(size))
}

// setCheckpoint stores signed as the ledger's checkpoint of size, or
// deletes it when signed is nil.
func setCheckpoint(t *testing.T, dir string, size int64, signed []byte) {
	t.Helper()
	updateLedger(t, dir, func(txn *badger.Txn) error {
		if signed == nil {
			return txn.Delete(checkpointKeyOf(size))
		}
		return txn.Set(checkpointKeyOf(size), signed)
	})
}

// signTree signs the ledger's tree of size with s.
func signTree(t *testing.T, dir string, size int64, s note.Signer) []byte {
	t.Helper()
	var signed []byte
	updateLedger(t, dir, func(txn *badger.Txn) error {
		// The tree over the entry values, recomputed in memory (the ledger
		// stores only its full tiles, internal/store/tree.go).
		var stored []tlog.Hash
		r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				out[i] = stored[x]
			}
			return out, nil
		})
		for n := int64(0); n < size; n++ {
			item, err := txn.Get(store.EntryKey(uint64(n + 1)))
			if err != nil {
				return err
			}
			raw, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			v, err := store.EntryValue(raw)
			if err != nil {
				return err
			}
			hs, err := tlog.StoredHashes(n, v, r)
			if err != nil {
				return err
			}
			stored = append(stored, hs...)
		}
		root, err := tlog.TreeHash(size, r)
		if err != nil {
			return err
		}
		signed, err = checkpoint.Sign(checkpoint.Checkpoint{Origin: s.Name(), Size: size, Root: root}, s)
		return err
	})
	return signed
}

// resignAll signs every stored checkpoint again with s and returns how many.
func resignAll(t *testing.T, dir string, s note.Signer) int {
	t.Helper()
	n := 0
	updateLedger(t, dir, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{'c'}, PrefetchValues: true})
		defer it.Close()
		var keys, values [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			msg, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			cp, err := checkpoint.ParseUnverified(msg)
			if err != nil {
				return err
			}
			signed, err := checkpoint.Sign(cp, s)
			if err != nil {
				return err
			}
			keys, values = append(keys, it.Item().KeyCopy(nil)), append(values, signed)
		}
		for i := range keys {
			if err := txn.Set(keys[i], values[i]); err != nil {
				return err
			}
		}
		n = len(keys)
		return nil
	})
	return n
}
