package store

import (
	"context"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Batch is one Badger transaction of the ledger's one writer: the events
// appended to it, their dedupe records and indexes, and the applied stream
// sequence commit together or not at all.
type Batch struct {
	s      *Store
	txn    *badger.Txn
	hasher *subjectHasher

	applied uint64    // the store's Applied() at Begin
	last    uint64    // highest stream seq given to Append
	count   uint64    // Seq of the last entry, pending ones included
	n       int       // entries recorded in this batch
	tail    *treeTail // the tree's tail with the batch's entries; nil until the first (tree.go)

	// Disclosures from entry indexedBy on get no y keys (indexedByKey);
	// markIndexedBy when the ledger has no record of it yet and Commit
	// writes it.
	indexedBy     uint64
	markIndexedBy bool
	profiles      map[string][]byte // written in this batch, by H8 (profiles.go)
	scratch       []byte            // a profile being looked up (profiles.go)

	recipients map[string]ledger.Recipient // registered in this batch
	at         time.Time                   // RecordedAt of the event being appended
	key        []byte                      // key sealing the entry being appended; nil for a plain entry
	ref        keyRef                      // reference to key
	entryBuf   []byte                      // the value of the entry being appended (encodeEntry), reused from one to the next
	packBuf    []byte                      // room to compress it in (packEntryWith)
	clearBuf   []byte                      // its clear part (appendSplit, redact.go), reused likewise
	patchBuf   []byte                      // its personal part, reused likewise
	salts      map[string][]byte           // salts of the subjects read or made in this batch, by keyed hash
	hashes     map[ledger.Subject][]byte   // keyed hashes of the subjects looked up or made in this batch, nil for one not known (memory only)
	st         ledger.State                // the rules' view of the batch (state.go); nil until the first
	seen       []saltSlot                  // salts read from Badger or made in this batch, for the store's cache (saltcache.go)
	made       map[string][]byte           // salts made in this batch, by locator, for the next (CommitNext)
	sealersPut [][]byte                    // keyed hashes of the subjects whose keys it put in the store's cache (sealcache.go)
	err        error                       // sticky fatal error
	done       bool

	// Shared secrets (secrets.go): the stream seq being appended and the
	// index in Plan.Names of the subject being named, which name a new
	// subject's salt; the secrets Prefetch got; the context of calls to
	// Config.Secrets.
	streamSeq uint64
	nameAt    int
	secrets   map[string][]byte
	ctx       context.Context

	// Pipelined commits (CommitNext). A batch opened by its predecessor's
	// CommitNext starts from the predecessor's state: its applied stream
	// sequence, count, Merkle tail, indexedBy, recipients and profiles.
	prev          *Batch                       // the predecessor, until its commit is settled
	spec          bool                         // opened before prev's commit: its snapshot lacks prev's writes
	deferred      bool                         // it deferred a refusal (ErrRefusalDeferred) and takes no more events
	opensNotices  bool                         // an event appended opens obligations whose notices are due (OpensNotices)
	reg           map[string]ledger.Recipient  // the registry as of the batch's start; never mutated
	after         *map[string]ledger.Recipient // the registry after the batch, when it registers any (seal)
	base          *treeTail                    // the tree's tail as of the batch's start; nil: read from Badger
	prevProfiles  map[string][]byte            // the profiles prev wrote (profiles.go)
	prevMade      map[string][]byte            // the salts prev made, by locator: the cache may have lost some (crypto.go)
	lastStreamSeq uint64                       // given to Commit or CommitNext
	finished      chan struct{}                // closed once the commit is durable or failed, result then set
	result        error
	onDone        func(error)
}

// ErrSpeculationFailed (wrapped) says that a batch opened by CommitNext,
// whose snapshot lacks its predecessor's writes, read a key the
// predecessor wrote, scanned keys or would have refused an event, none of
// which its snapshot can vouch for: it (and any batch after it) recorded
// nothing. Apply its events again on a batch begun once the predecessor is
// settled (Begin after Discard).
var ErrSpeculationFailed = errors.New("store: the batch read what the batch before it changed: apply its events again")

// ErrRefusalDeferred (wrapped; it wraps ErrSpeculationFailed) says that a
// batch opened by CommitNext would refuse the event just appended, on a
// snapshot without its predecessor's writes. Nothing was written for that
// event, and the batch still holds the events before it: commit it with the
// stream sequence of the last of those (or discard it), then apply the
// event again on a batch begun once the predecessor is settled, which sees
// the whole ledger and alone may refuse. The batch takes no more events.
var ErrRefusalDeferred = fmt.Errorf("%w (a refusal waits for the commit in flight)", ErrSpeculationFailed)

// Begin starts a batch. The ledger has one writer: Begin blocks while another
// batch is open, until it is committed or discarded. Every batch must end
// with Commit, CommitNext or Discard.
func (s *Store) Begin() *Batch {
	s.writer.Lock()
	return s.begin(nil)
}

// begin opens a batch after the last commit, which is complete, or with
// prev after prev, whose commit is about to be issued. The caller holds
// writer.
func (s *Store) begin(prev *Batch) *Batch {
	b := &Batch{
		s:      s,
		txn:    s.db.NewTransaction(true),
		hasher: newSubjectHasher(s.secret),
	}
	if prev == nil {
		b.applied, b.count, b.indexedBy = s.Applied(), s.Count(), s.indexedBy.Load()
		b.reg, b.base = *s.recipients.Load(), s.tail.Load()
	} else {
		b.prev, b.spec = prev, true
		b.applied, b.count, b.indexedBy = prev.lastStreamSeq, prev.count, prev.indexedBy
		b.reg, b.base, b.prevProfiles, b.prevMade = prev.reg, prev.tail, prev.profiles, prev.made
		if prev.after != nil {
			b.reg = *prev.after
		}
		if b.base == nil {
			b.base = prev.base
		}
	}
	b.last = b.applied
	switch {
	case s.legacyY:
		b.indexedBy = math.MaxUint64
	case b.indexedBy == 0:
		b.indexedBy, b.markIndexedBy = b.count+1, true
	}
	return b
}

// Len returns the number of events recorded in the batch so far.
func (b *Batch) Len() int { return b.n }

// Count returns the Seq of the batch's last entry, counting those it
// appended: the ledger's Count once it commits.
func (b *Batch) Count() uint64 { return b.count }

// Applied returns the stream sequence the batch follows: Applied() at
// Begin, or the one its predecessor commits (CommitNext). Appended stream
// sequences must be above it.
func (b *Batch) Applied() uint64 { return b.applied }

// Append applies the event ev, read from stream sequence streamSeq, which
// must be above every stream sequence applied before. ev has passed every
// check that does not depend on the ledger.
//
// It returns Recorded when ev becomes entry Count()+1 (counting the batch's
// own entries); Duplicate when an event with the same (source, id) and the
// same content is already in the ledger or earlier in the batch, and
// Rejected with a conflict when its content differs (ledger.Replay), writing
// only the delivery's stream sequence against the entry (replay.go);
// Rejected with a *ledger.InvalidError when ev breaks a rule that depends on
// the ledger's state (ledger.Decide), writing nothing.
//
// Any other error is fatal for the batch: Commit will return it, and the
// batch must be discarded. An error wrapping ErrBatchTooBig means the same
// events fit in smaller batches. In a batch opened by CommitNext, an error
// wrapping ErrSpeculationFailed means the batch read what its predecessor
// may change, or would refuse ev: apply its events again on a batch begun
// after the predecessor's commit; such a batch never returns Rejected.
func (b *Batch) Append(streamSeq uint64, ev *ledger.Event) (ledger.Outcome, error) {
	return b.AppendAt(streamSeq, ev, b.s.now())
}

// AppendAt is Append with the time the ledger records the event at (its
// RecordedAt, from which deadlines run): the ingest loop gives the stream
// message's timestamp, so that every replica folding the stream records
// the same time. Append gives the store's clock.
func (b *Batch) AppendAt(streamSeq uint64, ev *ledger.Event, at time.Time) (ledger.Outcome, error) {
	if err := b.check(); err != nil {
		return 0, err
	}
	if err := b.settled(); err != nil {
		return 0, err
	}
	if b.deferred {
		return 0, b.fail(errors.New("store: append after a deferred refusal (ErrRefusalDeferred): the batch takes no more events"))
	}
	if streamSeq <= b.last {
		return 0, b.fail(fmt.Errorf("store: append: stream seq %d is not above %d", streamSeq, b.last))
	}
	if ev == nil || len(ev.Raw) == 0 {
		return 0, b.fail(errors.New("store: append: event without Raw"))
	}
	prev := b.last
	b.last = streamSeq

	dkey := dedupeKey(ev.ID, ev.Source)
	dup, err := b.isDuplicate(dkey, ev)
	if err != nil {
		return 0, b.fail(err)
	}
	if dup {
		return b.replayed(streamSeq, dkey, ev) // replay.go
	}

	// The rules decide; nothing is written for a refused event.
	b.at, b.streamSeq = at.UTC(), streamSeq
	plan, err := ledger.Decide(b.state(), ev, ledger.Sender{Internal: ev.Internal, Recipient: ev.From}, b.at, b.s.deadlines)
	if err != nil {
		return b.refuseUnwritten(err, prev)
	}
	// The personal values of an entry that may name someone are cut out
	// now: an event where they cannot be is refused before anything is
	// written.
	var clear, personal []byte
	if plan.Personal {
		if clear, personal, err = appendSplit(b.clearBuf[:0], b.patchBuf[:0], ev); err != nil {
			return b.refuseUnwritten(err, prev)
		}
		b.clearBuf, b.patchBuf = clear, personal // valid until the next Append: encodeEntry copies and seals them
	}

	seq := b.count + 1
	var sv [8]byte
	binary.BigEndian.PutUint64(sv[:], seq)
	if err := b.set(dkey, sv[:]); err != nil {
		return 0, err
	}
	// In the filter now, before commit: the next batch may run before
	// this one is committed (seen.go).
	if b.s.seen.add(dkey) {
		b.s.growSeen()
	}
	subjects, err := b.names(plan)
	if err != nil {
		return 0, b.fail(err)
	}
	entry, err := b.encodeEntry(seq, streamSeq, ev, subjects, plan.Sealed, plan.Disclosure != nil, clear, personal)
	if err != nil {
		return 0, err
	}
	var packed []byte
	packed, b.packBuf = packEntryWith(b.packBuf, entry) // compressed, in a copy of its own for Badger, entrydict.go
	if err := b.set(entryKey(seq), packed); err != nil {
		return 0, err
	}
	if err := b.addLeaf(seq, entry); err != nil { // Merkle tree, tree.go
		return 0, err
	}
	if err := b.carryOut(seq, plan, subjects); err != nil {
		return 0, err
	}
	b.count = seq
	b.n++
	return ledger.Recorded, nil
}

// refuse turns a rule's error into Append's result: Rejected for an
// *ledger.InvalidError, a fatal batch error otherwise; in a speculative
// batch (CommitNext), ErrSpeculationFailed for both.
func (b *Batch) refuse(err error) (ledger.Outcome, error) {
	if b.err != nil {
		return 0, b.err // the rules' view failed the batch (ErrSpeculationFailed among others)
	}
	var ie *ledger.InvalidError
	if errors.As(err, &ie) && b.spec {
		// The rules may have read a ledger without the commit in flight,
		// and a refusal is acted on before the batch commits (the ingest
		// loop republishes it): only a batch that sees the whole ledger
		// refuses.
		return 0, b.fail(fmt.Errorf("%w: a refusal (%w)", ErrSpeculationFailed, err))
	}
	if ie != nil {
		return ledger.Rejected, ie
	}
	return 0, b.fail(err)
}

// OpensNotices reports whether an event appended to the batch opens
// obligations whose notices are due at once (ledger.Plan.OpensNotices).
func (b *Batch) OpensNotices() bool { return b.opensNotices }

// refuseUnwritten is refuse for an event of which nothing was written,
// appended after stream sequence prev: a speculative batch defers the
// refusal (ErrRefusalDeferred) and keeps the events before it, instead of
// failing them all. The rules' reads for the event stay in the batch's
// transaction, so its commit is still refused if the predecessor changed
// what they read.
func (b *Batch) refuseUnwritten(err error, prev uint64) (ledger.Outcome, error) {
	var ie *ledger.InvalidError
	if b.err == nil && b.spec && errors.As(err, &ie) {
		b.last, b.deferred = prev, true
		return 0, fmt.Errorf("%w: %w", ErrRefusalDeferred, err)
	}
	return b.refuse(err)
}

// names returns the keyed hashes of the subjects the plan's entry names,
// making a subject the ledger does not know known (a new random salt), and
// fills in the hashes the plan left to the store: a new request's subject,
// a new hold's subject.
func (b *Batch) names(p *ledger.Plan) ([][]byte, error) {
	var hashes [][]byte
	for i, subj := range p.Names {
		b.nameAt = i // names the salt of a new subject (secrets.go)
		h, err := b.subjectHash(subj, true)
		if err != nil {
			return nil, err
		}
		hashes = append(hashes, h)
	}
	if len(hashes) > 0 {
		if p.Request != nil && p.Request.Record.Subject == nil {
			p.Request.Record.Subject = hashes[0]
		}
		if p.Hold != nil && p.Hold.BySubject {
			p.Hold.Record.SubjectHash = hex.EncodeToString(hashes[0])
		}
	}
	return append(hashes, p.NamedHashes...), nil
}

// carryOut writes what the plan says, besides the entry itself, for entry
// seq; hashes are the keyed hashes of the subjects the entry names.
func (b *Batch) carryOut(seq uint64, p *ledger.Plan, hashes [][]byte) error {
	b.opensNotices = b.opensNotices || p.OpensNotices()
	if p.Register != nil {
		if err := b.register(p.Register); err != nil {
			return err
		}
	}
	if p.Disclosure != nil {
		if err := b.indexDisclosure(seq, p.Disclosure, hashes); err != nil {
			return err
		}
	}
	if p.Request != nil {
		if err := b.writeRequest(seq, p.Request); err != nil {
			return err
		}
	}
	if p.Obligation != nil {
		if err := b.putObligation(p.Obligation); err != nil {
			return err
		}
	}
	if p.Hold != nil {
		rec := &p.Hold.Record
		if p.Hold.Placed {
			rec.Seq = seq
			b.s.log.Info("legal hold placed", "hold", rec.Hold, "purpose", rec.Purpose, "categories", rec.Categories, "bySubject", rec.SubjectHash != "")
		} else {
			b.s.log.Info("legal hold released", "hold", rec.Hold)
		}
		if err := b.putHold(rec); err != nil {
			return err
		}
	}
	if p.Clock != nil {
		if err := b.putRequest(p.Clock); err != nil {
			return err
		}
	}
	if p.Proceed != nil {
		if err := b.writeProceed(p.Proceed); err != nil {
			return err
		}
	}
	if p.Consultation != nil {
		if err := b.indexConsultation(seq, p.Consultation, hashes); err != nil { // consultations.go
			return err
		}
	}
	if p.Forget != nil {
		return b.forget(seq, p.Forget)
	}
	return nil
}

// isDuplicate reports whether the dedupe key is already recorded, in the
// ledger or in this batch. A key the dedupe filter has never seen is not
// looked up (seen.go). A hit is confirmed against the recorded event, so
// a collision of the truncated hashes is reported instead of dropping ev.
func (b *Batch) isDuplicate(dkey []byte, ev *ledger.Event) (bool, error) {
	if !b.s.seen.mayHave(dkey) {
		return false, nil
	}
	seq, err := getSeq(b.txn, dkey)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: dedupe lookup: %w", err)
	}
	h, err := getEntryHeader(b.txn, nil, seq)
	if err != nil {
		return false, fmt.Errorf("store: dedupe lookup: %w", err)
	}
	source, id, err := decodeIdentity(h.raw)
	if err != nil {
		return false, fmt.Errorf("store: dedupe lookup: entry %d: %w", seq, err)
	}
	if source != ev.Source || id != ev.ID {
		return false, fmt.Errorf("store: dedupe hash collision with entry %d", seq)
	}
	return true, nil
}

