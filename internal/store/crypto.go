package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/zstd"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Key kinds of the keystore: the secrets that make personal data readable
// and linkable. Forgetting a subject deletes its records here (forget.go).
const (
	prefixSalt       = 'a' // a L16                  -> salt(32)            per-subject salt, found by the locator
	prefixSubjectLoc = 'z' // z K16                  -> L16                 the locator of a subject's salt
	prefixDataKey    = 'k' // k seq(8)               -> wrapped data key    entry seq's own data key (entries naming several subjects), AES-256-GCM under the master key
	prefixSealedFor  = 'y' // y K16 seq(8)           -> (empty)             entries sealed under a key the subject's forgetting destroys
	prefixHold       = 'l' // l hold                 -> JSON                legal hold record (holds.go)
	prefixScrub      = 'i' // i seq(8)               -> JSON                stream messages to scrub after forgetting (forget.go)
	prefixSentinel   = '!' // !                      -> (empty)             written and dropped by Compact
)

const (
	saltLen    = 32
	dataKeyLen = 32
	nonceLen   = 12
	// MasterKeyLen is the length of the master key that wraps the data keys.
	MasterKeyLen = 32
)

// keyring holds the master key: it wraps the entries' own data keys and,
// with a subject's salt, derives the subject's key.
type keyring struct {
	secret []byte
	master cipher.AEAD
}

func newKeyring(master []byte) (*keyring, error) {
	if len(master) != MasterKeyLen {
		return nil, fmt.Errorf("store: master key must be %d bytes, not %d", MasterKeyLen, len(master))
	}
	a, err := newAEAD(master)
	if err != nil {
		return nil, err
	}
	return &keyring{secret: master, master: a}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return cipher.NewGCM(block)
}

// wrap encrypts entry seq's data key under the master key: nonce then
// ciphertext, bound to seq.
func (k *keyring) wrap(seq uint64, dk []byte) []byte {
	return sealWith(k.master, dataKeyKey(seq), dk)
}

// unwrap reverses wrap.
func (k *keyring) unwrap(seq uint64, w []byte) ([]byte, error) {
	return openWith(k.master, dataKeyKey(seq), w)
}

// subjectKey derives a subject's key from its salt: HKDF-SHA256 (RFC
// 5869) of the master key, with m's HMACs (nil: a macer of its own).
// Forgetting the subject deletes the salt, and with it the key; without the
// master key the salt alone opens nothing.
func (k *keyring) subjectKey(m *macer, salt []byte) []byte {
	if m == nil {
		m = newMacer()
	}
	var prk [sha256.Size]byte
	copy(prk[:], m.mac(salt, k.secret)) // extract
	// expand: the key is dataKeyLen bytes, no more than one hash (T(1)).
	t1 := m.mac(prk[:], subjectKeyInfo)
	return append(make([]byte, 0, dataKeyLen), t1[:dataKeyLen]...)
}

// subjectKeyInfo is HKDF's info for a subject's key, with the counter of
// the first block of output.
var subjectKeyInfo = []byte("sharelog subject key\x01")

// keyRef names the key that seals an entry's or a notice's personal part:
// the key of the one subject it names, or for an entry naming several the
// entry's own data key (k seq), which forgetting any of them deletes.
type keyRef struct {
	subject []byte // the subject's keyed hash, or nil
	seq     uint64 // the entry whose own data key it is, when subject is nil
}

// Key reference kinds, the first byte of an encoded keyRef.
const (
	refEntry   byte = 1 // seq(8)
	refSubject byte = 2 // K16
)

func (r keyRef) append(dst []byte) []byte {
	if r.subject != nil {
		return append(append(dst, refSubject), r.subject...)
	}
	return binary.BigEndian.AppendUint64(append(dst, refEntry), r.seq)
}

// readKeyRef decodes a keyRef from the front of v and returns the rest.
func readKeyRef(v []byte) (keyRef, []byte, error) {
	switch {
	case len(v) >= 1+subjectHashLen && v[0] == refSubject:
		return keyRef{subject: v[1 : 1+subjectHashLen]}, v[1+subjectHashLen:], nil
	case len(v) >= 9 && v[0] == refEntry:
		return keyRef{seq: binary.BigEndian.Uint64(v[1:9])}, v[9:], nil
	}
	return keyRef{}, nil, errCorrupt
}

