package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// This file is where a batch gets the random secrets that enter the
// ledger's entries: a new subject's salt (its keyed hash and, with the
// master key, its key) and the data key of an entry naming several subjects
// or sealed under a key of its own (Plan.Sealed).
//
// A sharelog on its own makes them with crypto/rand, as it always did, and
// seals entries with random nonces. A replica seals them with synthetic
// ones (sealData) so that the same entry is sealed to the same bytes. A
// replica (sharelog serve --replica) takes them from Config.Secrets, which
// every replica shares: the first replica to need a secret makes it, and
// the others read the same value, so that N replicas folding SHARELOG_IN
// write byte-identical entries and the same Merkle tree. Each secret is
// named after the stream message that first needs it, never after a
// person: SaltName for the i-th subject a message names, DataKeyName for
// the entry of a message. A person forgotten and named again later is
// named by a later message, and gets a new salt.
//
// The shared value is the secret wrapped under the master key (every
// replica has the same master key file). Forgetting a subject destroys its
// secrets in the source too: the forgetting leaves a shred record naming
// them (D seq), which the replica that is leader carries out
// (nats.Keys.Shred) and every replica clears once they are gone. A replica
// that needs a destroyed secret is too far behind to fold the stream as the
// others did: Append fails with ErrSecretDestroyed, and it must be rebuilt
// from a snapshot.
//
//	S K16         -> name                 the name of the subject's salt in Config.Secrets (replicas only)
//	D seq(8)      -> JSON [name...]        secrets forgetting seq destroyed, to destroy in Config.Secrets (replicas only)
const (
	prefixSecretName = 'S'
	prefixShred      = 'D'
)

// Secrets is the store of secrets shared by replicas (nats.Keys implements
// it on a JetStream key-value bucket).
type Secrets interface {
	// Secrets returns the value stored under each name. For a name that
	// has none it stores fresh(name) first; when several callers race, the
	// first writer wins and every caller gets its value. A name whose value
	// was destroyed gives an error wrapping ErrSecretDestroyed. fresh may
	// be called for names that turn out to exist.
	Secrets(ctx context.Context, names []string, fresh func(name string) []byte) ([][]byte, error)
}

// ErrSecretDestroyed says that a secret the ledger needs to record an
// entry was destroyed by a forgetting: this replica is behind the one that
// carried out the forgetting by more than the forgotten subject's life in
// the ledger, and cannot fold SHARELOG_IN as the others did.
var ErrSecretDestroyed = errors.New("a secret this replica needs was destroyed by a forgetting before it folded the entries that use it: the replica is too far behind to fold SHARELOG_IN deterministically; rebuild it from a snapshot of another replica's ledger")

// SaltName is the name of the salt of the i-th subject the stream message
// streamSeq names, when that message makes the subject known.
func SaltName(streamSeq uint64, i int) string {
	return "salt." + strconv.FormatUint(streamSeq, 10) + "." + strconv.Itoa(i)
}

// DataKeyName is the name of the data key of the entry of stream message
// streamSeq.
func DataKeyName(streamSeq uint64) string {
	return "key." + strconv.FormatUint(streamSeq, 10)
}

// SharedSecrets reports whether the store takes its secrets from
// Config.Secrets (a replica) rather than crypto/rand.
func (s *Store) SharedSecrets() bool { return s.secrets != nil }

// Pending is a stream message about to be given to Append.
type Pending struct {
	StreamSeq uint64
	Event     *ledger.Event
}