// register records a recipient definition, replacing any earlier one.
func (b *Batch) register(r *ledger.Recipient) error {
	v, err := json.Marshal(r)
	if err != nil {
		return b.fail(fmt.Errorf("store: encode recipient: %w", err))
	}
	if err := b.set(recipientKey(r.ID), v); err != nil {
		return err
	}
	if b.recipients == nil {
		b.recipients = make(map[string]ledger.Recipient)
	}
	b.recipients[r.ID] = *r
	return nil
}

// encodeEntry builds the value of entry seq: plain when it names no
// subject, else sealed: its personal values cut out (redact.go) and sealed
// under the subject's key or, for an entry naming several, under a new data
// key of its own, wrapped with the master key into the keystore. Either way
// the entry is indexed under each subject's keyed hash, for forgetting. It
// leaves the key and its reference in b.key and b.ref for the entry's
// notices. With sealed, an entry naming no subject is sealed too, under a
// data key of its own (ledger.Plan.Sealed). A disclosure's subjects are
// listed by its subject index keys (s K16 at seq, indexDisclosure): it gets
// no y keys, but in ledgers written before (indexedByKey).
//
// The value is built in b.entryBuf, valid until the next Append: Badger is
// given a copy (packEntryWith).
func (b *Batch) encodeEntry(seq, streamSeq uint64, ev *ledger.Event, subjects [][]byte, sealed, disclosure bool, clear, personal []byte) ([]byte, error) {
	b.key, b.ref = nil, keyRef{}
	if len(subjects) == 0 && !sealed {
		b.entryBuf = encodeEntry(b.entryBuf[:0], streamSeq, b.at, ev.Raw)
		return b.entryBuf, nil
	}
	var a cipher.AEAD
	if len(subjects) == 1 {
		b.ref = keyRef{subject: subjects[0]}
		key, aead, err := b.subjectSealer(subjects[0]) // sealcache.go
		if err != nil {
			return nil, b.fail(err)
		}
		b.key, a = key, aead
	} else {
		b.ref = keyRef{seq: seq}
		var name string
		if b.s.secrets != nil {
			name = DataKeyName(streamSeq)
		}
		key, err := b.secret(name) // secrets.go
		if err != nil {
			return nil, err
		}
		b.key = key
		if a, err = newAEAD(key); err != nil {
			return nil, b.fail(err)
		}
		if err := b.set(dataKeyKey(seq), b.s.keys.wrap(seq, b.key)); err != nil {
			return nil, err
		}
	}
	b.entryBuf = encodeSealedEntry(b.entryBuf[:0], seq, streamSeq, b.at, clear, personal, b.ref, b.key, a, b.s.secrets != nil)
	entry := b.entryBuf
	if disclosure && seq >= b.indexedBy {
		return entry, nil
	}
	for _, h := range subjects {
		if err := b.set(sealedForKey(h, seq), nil); err != nil {
			return nil, err
		}
	}
	return entry, nil
}

