package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// This file interns the part of a disclosure summary that many disclosures
// share: its purpose, lawful basis, regime and categories, the profile. A
// workload has few of them (a 300k-event bench ledger: 4 for 320,000
// summaries, 83 of a summary's 117 bytes). Each is written once, under
// P H8(profile), and a summary names it by H8 (flag summaryProfile) instead
// of holding it. Every key costs in the write-ahead log, the memtable, the
// flushes and every compaction in proportion to its bytes: the subject
// index was the largest kind of the LSM tree.
//
//	P H8(profile) -> profile   purpose lawful-basis regime (uvarint-length strings) count(uvarint) categories
//
// H8 is the first 8 bytes of SHA-256(profile). Profiles are never deleted
// nor changed (they name no one), so a summary can be expanded against any
// later state; a profile whose H8 is taken by another (a collision) is not
// interned: that summary keeps it inline, as summaries written before did.

const (
	prefixProfile  = 'P'
	profileHashLen = 8
	// maxCachedProfiles bounds the writer's memory of the profiles written:
	// past it, one more is looked up in Badger.
	maxCachedProfiles = 1 << 16
)

func profileKey(h []byte) []byte { return append([]byte{prefixProfile}, h...) }

// appendProfile appends the profile of d, as encodeSummary writes it.
func appendProfile(dst []byte, d *ledger.DisclosureSummary) []byte {
	dst = appendString(dst, d.Purpose)
	dst = appendString(dst, d.LawfulBasis)
	dst = appendString(dst, d.Regime)
	dst = binary.AppendUvarint(dst, uint64(len(d.Categories)))
	for _, c := range d.Categories {
		dst = appendString(dst, c)
	}
	return dst
}

func profileHash(profile []byte) []byte {
	sum := sha256.Sum256(profile)
	return sum[:profileHashLen]
}

// profileCache remembers the profiles the ledger holds, committed: those
// the writer committed or found in Badger, by H8 and, for the writer, the
// H8 naming each (so that a known profile is not hashed again).
type profileCache struct {
	mu     sync.RWMutex
	byHash map[string][]byte
	named  map[string][]byte // string(profile) -> H8
}

func (c *profileCache) get(h []byte) ([]byte, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.byHash[string(h)]
	return v, ok
}

// ref returns the H8 naming profile, when the ledger holds it under it.
func (c *profileCache) ref(profile []byte) ([]byte, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	h, ok := c.named[string(profile)]
	return h, ok
}

func (c *profileCache) put(h, profile []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byHash) >= maxCachedProfiles {
		return
	}
	if c.byHash == nil {
		c.byHash, c.named = make(map[string][]byte), make(map[string][]byte)
	}
	c.byHash[string(h)] = profile
	if bytes.Equal(profileHash(profile), h) {
		c.named[string(profile)] = h
	}
}

// profileRef returns the H8 that names the profile of d in its summary,
// writing the profile if the ledger does not hold it yet; nil when another
// profile has that H8.
func (b *Batch) profileRef(d *ledger.DisclosureSummary) ([]byte, error) {
	b.scratch = appendProfile(b.scratch[:0], d)
	if h, ok := b.s.profiles.ref(b.scratch); ok {
		return h, nil
	}
	profile := bytes.Clone(b.scratch)
	h := profileHash(profile)
	have, ok := b.profiles[string(h)]
	if !ok {
		have, ok = b.prevProfiles[string(h)] // written by the commit in flight (CommitNext)
	}
	if !ok {
		have, ok = b.s.profiles.get(h)
	}
	if !ok {
		item, err := b.txn.Get(profileKey(h))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			if err := b.set(profileKey(h), profile); err != nil {
				return nil, err
			}
			if b.profiles == nil {
				b.profiles = make(map[string][]byte)
			}
			b.profiles[string(h)] = profile
			return h, nil
		case err != nil:
			return nil, b.fail(fmt.Errorf("store: profile: %w", err))
		}
		// Committed: this batch's own are in b.profiles.
		if have, err = item.ValueCopy(nil); err != nil {
			return nil, b.fail(fmt.Errorf("store: profile: %w", err))
		}
		b.s.profiles.put(h, have)
	}
	if !bytes.Equal(have, profile) {
		return nil, nil
	}
	return h, nil
}

// profiles expands summaries that name their profile, reading the profiles
// through txn (a batch's sees its own).
type profiles struct {
	txn   *badger.Txn
	cache *profileCache // committed profiles; nil for none
	seen  map[string][]byte
}

func newProfiles(txn *badger.Txn, cache *profileCache) *profiles {
	return &profiles{txn: txn, cache: cache}
}

// expand returns summary v with its profile inline (encodeSummary's form):
// v itself when it holds it.
func (p *profiles) expand(v []byte) ([]byte, error) {
	if len(v) < 1 || v[0]&summaryProfile == 0 {
		return v, nil
	}
	r := reader{b: v[1:]}
	recipient := r.bytes()
	if r.err != nil || len(r.b) < profileHashLen {
		return nil, errCorrupt
	}
	h, rest := r.b[:profileHashLen], r.b[profileHashLen:]
	profile, err := p.profile(h)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(v)+len(profile))
	out = append(out, v[0]&^summaryProfile)
	out = binary.AppendUvarint(out, uint64(len(recipient)))
	out = append(out, recipient...)
	out = append(out, profile...)
	return append(out, rest...), nil
}

func (p *profiles) profile(h []byte) ([]byte, error) {
	if v, ok := p.seen[string(h)]; ok {
		return v, nil
	}
	if p.cache != nil {
		if v, ok := p.cache.get(h); ok {
			return v, nil
		}
	}
	item, err := p.txn.Get(profileKey(h))
	if err != nil {
		return nil, fmt.Errorf("store: profile %x of a summary: %w", h, err)
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(profileHash(v), h) {
		return nil, fmt.Errorf("store: profile %x: %w", h, errCorrupt)
	}
	if p.seen == nil {
		p.seen = make(map[string][]byte)
	}
	p.seen[string(h)] = v
	return v, nil
}