// Prefetch gets from Config.Secrets, in one call, the secrets Append will
// probably need for events: the salts of the subjects they name that the
// ledger does not know, and the data keys of their entries naming several
// subjects or sealed on their own. The guess is made before the rules
// decide: a secret it misses costs Append a call of its own, one it gets
// needlessly (an event then refused) stays unused. Without Config.Secrets
// it does nothing. ctx also bounds Append's own calls to Config.Secrets.
func (b *Batch) Prefetch(ctx context.Context, events []Pending) error {
	if err := b.check(); err != nil {
		return err
	}
	b.ctx = ctx
	if b.s.secrets == nil {
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for _, p := range events {
		if p.Event == nil {
			continue
		}
		subjects, sealed := likelyNames(p.Event)
		for i, subj := range subjects {
			id := subj.Scheme + "\x00" + subj.ID
			if seen[id] {
				continue
			}
			seen[id] = true
			h, _, err := lookupSubject(b.txn, b.hasher, subj)
			if err != nil {
				return b.fail(fmt.Errorf("store: read salt: %w", err))
			}
			if h == nil {
				names = append(names, SaltName(p.StreamSeq, i))
			}
		}
		if len(subjects) > 1 || (sealed && len(subjects) == 0) {
			names = append(names, DataKeyName(p.StreamSeq))
		}
	}
	return b.fetchSecrets(names)
}

// likelyNames returns the subjects ev's entry would name by identifier
// (ledger.Plan.Names) and whether it would be sealed on its own
// (Plan.Sealed), read from its data without the rules: Prefetch's guess.
func likelyNames(ev *ledger.Event) ([]ledger.Subject, bool) {
	switch d := ev.Data.(type) {
	case *ledger.Disclosure:
		return d.Subjects, false
	case ledger.Request:
		return []ledger.Subject{d.Head().Subject}, false
	case *ledger.Consultation:
		if d.Subject != nil {
			return []ledger.Subject{*d.Subject}, d.Reason != ""
		}
		return nil, d.Reason != ""
	case *ledger.Hold:
		if d.Scope != nil && d.Scope.Subject != nil {
			return []ledger.Subject{*d.Scope.Subject}, false
		}
	}
	return nil, false
}

// fetchSecrets gets the named secrets from Config.Secrets into the batch.
func (b *Batch) fetchSecrets(names []string) error {
	if len(names) == 0 {
		return nil
	}
	ctx := b.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	fresh := func(name string) []byte { return b.s.keys.wrapSecret(name, randomBytes(saltLen)) }
	values, err := b.s.secrets.Secrets(ctx, names, fresh)
	if err != nil {
		return b.fail(fmt.Errorf("store: secrets: %w", err))
	}
	if b.secrets == nil {
		b.secrets = make(map[string][]byte, len(names))
	}
	for i, name := range names {
		secret, err := b.s.keys.unwrapSecret(name, values[i])
		if err != nil {
			return b.fail(fmt.Errorf("store: secret %s does not open with the master key (do all replicas share one master key file?): %w", name, err))
		}
		b.secrets[name] = secret
	}
	return nil
}

// secret returns the secret named name: random on a sharelog on its own,
// else from Config.Secrets (fetched by Prefetch, or now).
func (b *Batch) secret(name string) ([]byte, error) {
	if b.s.secrets == nil {
		return randomBytes(saltLen), nil // saltLen == dataKeyLen
	}
	if s, ok := b.secrets[name]; ok {
		return s, nil
	}
	if err := b.fetchSecrets([]string{name}); err != nil {
		return nil, err
	}
	return b.secrets[name], nil
}

// secretLabel binds a wrapped secret to its name.
const secretLabel = "sharelog secret "

// wrapSecret encrypts a shared secret under the master key, bound to its
// name. Its nonce is random: the wrapped value is stored once, by the first
// replica, and never enters an entry.
func (k *keyring) wrapSecret(name string, secret []byte) []byte {
	return sealWith(k.master, []byte(secretLabel+name), secret)
}

// unwrapSecret reverses wrapSecret.
func (k *keyring) unwrapSecret(name string, w []byte) ([]byte, error) {
	return openWith(k.master, []byte(secretLabel+name), w)
}

func secretNameKey(subjectHash []byte) []byte {
	return append([]byte{prefixSecretName}, subjectHash...)
}

func shredKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixShred}, seq)
}

// Shred is what a forgetting destroyed that the replicas' shared secrets
// still hold: the names of the forgotten subject's salt and of the data
// keys of the entries naming it with others. Seq is the forgetting's entry.
type Shred struct {
	Seq   uint64
	Names []string
}

// PendingShreds lists the shreds forgettings left, oldest first. Only a
// replica's forgettings leave them.
func (s *Store) PendingShreds(ctx context.Context) ([]Shred, error) {
	var out []Shred
	err := s.view(ctx, func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixShred}, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			sh := Shred{Seq: binary.BigEndian.Uint64(it.Item().Key()[1:])}
			if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &sh.Names) }); err != nil {
				return err
			}
			out = append(out, sh)
		}
		return nil
	})
	return out, err
}

// ShredDone deletes the shred record of forgetting seq, once the shared
// secrets no longer hold its names. Like ScrubDone it is written beside the
// one writer, under a key kind no batch writes except the forgetting that
// creates it.
func (s *Store) ShredDone(seq uint64) error {
	s.side.RLock()
	defer s.side.RUnlock()
	err := s.db.Update(func(txn *badger.Txn) error { return txn.Delete(shredKey(seq)) })
	if errors.Is(err, badger.ErrDBClosed) {
		return ledger.Errorf(ledger.EUNAVAILABLE, "ledger is closed")
	}
	return err
}

// shredNames returns the names in Config.Secrets of what forgetting the
// subject with keyed hash h destroys: its salt, and the data keys of the
// entries in streamSeqs (those naming it with others). It deletes the
// record of the salt's name.
func (b *Batch) shredNames(h []byte, streamSeqs []uint64) ([]string, error) {
	var names []string
	name, err := b.get(secretNameKey(h))
	if err != nil {
		return nil, b.fail(err)
	}
	if name != nil {
		names = append(names, string(name))
		if err := b.del(secretNameKey(h)); err != nil {
			return nil, err
		}
	}
	for _, s := range streamSeqs {
		names = append(names, DataKeyName(s))
	}
	return names, nil
}