// keepSubjectKey remembers a subject's salt, read or made in this batch,
// so that its key is derived without reading the salt again. The salt is
// kept, not copied: a salt read or made is never changed.
func (b *Batch) keepSubjectKey(h, salt []byte) {
	if b.salts == nil {
		b.salts = make(map[string][]byte)
	}
	if _, ok := b.salts[string(h)]; !ok {
		b.salts[string(h)] = salt
	}
}

// subjectKey returns the key of the subject with keyed hash h.
func (b *Batch) subjectKey(h []byte) ([]byte, error) {
	if salt, ok := b.salts[string(h)]; ok {
		return b.s.keys.subjectKey(b.hasher.macer(), salt), nil
	}
	key, err := b.s.keys.key(b.txn, keyRef{subject: h})
	if err != nil {
		return nil, fmt.Errorf("store: subject key: %w", err)
	}
	if key == nil {
		return nil, errors.New("store: subject key: the subject is not known")
	}
	return key, nil
}

// indexDisclosure writes the subject and recipient-time indexes of a
// disclosure recorded as entry seq; hashes are its subjects' keyed hashes,
// in the order of its subjects.
func (b *Batch) indexDisclosure(seq uint64, eff *ledger.DisclosureEffect, hashes [][]byte) error {
	d := eff.Disclosure
	for i, h := range hashes {
		s := eff.Summary(i)
		ref, err := b.profileRef(&s) // profiles.go
		if err != nil {
			return err
		}
		var sum []byte
		if ref != nil {
			sum = encodeSummaryRef(make([]byte, 0, summarySize(&s)), s, ref)
		} else {
			sum = encodeSummary(make([]byte, 0, summarySize(&s)), s)
		}
		if err := b.set(appendPos(subjectPrefix(h), d.DisclosedAt, seq), sum); err != nil {
			return err
		}
	}
	if flagged := eff.Flagged(); flagged != "" {
		if err := b.flagAfterErasure(seq, eff.ID, d.Recipient, flagged); err != nil {
			return err
		}
	}
	if r := eff.Restricted(); r != "" {
		b.s.log.Warn("disclosure while restricted", "recipient", d.Recipient, "disclosure", eff.ID, "request", r)
		if err := b.set(restrictedKey(seq), []byte(r)); err != nil {
			return err
		}
	}
	return b.set(appendPos(byRecipientPrefix(d.Recipient), d.DisclosedAt, seq), nil)
}

