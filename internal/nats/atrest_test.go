package nats

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestJetStreamEncryptionAtRest: a store written in clear holds its
// messages in clear; started with a key, nats-server encrypts it (the
// message is still read back, and no file holds it in clear any more); a
// start without the key, or with another, is refused naming the streams it
// could not load, instead of letting sharelog create empty ones over them.
func TestJetStreamEncryptionAtRest(t *testing.T) {
	const marker = "ZQ-AT-REST-MARKER-4411"
	ctx := context.Background()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	key := AtRestKey(bytes.Repeat([]byte{1}, 32))
	start := func(key string) (jetstream.Stream, func(), error) {
		ns, err := StartServer(ServerConfig{Listen: "127.0.0.1:0", StoreDir: dir, EncryptionKey: key}, logger)
		if err != nil {
			return nil, nil, err
		}
		nc, err := natsio.Connect("", natsio.InProcessServer(ns))
		if err != nil {
			t.Fatal(err)
		}
		stop := func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() }
		js, _ := jetstream.New(nc)
		if _, err := EnsureStreams(ctx, js, StreamConfig{}); err != nil {
			stop()
			t.Fatal(err)
		}
		if _, err := js.Publish(ctx, "sharelog.in.test", []byte(`{"id":"`+marker+`"}`)); err != nil {
			stop()
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, StreamIn)
		if err != nil {
			stop()
			t.Fatal(err)
		}
		return s, stop, nil
	}
	first := func(s jetstream.Stream) string {
		m, err := s.GetMsg(ctx, 1)
		if err != nil {
			return err.Error()
		}
		return string(m.Data)
	}

	_, stop, err := start("")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if len(filesHolding(t, dir, marker)) == 0 {
		t.Fatal("the unencrypted store does not hold the message in clear: the search cannot tell")
	}

	s, stop, err := start(key)
	if err != nil {
		t.Fatalf("start with a key on an unencrypted store: %v", err)
	}
	if got := first(s); !strings.Contains(got, marker) {
		t.Errorf("message 1 after encrypting = %q", got)
	}
	stop()
	if hits := filesHolding(t, dir, marker); len(hits) != 0 {
		t.Errorf("after a start with a key, %v still hold the messages in clear", hits)
	}

	for name, k := range map[string]string{"no key": "", "another key": AtRestKey(bytes.Repeat([]byte{2}, 32))} {
		_, stop, err := start(k)
		if err == nil {
			stop()
			t.Errorf("%s: an encrypted store started", name)
			continue
		}
		if !strings.Contains(err.Error(), "could not be loaded") {
			t.Errorf("%s: error %q does not say the streams could not be loaded", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	s, stop, err = start(key)
	if err != nil {
		t.Fatalf("restart with the key: %v", err)
	}
	defer stop()
	if got := first(s); !strings.Contains(got, marker) {
		t.Errorf("message 1 after the refused starts = %q", got)
	}
}

// filesHolding returns the files under dir that hold needle.
func filesHolding(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if bytes.Contains(b, []byte(needle)) {
			hits = append(hits, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}