// key returns the key ref names, or nil when it was destroyed: its subject
// was forgotten.
func (k *keyring) key(txn *badger.Txn, ref keyRef) ([]byte, error) {
	if ref.subject == nil {
		return k.dataKey(txn, ref.seq)
	}
	loc, err := txnValue(txn, subjectLocKey(ref.subject))
	if loc == nil || err != nil {
		return nil, err
	}
	salt, err := txnValue(txn, saltKey(loc))
	if salt == nil || err != nil {
		return nil, err
	}
	return k.subjectKey(nil, salt), nil
}

// dataKey returns entry seq's own data key, or nil when it was destroyed.
func (k *keyring) dataKey(txn *badger.Txn, seq uint64) ([]byte, error) {
	w, err := txnValue(txn, dataKeyKey(seq))
	if w == nil || err != nil {
		return nil, err
	}
	dk, err := k.unwrap(seq, w)
	if err != nil {
		return nil, fmt.Errorf("data key of entry %d does not open with the master key: %w", seq, err)
	}
	return dk, nil
}

// txnValue returns a copy of key's value within txn, or nil when it is absent.
func txnValue(txn *badger.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// sealWith encrypts plain with a: random nonce, then ciphertext with tag.
// It wraps keys under the master key; sealData seals what enters the
// ledger's records.
func sealWith(a cipher.AEAD, aad, plain []byte) []byte {
	out := make([]byte, nonceLen, nonceLen+len(plain)+a.Overhead())
	if _, err := rand.Read(out); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return a.Seal(out, out[:nonceLen], plain, aad)
}

func openWith(a cipher.AEAD, aad, sealed []byte) ([]byte, error) {
	if len(sealed) < nonceLen+a.Overhead() {
		return nil, errCorrupt
	}
	return a.Open(nil, sealed[:nonceLen], sealed[nonceLen:], aad)
}

// Sealed data longer than compressMin is compressed before it is
// encrypted: ciphertext does not compress, so Badger's own compression can
// no longer shrink it. Shorter data gains too little to pay for it.
var (
	sealEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	sealDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
	zstdMagic      = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

const compressMin = 512

// sealData encrypts plain under a key, compressing it first if it is long.
// Its nonce is random, or with synthetic a function of key, aad and plain
// (sivNonce): replicas seal their entries so, to write identical ones.
// The nonce costs an HMAC then, which a sharelog on its own does not pay.
func sealData(key, aad, plain []byte, synthetic bool) ([]byte, error) {
	a, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return appendSealed(nil, a, key, aad, plain, synthetic), nil
}

// appendSealed appends to dst what sealData(key, aad, plain, synthetic)
// returns, with a the AEAD of key (newAEAD), so that a writer sealing
// under one key again and again expands it once (sealcache.go).
func appendSealed(dst []byte, a cipher.AEAD, key, aad, plain []byte, synthetic bool) []byte {
	if len(plain) > compressMin {
		plain = sealEncoder.EncodeAll(plain, make([]byte, 0, len(plain)/2))
	}
	dst = slices.Grow(dst, nonceLen+len(plain)+a.Overhead())
	n := len(dst)
	if synthetic {
		dst = sivNonce(dst, key, aad, plain)
	} else {
		dst = dst[:n+nonceLen]
		if _, err := rand.Read(dst[n:]); err != nil {
			panic(err) // crypto/rand never fails on supported platforms
		}
	}
	return a.Seal(dst, dst[n:], plain, aad)
}

// sivNonce appends the synthetic nonce of (aad, plain) under key to dst:
// the first 12 bytes of HMAC-SHA256(key, len(aad) aad plain), the idea of
// SIV modes (RFC 5297). AES-GCM breaks if one nonce seals two different
// messages under one key; here a nonce repeats only for the same aad and
// plain (then the ciphertext repeats, revealing only that), or by a 96-bit
// collision of HMAC outputs, as unlikely as one of random nonces. An
// entry's aad is its own key in the ledger (e seq), so under one key no two
// entries share an aad: a nonce cannot come back for another entry, and
// an entry sealed again (by another replica) is the same message, sealed
// to the same bytes. Length-prefixing aad keeps (aad, plain) pairs from
// running together.
func sivNonce(dst, key, aad, plain []byte) []byte {
	m := hmac.New(sha256.New, key)
	var n [binary.MaxVarintLen64]byte
	m.Write(n[:binary.PutUvarint(n[:], uint64(len(aad)))])
	m.Write(aad)
	m.Write(plain)
	var sum [sha256.Size]byte
	return append(dst, m.Sum(sum[:0])[:nonceLen]...)
}

// openData reverses sealData. Data sealed without compression (which never
// starts with the zstd magic number: it is JSON or a personal part) is
// returned as it is.
func openData(dk, aad, sealed []byte) ([]byte, error) {
	a, err := newAEAD(dk)
	if err != nil {
		return nil, err
	}
	plain, err := openWith(a, aad, sealed)
	if err != nil || !bytes.HasPrefix(plain, zstdMagic) {
		return plain, err
	}
	return sealDecoder.DecodeAll(plain, nil)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

func dataKeyKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixDataKey}, seq)
}