// summarySize is room enough for the encoded summary s (encodeSummary), so
// that it is made in one allocation: its strings, with a length of at most
// two bytes each (the longest are ids of a few hundred bytes), the count of
// its categories and its flags; a longer one only costs a reallocation.
func summarySize(s *ledger.DisclosureSummary) int {
	n := 1 + 2*7 + len(s.ID) + len(s.Recipient) + len(s.Purpose) + len(s.LawfulBasis) + len(s.Regime) + len(s.ReceivedFrom)
	for _, c := range s.Categories {
		n += 2 + len(c)
	}
	return n
}

// set writes key and value in the batch's transaction. Badger keeps both
// slices until commit, so callers must not reuse them.
func (b *Batch) set(key, value []byte) error {
	return b.written(b.txn.Set(key, value))
}

// written makes the error of a write in the batch's transaction fatal for
// the batch, marking one that outgrew the transaction with ErrBatchTooBig.
func (b *Batch) written(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, badger.ErrTxnTooBig):
		return b.fail(fmt.Errorf("%w: %w", ErrBatchTooBig, err))
	default:
		return b.fail(fmt.Errorf("store: append: %w", err))
	}
}

// Commit records lastStreamSeq as the applied stream sequence and commits
// the batch durably. lastStreamSeq covers stream messages that never reached
// Append (refused earlier), so a batch with no entries still moves Applied
// forward. It must be at least every stream seq given to Append and not
// below Applied(). After a successful commit Applied and Count reflect the
// batch and WaitApplied callers wake. The batch is finished either way.
//
// A batch opened by CommitNext first waits for its predecessor's commit,
// and fails with it; an error wrapping ErrSpeculationFailed means the
// events of the failed batches must be applied again.
func (b *Batch) Commit(lastStreamSeq uint64) error {
	return b.commit(lastStreamSeq, nil)
}

