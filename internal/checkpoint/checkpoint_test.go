package checkpoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func testKey(t *testing.T, name string) (note.Signer, note.Verifier, string) {
	t.Helper()
	dir := t.TempDir()
	s, vkey, created, err := LoadOrCreateKey(filepath.Join(dir, KeyFileName), filepath.Join(dir, PubFileName), name)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKey = %v, created %v", err, created)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v, dir
}

func TestKeyFiles(t *testing.T) {
	for range 8 { // keys whose base64 holds '+' too
		s, v, dir := testKey(t, "sharelog/test-host")
		keyPath := filepath.Join(dir, KeyFileName)
		fi, err := os.Stat(keyPath)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key file: %v, mode %v", err, fi.Mode())
		}
		pub, _ := os.ReadFile(filepath.Join(dir, PubFileName))
		vkey, err := PublicKey(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(pub)) != vkey || v.Name() != "sharelog/test-host" || v.KeyHash() != s.KeyHash() {
			t.Errorf("public key %q, file %q; verifier %s %08x, signer %08x", vkey, pub, v.Name(), v.KeyHash(), s.KeyHash())
		}
		s2, vkey2, created, err := LoadOrCreateKey(keyPath, filepath.Join(dir, PubFileName), "other")
		if err != nil || created || vkey2 != vkey || s2.Name() != s.Name() {
			t.Errorf("reload = %v, created %v, %q; want the same key %q", err, created, vkey2, vkey)
		}
		if _, err := LoadVerifier(filepath.Join(dir, PubFileName)); err != nil {
			t.Errorf("LoadVerifier(file): %v", err)
		}
		if _, err := LoadVerifier(vkey); err != nil {
			t.Errorf("LoadVerifier(key): %v", err)
		}
	}
}

func TestKeyFileRefusedWhenReadable(t *testing.T) {
	_, _, dir := testKey(t, "sharelog/t")
	keyPath := filepath.Join(dir, KeyFileName)
	if err := os.Chmod(keyPath, 0o640); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := LoadOrCreateKey(keyPath, "", "sharelog/t")
	if err == nil || !strings.Contains(err.Error(), "mode 0640") {
		t.Errorf("LoadOrCreateKey of a group-readable key = %v, want a refusal naming the mode", err)
	}
}

func TestSignOpen(t *testing.T) {
	s, v, _ := testKey(t, "sharelog/t")
	cp := Checkpoint{Origin: "sharelog/t", Size: 42, Root: tlog.RecordHash([]byte("x"))}
	msg, err := Sign(cp, s)
	if err != nil {
		t.Fatal(err)
	}
	text, _, _ := strings.Cut(string(msg), "\n\n")
	if want := strings.TrimSuffix(cp.String(), "\n"); text != want {
		t.Errorf("signed note body = %q, want %q", text, want)
	}
	got, err := Open(msg, v)
	if err != nil || got != cp {
		t.Errorf("Open = %+v, %v; want %+v", got, err, cp)
	}
	if got, err := ParseUnverified(msg); err != nil || got != cp {
		t.Errorf("ParseUnverified = %+v, %v", got, err)
	}
	// A changed size breaks the signature.
	forged := []byte(strings.Replace(string(msg), "\n42\n", "\n43\n", 1))
	if _, err := Open(forged, v); err == nil {
		t.Error("Open of an altered checkpoint succeeded")
	}
	_, other, _ := testKey(t, "sharelog/t")
	if _, err := Open(msg, other); err == nil || !strings.Contains(err.Error(), "not signed by key sharelog/t") {
		t.Errorf("Open with another key = %v", err)
	}
	if _, err := Sign(Checkpoint{Origin: "elsewhere", Size: 1}, s); err == nil {
		t.Error("Sign with an origin other than the key's name succeeded")
	}
	for _, bad := range []string{"o\n1\n", "o\n-1\nAAAA\n", "o\n01\n" + strings.Repeat("A", 44) + "\n", "o\n1\nnotbase64\n", "\n1\n" + strings.Repeat("A", 43) + "=\n"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

// memTree is a Tree in memory for the Checkpointer.
type memTree struct {
	leaves [][]byte
	saved  map[int64][]byte
	latest int64
}

func (m *memTree) Count() uint64 { return uint64(len(m.leaves)) }
func (m *memTree) TreeHead(context.Context) (int64, tlog.Hash, error) {
	var hs []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hs[x]
		}
		return out, nil
	})
	for n, l := range m.leaves {
		add, err := tlog.StoredHashes(int64(n), l, r)
		if err != nil {
			return 0, tlog.Hash{}, err
		}
		hs = append(hs, add...)
	}
	root, err := tlog.TreeHash(int64(len(m.leaves)), r)
	return int64(len(m.leaves)), root, err
}
func (m *memTree) LatestCheckpoint(context.Context) ([]byte, error) { return m.saved[m.latest], nil }
func (m *memTree) SaveCheckpoint(size int64, signed []byte) error {
	m.saved[size] = signed
	m.latest = size
	return nil
}