func saltKey(locator []byte) []byte { return append([]byte{prefixSalt}, locator...) }

func subjectLocKey(subjectHash []byte) []byte {
	return append([]byte{prefixSubjectLoc}, subjectHash...)
}

func sealedForPrefix(subjectHash []byte) []byte {
	return append([]byte{prefixSealedFor}, subjectHash...)
}

func sealedForKey(subjectHash []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(sealedForPrefix(subjectHash), seq)
}

func holdKey(hold string) []byte { return append([]byte{prefixHold}, hold...) }

func scrubKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixScrub}, seq)
}

// lookupSubject returns the subject's keyed hash within txn and its salt,
// or nils when the ledger does not know the subject (never seen, or
// forgotten). hasher gives the locator: the site-secret HMAC of the
// identifier.
func lookupSubject(txn *badger.Txn, hasher *subjectHasher, s ledger.Subject) (h, salt []byte, err error) {
	salt, err = txnValue(txn, saltKey(hasher.hash(s)))
	if salt == nil || err != nil {
		return nil, nil, err
	}
	return hasher.salted(salt, s), salt, nil
}

// subjectHash returns the subject's keyed hash in a query: nil when the
// ledger does not know the subject.
func (s *Store) subjectHash(txn *badger.Txn, subj ledger.Subject) ([]byte, error) {
	h, _, err := lookupSubject(txn, newSubjectHasher(s.secret), subj)
	return h, err
}

// subjectHash returns the subject's keyed hash in the batch's view, and
// keeps the subject's key for sealing. With create, a subject the ledger
// does not know gets a new salt (and its locator record) in the batch: a
// random one, or on a replica the shared one named after the stream message
// and the subject's place among those it names (secrets.go); without, it
// returns nil for one.
func (b *Batch) subjectHash(subj ledger.Subject, create bool) ([]byte, error) {
	h, looked := b.hashes[subj]
	if looked && (h != nil || !create) {
		// Read or made earlier in the batch (its key is kept), or not
		// known to the ledger as of the batch's writes.
		return h, nil
	}
	var salt []byte
	if !looked {
		loc := b.hasher.hash(subj)
		if salt = b.s.salts.get(loc); salt == nil { // saltcache.go
			salt = b.prevMade[string(loc)] // made by the commit in flight, and lost by the cache
		}
		if salt == nil {
			var err error
			if salt, err = txnValue(b.txn, saltKey(loc)); err != nil {
				return nil, b.fail(fmt.Errorf("store: read salt: %w", err))
			}
			if salt != nil {
				b.saw(loc, salt)
			}
		}
	}
	if salt != nil {
		h = b.hasher.salted(salt, subj)
	} else if create {
		loc := append([]byte(nil), b.hasher.hash(subj)...)
		var name string
		if b.s.secrets != nil {
			name = SaltName(b.streamSeq, b.nameAt)
		}
		var err error
		if salt, err = b.secret(name); err != nil { // secrets.go
			return nil, err
		}
		h = b.hasher.salted(salt, subj)
		if err := b.set(saltKey(loc), salt); err != nil {
			return nil, err
		}
		if err := b.set(subjectLocKey(h), loc); err != nil {
			return nil, err
		}
		if b.s.secrets != nil {
			if err := b.set(secretNameKey(h), []byte(name)); err != nil {
				return nil, err
			}
		}
		b.saw(loc, salt)
		if b.made == nil {
			b.made = make(map[string][]byte)
		}
		b.made[string(loc)] = salt
	}
	if h != nil {
		b.keepSubjectKey(h, salt)
	}
	if b.hashes == nil {
		b.hashes = make(map[ledger.Subject][]byte)
	}
	b.hashes[subj] = h // nil: not known to the ledger; only this function makes one known
	return h, nil
}