// CommitThen is Commit, calling done (when not nil) as CommitNext does:
// when the batch is durable, just before Applied, Count and WaitApplied
// reflect it, or with the error that failed it. What done records (the
// ingest loop's metrics) is then seen by whoever WaitApplied wakes.
func (b *Batch) CommitThen(lastStreamSeq uint64, done func(error)) error {
	return b.commit(lastStreamSeq, done)
}

// commit is Commit, calling done as CommitNext does once it is issued.
func (b *Batch) commit(lastStreamSeq uint64, done func(error)) error {
	if err := b.check(); err != nil {
		b.Discard()
		return err
	}
	defer b.Discard()
	if err := b.settle(); err != nil {
		return err
	}
	if err := b.seal(lastStreamSeq); err != nil {
		return err
	}
	b.issue(done)
	<-b.finished
	if b.result == nil {
		b.cacheSalts()
	} else {
		b.uncacheSealers()
	}
	return b.result
}

// seal ends the batch's writes before its commit: the applied stream
// sequence and count, the indexedBy record, and the registry after it.
func (b *Batch) seal(lastStreamSeq uint64) error {
	if lastStreamSeq < b.last {
		return fmt.Errorf("store: commit: stream seq %d is below %d, already applied or appended", lastStreamSeq, b.last)
	}
	if err := b.set(metaKey, encodeMeta(lastStreamSeq, b.count)); err != nil {
		return err
	}
	if b.markIndexedBy {
		if err := b.set(indexedByKey, binary.BigEndian.AppendUint64(nil, b.indexedBy)); err != nil {
			return err
		}
	}
	if len(b.recipients) > 0 {
		m := maps.Clone(b.reg)
		maps.Copy(m, b.recipients)
		b.after = &m
	}
	b.lastStreamSeq = lastStreamSeq
	return nil
}