func TestCheckpointerSignsOnlyGrowth(t *testing.T) {
	s, v, _ := testKey(t, "sharelog/t")
	tree := &memTree{saved: map[int64][]byte{}}
	c := NewCheckpointer(tree, s, nil)
	ctx := context.Background()
	if msg, err := c.Checkpoint(ctx); err != nil || msg != nil {
		t.Fatalf("Checkpoint of an empty tree = %q, %v; want nothing", msg, err)
	}
	tree.leaves = [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	msg, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := Open(msg, v)
	_, root, _ := tree.TreeHead(ctx)
	if err != nil || cp.Size != 3 || cp.Root != root {
		t.Errorf("checkpoint = %+v, %v; want size 3 root %v", cp, err, root)
	}
	again, _ := c.Checkpoint(ctx)
	if string(again) != string(msg) || len(tree.saved) != 1 {
		t.Errorf("unchanged tree signed again: %d saved", len(tree.saved))
	}
	// A new Checkpointer (a restart) starts from the stored latest.
	c2 := NewCheckpointer(tree, s, nil)
	if _, err := c2.Checkpoint(ctx); err != nil || len(tree.saved) != 1 {
		t.Errorf("after restart: %v, %d saved", err, len(tree.saved))
	}
	tree.leaves = append(tree.leaves, []byte("d"))
	if _, err := c2.Checkpoint(ctx); err != nil || len(tree.saved) != 2 || tree.latest != 4 {
		t.Errorf("after growth: %v, %d saved, latest %d", err, len(tree.saved), tree.latest)
	}
	// Run returns nil when ctx ends, signing nothing more; the owner signs
	// the last checkpoint once the writer has stopped.
	tree.leaves = append(tree.leaves, []byte("e"))
	rctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c2.Run(rctx); err != nil {
		t.Errorf("Run after ctx ended = %v, want nil", err)
	}
	if tree.latest != 4 {
		t.Errorf("after Run stopped: latest checkpoint %d, want 4", tree.latest)
	}
	if _, err := c2.Checkpoint(ctx); err != nil || tree.latest != 5 {
		t.Errorf("last checkpoint: %v, latest %d, want 5", err, tree.latest)
	}
}

// recordingPublisher is a Publisher that records what it is given and fails
// while fail is set.
type recordingPublisher struct {
	sizes []int64
	msgs  [][]byte
	fail  bool
}

func (p *recordingPublisher) PublishCheckpoint(_ context.Context, size int64, signed []byte) error {
	if p.fail {
		return errors.New("nats down")
	}
	p.sizes = append(p.sizes, size)
	p.msgs = append(p.msgs, signed)
	return nil
}

func TestCheckpointerPublishes(t *testing.T) {
	s, v, _ := testKey(t, "sharelog/t")
	tree := &memTree{saved: map[int64][]byte{}}
	ctx := context.Background()
	c := NewCheckpointer(tree, s, nil)
	pub := &recordingPublisher{}
	c.PublishTo(pub)
	if _, err := c.Checkpoint(ctx); err != nil || len(pub.sizes) != 0 {
		t.Fatalf("empty tree: %v, published %v", err, pub.sizes)
	}
	tree.leaves = [][]byte{[]byte("a"), []byte("b")}
	msg, err := c.Checkpoint(ctx)
	if err != nil || len(pub.msgs) != 1 || string(pub.msgs[0]) != string(msg) || pub.sizes[0] != 2 {
		t.Fatalf("first checkpoint: %v, published sizes %v", err, pub.sizes)
	}
	if cp, err := Open(pub.msgs[0], v); err != nil || cp.Size != 2 {
		t.Errorf("published checkpoint = %+v, %v", cp, err)
	}
	c.Checkpoint(ctx) // unchanged: nothing published again
	if len(pub.sizes) != 1 {
		t.Errorf("unchanged tree published again: %v", pub.sizes)
	}
	// A failure to publish keeps the signed checkpoint and is tried again.
	pub.fail = true
	tree.leaves = append(tree.leaves, []byte("c"))
	if msg, err := c.Checkpoint(ctx); err != nil || msg == nil || tree.latest != 3 {
		t.Fatalf("checkpoint while publishing fails = %v, latest %d; want it signed and stored", err, tree.latest)
	}
	pub.fail = false
	if _, err := c.Checkpoint(ctx); err != nil || len(pub.sizes) != 2 || pub.sizes[1] != 3 {
		t.Errorf("after the publisher recovered: %v, published %v; want 3 published", err, pub.sizes)
	}
	// A restart publishes the latest stored checkpoint once.
	c2 := NewCheckpointer(tree, s, nil)
	pub2 := &recordingPublisher{}
	c2.PublishTo(pub2)
	c2.Checkpoint(ctx)
	c2.Checkpoint(ctx)
	if len(pub2.sizes) != 1 || pub2.sizes[0] != 3 {
		t.Errorf("after restart published %v, want [3]", pub2.sizes)
	}
}

func TestSigners(t *testing.T) {
	s, v, _ := testKey(t, "sharelog/t")
	msg, err := Sign(Checkpoint{Origin: "sharelog/t", Size: 1, Root: tlog.RecordHash([]byte("x"))}, s)
	if err != nil {
		t.Fatal(err)
	}
	if got := Signers(msg); len(got) != 1 || got[0] != KeyID(v) {
		t.Errorf("Signers = %q, want [%q]", got, KeyID(v))
	}
	if got := Signers([]byte("no note")); got != nil {
		t.Errorf("Signers of a non-note = %q", got)
	}
}
