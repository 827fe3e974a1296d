package nats

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
)

// AtRestKey derives the key of the embedded JetStream store's encryption at
// rest from sharelog's master key: HKDF-SHA256 with its own info string, so
// that it is independent of every other key derived from the master key.
// It is hex, as nats-server's JetStreamKey option takes text.
func AtRestKey(master []byte) string {
	k, err := hkdf.Key(sha256.New, master, nil, "sharelog jetstream encryption at rest", 32)
	if err != nil {
		panic(err) // only for lengths HKDF cannot give
	}
	return hex.EncodeToString(k)
}

// encryptAtRest sets the options of the store's encryption at rest: every
// stream's messages and metadata are encrypted with AES-GCM under keys
// nats-server derives from key. nats-server encrypts an existing
// unencrypted stream when it first starts with a key ("Encrypting stream"
// in its log), so turning encryption on needs no conversion step.
func encryptAtRest(opts *server.Options, key string) {
	if key == "" {
		return
	}
	opts.JetStreamKey = key
	opts.JetStreamCipher = server.AES
}

// checkRecovered returns an error naming the streams whose files are in the
// store but which the server did not load. nats-server skips, with a
// warning only, a stream it cannot decrypt (started without the key it was
// encrypted with, or with another), and sharelog would then create an empty
// stream of the same name over it.
func checkRecovered(ns *server.Server, storeDir string, encrypted bool) error {
	metas, err := filepath.Glob(filepath.Join(storeDir, server.JetStreamStoreDir, "*", "streams", "*", "meta.inf"))
	if err != nil {
		return err
	}
	var keyed int
	for _, m := range metas {
		if _, err := os.Stat(filepath.Join(filepath.Dir(m), server.JetStreamMetaFileKey)); err == nil {
			keyed++
		}
	}
	if loaded := ns.GlobalAccount().JetStreamUsage().Streams; loaded < len(metas) {
		why := "the store is encrypted with another key: start with the master key it was encrypted with"
		if !encrypted && keyed > 0 {
			why = "the store is encrypted at rest, and the server was started without encryption"
		}
		return fmt.Errorf("embedded nats server: %d of the %d streams in %s could not be loaded: %s", len(metas)-loaded, len(metas), storeDir, why)
	}
	return nil
}