// Discard abandons the batch: nothing it appended is recorded. It may be
// called after Commit, which makes "defer b.Discard()" safe. A batch opened
// by CommitNext waits for its predecessor's commit first.
func (b *Batch) Discard() {
	if b.done {
		return
	}
	b.done = true
	_ = b.settle() // the batch is abandoned whatever its predecessor did
	if b.finished == nil {
		b.uncacheSealers() // never committed
	}
	b.txn.Discard()
	b.s.writer.Unlock()
}

func (b *Batch) check() error {
	if b.done {
		return errors.New("store: batch already committed or discarded")
	}
	return b.err
}

// fail makes err the batch's sticky error and returns it.
func (b *Batch) fail(err error) error {
	b.err = err
	return err
}

// getEntryHeader reads entry seq within txn; the bytes are copied. With kr,
// a sealed entry is opened if its data key still exists, and marked
// forgotten if not; without, a sealed entry's raw is its clear part, which
// is enough for its source and id.
func getEntryHeader(txn *badger.Txn, kr *keyring, seq uint64) (entryHeader, error) {
	item, err := getEntryItem(txn, seq)
	if err != nil {
		return entryHeader{}, err
	}
	v, err := entryValue(item)
	if err != nil {
		return entryHeader{}, err
	}
	h, ct, err := decodeEntryHeader(v)
	if err != nil || !h.sealed || kr == nil {
		return h, err
	}
	key, err := kr.key(txn, h.ref)
	if err != nil {
		return entryHeader{}, err
	}
	if key == nil {
		h.forgotten = true
		return h, nil
	}
	personal, err := openData(key, entryAAD(seq), ct)
	if err != nil {
		return entryHeader{}, fmt.Errorf("entry %d does not open with its key: %w", seq, err)
	}
	raw, err := joinPersonal(h.raw, personal)
	if err != nil {
		return entryHeader{}, fmt.Errorf("entry %d: personal part: %w", seq, err)
	}
	h.raw, h.opened = raw, true
	return h, nil
}
