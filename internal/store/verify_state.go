package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
)

// This file is the second half of Verify: the state derived from the
// entries (indexes, the recipient registry, requests, obligations and their
// states, holds, dedupe records, the subjects' salts) is recomputed by
// replaying every entry through the ledger's rules (ledger.Decide, folded
// into a ledger.MemState) and compared record by record with what the
// ledger holds. The replay never learns an identifier: a sealed entry names
// its subjects by their keyed hashes (its key reference, or for an entry
// naming several people the y index and the subject index), and the rules
// only compare them.

// StateError reports derived records that do not match the entries.
// Differences lists the first MaxDifferences of them, in key order within
// each kind of record; Total counts them all.
type StateError struct {
	Differences []string
	Total       int
}

// MaxDifferences bounds StateError.Differences.
const MaxDifferences = 50

func (e *StateError) Error() string {
	more := ""
	if e.Total > len(e.Differences) {
		more = fmt.Sprintf(" (first %d shown)", len(e.Differences))
	}
	return fmt.Sprintf("%d derived records do not match the entries%s:\n  %s", e.Total, more, strings.Join(e.Differences, "\n  "))
}

// exists marks an expected record whose value is not recomputable (sealed
// notices, locators, wrapped keys): only its presence is compared.
const exists = "\x00exists"

// replay folds the entries into a MemState and keeps, besides, the records
// the store writes per entry.
type replay struct {
	txn       *badger.Txn
	deadlines ledger.Deadlines
	mem       *ledger.MemState

	// Per-entry records, by kind: key -> value.
	perEntry map[byte]map[string]string
	// Records that go when their subject is forgotten, by subject hash.
	bySubject map[string]map[string]string
	// Entries sealed under their own data key: seq -> the subjects named.
	multi map[uint64][]string
	// yIndex is the y index and the subject index read back by entry, for
	// entries naming several subjects (loaded on first need).
	yIndex map[uint64][][]byte
	// indexedBy is the ledger's indexedByKey record (MaxUint64 when it
	// has none): disclosures from that entry on have no y keys but for
	// the subjects forgotten since, if they name several people (noY).
	indexedBy uint64
	noY       map[uint64]bool
	profiles  *profiles // expands the summaries compared (profiles.go)
	// byTime holds the keys of the index by time that ledgers written
	// before kept for each disclosure, when the ledger has any: nothing
	// reads them, but each must still name a disclosure.
	byTime map[string]struct{}

	phantoms map[string]bool // subjects no entry can identify any more
	sizeHint int             // entries the ledger claims: the size of the per-entry maps
	diffs    []string

	compared, salts, locators int // counted by compare
	total                     int
	unchecked                 int // entries naming several people one of whom was forgotten
}

func newReplay(txn *badger.Txn, deadlines ledger.Deadlines, entries int64) *replay {
	r := &replay{
		txn: txn, deadlines: deadlines, mem: ledger.NewMemState(), sizeHint: int(min(entries, 1<<24)),
		perEntry: map[byte]map[string]string{}, bySubject: map[string]map[string]string{},
		multi: map[uint64][]string{}, phantoms: map[string]bool{},
		indexedBy: math.MaxUint64, noY: map[uint64]bool{}, profiles: newProfiles(txn, nil),
	}
	if item, err := txn.Get(indexedByKey); err == nil {
		// A record that cannot be read is reported by compareItem; the
		// replay then expects the y keys of ledgers written before it.
		_ = item.Value(func(v []byte) error {
			n, err := decodeIndexedBy(v)
			if err == nil {
				r.indexedBy = n
			}
			return err
		})
	}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: byTimePrefix})
	if it.Rewind(); it.Valid() {
		r.byTime = map[string]struct{}{}
	}
	it.Close()
	// Subjects are known to the replay by a token holding their keyed hash.
	r.mem.Hash = func(s ledger.Subject) []byte { return []byte(strings.TrimPrefix(s.ID, "\x00")) }
	return r
}

func (r *replay) differ(format string, args ...any) {
	r.total++
	if len(r.diffs) < MaxDifferences {
		r.diffs = append(r.diffs, fmt.Sprintf(format, args...))
	}
}

func (r *replay) expect(kind byte, key []byte, value string) {
	m := r.perEntry[kind]
	if m == nil {
		m = make(map[string]string, r.sizeHint)
		r.perEntry[kind] = m
	}
	m[string(key)] = value
}

func (r *replay) expectFor(subject []byte, key []byte, value string) {
	m := r.bySubject[string(subject)]
	if m == nil {
		m = map[string]string{}
		r.bySubject[string(subject)] = m
	}
	m[string(key)] = value
}

// entry replays entry seq, whose stored value is value.
func (r *replay) entry(seq uint64, value []byte) error {
	h, _, err := decodeEntryHeader(value)
	if err != nil {
		r.differ("entry %d cannot be read: %v", seq, err)
		return nil
	}
	ev, err := decodeEvent(h.raw)
	if err != nil {
		r.differ("entry %d cannot be read: %v", seq, err)
		return nil
	}
	dk := dedupeKey(ev.ID, ev.Source)
	r.expect(prefixDedupe, dk, string(binary.BigEndian.AppendUint64(nil, seq)))

	// The subjects the entry names, by keyed hash.
	var names [][]byte
	if h.sealed {
		if h.ref.subject != nil {
			names = [][]byte{bytes.Clone(h.ref.subject)}
		} else if names, err = r.namesOf(h.ref.seq); err != nil {
			return err
		}
	}
	// A disclosure from indexedBy on is listed under its subjects by its
	// subject index keys alone (indexedByKey).
	_, disclosure := ev.Data.(*ledger.Disclosure)
	noY := disclosure && seq >= r.indexedBy
	for _, n := range names {
		if !noY {
			r.expect(prefixSealedFor, sealedForKey(n, seq), "")
		}
	}
	// An entry naming several people lists each once in the y index, so
	// it may list fewer than it names: the same person named twice, while
	// its data key stands, or (in ledgers written before forgetting kept
	// the y keys) a person since forgotten.
	dupes := h.sealed && h.ref.subject == nil && len(names) > 0 && r.has(dataKeyKey(seq))
	phantoms := identify(&ev, names, seq, dupes)
	if phantoms != nil {
		r.unchecked++
		for _, p := range phantoms {
			r.phantoms[p] = true
		}
	}
	if h.sealed && h.ref.subject == nil {
		for _, n := range names {
			r.multi[seq] = append(r.multi[seq], string(n))
		}
		if noY {
			r.noY[seq] = true
		}
		if phantoms == nil {
			r.expect(prefixDataKey, dataKeyKey(seq), exists)
		}
	}

	// What the transport vouched for is not recorded: that the entry
	// exists says the sender was allowed.
	switch d := ev.Data.(type) {
	case *ledger.NoticeDelivery, *ledger.SubjectForgotten, *ledger.Consultation:
		ev.Internal = true
		if f, ok := d.(*ledger.SubjectForgotten); ok {
			if hb, err := hex.DecodeString(f.SubjectHash); err == nil {
				if known, _ := r.mem.Known(hb); !known && r.phantom() {
					// The subject was named only by entries that can no
					// longer say who it was.
					r.mem.Adopt(hb)
				}
			}
		}
	case *ledger.NoticeAck:
		if o, _ := r.mem.Obligation(d.Notice); o != nil {
			ev.From = o.Recipient
		}
	}
	outcome, plan, err := r.mem.Append(&ev, h.recordedAt, r.deadlines)
	if outcome != ledger.Recorded {
		r.differ("entry %d (%s %s/%s): the rules give %v now (%v); it is in the ledger", seq, ev.Type, ev.Source, ev.ID, outcome, err)
		return nil
	}
	if d := plan.Disclosure; d != nil {
		for i, subj := range d.Disclosure.Subjects {
			hs := []byte(strings.TrimPrefix(subj.ID, "\x00"))
			if r.phantoms[string(hs)] {
				continue
			}
			sum := encodeSummary(nil, d.Summary(i))
			r.expectFor(hs, appendPos(subjectPrefix(hs), d.Disclosure.DisclosedAt, seq), string(sum))
		}
		r.expect(prefixByRecip, appendPos(byRecipientPrefix(d.Disclosure.Recipient), d.Disclosure.DisclosedAt, seq), "")
		if r.byTime != nil {
			r.byTime[string(byTimeKey(d.Disclosure.DisclosedAt, seq))] = struct{}{}
		}
		if f := d.Flagged(); f != "" {
			r.expect(prefixAfterErasure, afterErasureKey(seq), f)
		}
		if f := d.Restricted(); f != "" {
			r.expect(prefixRestricted, restrictedKey(seq), f)
		}
	}
	if c := plan.Consultation; c != nil {
		r.consultation(seq, c, plan.Names) // consultations.go
	}
	if f := plan.Forget; f != nil {
		delete(r.bySubject, string(f.SubjectHash))
		for s, subjects := range r.multi {
			if slices.Contains(subjects, string(f.SubjectHash)) {
				delete(r.perEntry[prefixDataKey], string(dataKeyKey(s)))
				if r.noY[s] {
					// Forgetting wrote the y key the subject index key
					// stood for.
					r.expect(prefixSealedFor, sealedForKey(f.SubjectHash, s), "")
				}
			}
		}
	}
	return nil
}

func (r *replay) phantom() bool { return len(r.phantoms) > 0 }

// namesOf returns the subjects an entry sealed under its own data key
// names, from the y index and, for a disclosure from indexedBy on, the
// subject index.
func (r *replay) namesOf(seq uint64) ([][]byte, error) {
	if r.yIndex == nil {
		r.yIndex = map[uint64][][]byte{}
		for _, kind := range []struct {
			prefix byte
			size   int
		}{{prefixSealedFor, 1 + subjectHashLen + 8}, {prefixSubject, 1 + subjectHashLen + posLen}} {
			it := r.txn.NewIterator(badger.IteratorOptions{Prefix: []byte{kind.prefix}})
			for it.Rewind(); it.Valid(); it.Next() {
				k := it.Item().Key()
				if len(k) != kind.size {
					continue // reported by the comparison
				}
				s := binary.BigEndian.Uint64(k[len(k)-8:])
				if kind.prefix == prefixSubject && s < r.indexedBy {
					continue // listed by its y keys
				}
				n := k[1 : 1+subjectHashLen]
				if !slices.ContainsFunc(r.yIndex[s], func(m []byte) bool { return bytes.Equal(m, n) }) {
					r.yIndex[s] = append(r.yIndex[s], bytes.Clone(n))
				}
			}
			it.Close()
		}
	}
	return r.yIndex[seq], nil
}

// take finds the expected value of key k, among the records kept per
// subject, per entry or in exp, and forgets it.
func (r *replay) take(exp map[string]string, k []byte) (string, bool) {
	m := exp
	switch {
	case k[0] == prefixSubject && len(k) > 1+subjectHashLen:
		m = r.bySubject[string(k[1:1+subjectHashLen])]
	case r.perEntry[k[0]] != nil:
		m = r.perEntry[k[0]]
	}
	v, ok := m[string(k)]
	if ok {
		delete(m, string(k))
	}
	return v, ok
}

// has reports whether the ledger holds key.
func (r *replay) has(key []byte) bool {
	_, err := r.txn.Get(key)
	return err == nil
}

// identify puts the subjects' keyed hashes, as tokens, where the entry's
// clear part has blanked identifiers, and returns the tokens of subjects
// the entry names that no hash is left for. With dupes, the entry names
// some person twice: a subject past the hashes is one of them again (which
// one does not matter: the records are per hash).
func identify(ev *ledger.Event, names [][]byte, seq uint64, dupes bool) (phantoms []string) {
	token := func(i int) string {
		if i < len(names) {
			return "\x00" + string(names[i])
		}
		if dupes {
			return "\x00" + string(names[0])
		}
		p := fmt.Sprintf("?%d/%d", seq, i)
		phantoms = append(phantoms, p)
		return "\x00" + p
	}
	switch d := ev.Data.(type) {
	case *ledger.Disclosure:
		for i := range d.Subjects {
			d.Subjects[i].ID = token(i)
		}
	case ledger.Request:
		d.Head().Subject.ID = token(0)
	case *ledger.Hold:
		if d.Scope != nil && d.Scope.Subject != nil {
			d.Scope.Subject.ID = token(0)
		}
	case *ledger.Consultation:
		if d.Subject != nil {
			d.Subject.ID = token(0)
		}
	}
	return phantoms
}

// expected returns the records the replay says the ledger must hold, by
// key, with their value (or exists), besides those it kept per entry and
// per subject as it went (perEntry, bySubject).
func (r *replay) expected() (map[string]string, error) {
	exp := map[string]string{}
	js := func(key []byte, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		exp[string(key)] = string(b)
		return nil
	}
	for _, rc := range r.mem.Recipients() {
		if err := js(recipientKey(rc.ID), &rc); err != nil {
			return nil, err
		}
	}
	known := func(h []byte) bool { k, _ := r.mem.Known(h); return k }
	for _, q := range r.mem.Requests() {
		if err := js(requestKey(q.Request), &q); err != nil {
			return nil, err
		}
		if known(q.Subject) {
			exp[string(subjectRequestKey(q.Subject, q.Request))] = ""
			for _, n := range q.Notices {
				exp[string(noticeKey(n))] = exists
			}
		}
	}
	for _, o := range r.mem.Obligations() {
		if err := js(obligationKey(o.Notice), &o); err != nil {
			return nil, err
		}
		exp[string(byDueKey(o.Due, o.Notice))] = ""
		exp[string(recipientDueKey(o.Recipient, o.Due, o.Notice))] = ""
		if o.Open() {
			exp[string(openKey(o.OpenedAt, o.Notice))] = string(binary.BigEndian.AppendUint64(nil, encodeTime(o.Due)))
		}
		if q, _ := r.mem.Request(o.Request); q != nil && known(q.Subject) {
			exp[string(subjectObligationKey(q.Subject, o.Notice))] = o.Recipient
		}
	}
	for _, hr := range r.mem.Holds() {
		if err := js(holdKey(hr.Hold), &hr); err != nil {
			return nil, err
		}
	}
	for h := range r.bySubject {
		if r.phantoms[h] || !known([]byte(h)) {
			continue
		}
		exp[string(subjectLocKey([]byte(h)))] = exists
		if markers, _ := r.mem.Erasures([]byte(h)); len(markers) > 0 {
			var v []byte
			for _, m := range markers {
				v = encodeErasureMarker(v, &m)
			}
			exp[string(erasureKey([]byte(h)))] = string(v)
		}
	}
	return exp, nil
}

// compare reads every derived record of the ledger and compares it with
// the replay's; it returns the number of records compared.
func (r *replay) compare(count uint64) (int, error) {
	exp, err := r.expected()
	if err != nil {
		return 0, err
	}
	it := r.txn.NewIterator(badger.IteratorOptions{}) // values read only where compared
	defer it.Close()
	for it.Rewind(); it.Valid(); {
		switch k := it.Item().Key(); k[0] {
		case prefixEntry, prefixEntryV0, prefixTreeHash, prefixTile, prefixCheckpoint, prefixScrub, prefixSentinel,
			prefixDelivery, prefixRefused, prefixSecretName, prefixShred:
			// Verified as the tree; scrub and shred records are transient;
			// the names of shared secrets are a replica's (secrets.go);
			// deliveries and refusals are not derived from the entries
			// (replay.go): skip the whole kind.
			it.Seek([]byte{k[0] + 1})
			continue
		}
		r.compareItem(it.Item(), exp, count)
		it.Next()
	}
	return r.finish(exp), nil
}

// compareItem compares one record of the ledger with the replay's.
func (r *replay) compareItem(item *badger.Item, exp map[string]string, count uint64) {
	k := item.Key()
	switch k[0] {
	case prefixMeta:
		v, err := item.ValueCopy(nil)
		if _, n, derr := decodeMeta(v); err != nil || derr != nil || n != count {
			r.differ("the meta record counts %d entries; the ledger holds %d", n, count)
		}
		return
	case prefixFormat:
		// Checked when the ledger was opened: a sharelog's, not derived
		// from the entries.
		return
	case prefixIndexedBy:
		v, err := item.ValueCopy(nil)
		if n, derr := decodeIndexedBy(v); err != nil || derr != nil || n == 0 || n > count+1 {
			r.differ("the record of the first disclosure without y keys names entry %d; the ledger holds %d", n, count)
		}
		return
	case prefixSalt:
		r.salts++
		return
	case prefixProfile:
		// Named by the summaries, compared expanded; one that no summary
		// names is harmless, but each must be what its key says.
		r.compared++
		v, err := item.ValueCopy(nil)
		if err != nil || !bytes.Equal(k[1:], profileHash(v)) {
			r.differ("profile %x of disclosure summaries: its value does not hash to its key", k[1:])
		}
		return
	case prefixSubjectLoc:
		r.locators++
	case prefixByTime:
		// Written by ledgers before, for each disclosure, and no longer:
		// one that is missing changes no answer.
		r.compared++
		if _, ok := r.byTime[string(k)]; !ok {
			r.differ("%s: not derived from any entry", r.describe(k))
		}
		return
	}
	r.compared++
	want, ok := r.take(exp, k)
	if !ok {
		r.differ("%s: not derived from any entry", r.describe(k))
		return
	}
	if want == exists {
		return
	}
	v, err := item.ValueCopy(nil)
	if err != nil {
		r.differ("%s: cannot be read: %v", r.describe(k), err)
		return
	}
	if k[0] == prefixSubject {
		if v, err = r.profiles.expand(v); err != nil {
			r.differ("%s: cannot be read: %v", r.describe(k), err)
			return
		}
	}
	v, want = maskPersonal(k[0], v), string(maskPersonal(k[0], []byte(want)))
	if string(v) != want {
		r.differ("%s", r.describeValue(k, v, []byte(want)))
	}
}

// finish reports the records the replay expected and the ledger lacks, and
// returns the number of records compared.
func (r *replay) finish(exp map[string]string) int {
	for _, m := range r.perEntry {
		maps.Copy(exp, m)
	}
	for _, m := range r.bySubject {
		maps.Copy(exp, m)
	}
	missing := slices.Sorted(maps.Keys(exp)) // what take left
	for _, k := range missing {
		r.differ("%s: missing%s", r.describeWith([]byte(k), []byte(exp[k])), consequence[k[0]])
	}
	if r.salts != r.locators {
		r.differ("%d subject salts for %d subject locators: each known subject has one of each", r.salts, r.locators)
	}
	return r.compared
}

// consequence says what a missing record of a kind does to the answers.
var consequence = map[byte]string{
	prefixDedupe:       " (the event would be recorded again)",
	prefixSubject:      " (the disclosure vanishes from who and from the recipients a request reaches)",
	prefixByRecip:      " (the disclosure vanishes from the recipient's listing)",
	prefixOpen:         " (the notice is never sent again)",
	prefixObligation:   " (a recipient to tell is lost)",
	prefixSubjectLoc:   " (the subject can no longer be found)",
	prefixAfterErasure: " (the disclosure is no longer flagged)",
	prefixRestricted:   " (the disclosure is no longer flagged)",
	prefixConsultation: " (the consultation vanishes from the log's listings)",
}

// maskPersonal blanks the values a record keeps from its entry's personal
// part (a hold's reason and placer, an exemption's justification): the
// replay reads only the entries' clear parts, so it cannot recompute them,
// and they are not compared.
func maskPersonal(kind byte, v []byte) []byte {
	switch kind {
	case prefixHold:
		var h ledger.HoldRecord
		if json.Unmarshal(v, &h) != nil {
			return v
		}
		h.Reason, h.PlacedBy = "", ""
		if b, err := json.Marshal(&h); err == nil {
			return b
		}
	case prefixObligation:
		var o ledger.Obligation
		if json.Unmarshal(v, &o) != nil || o.Exemption == nil {
			return v
		}
		o.Exemption.Justification = ""
		if b, err := json.Marshal(&o); err == nil {
			return b
		}
	}
	return v
}

// describe names a record for a person reading the report. It never shows
// an identifier: the ledger holds none in clear.
func (r *replay) describe(k []byte) string { return r.describeWith(k, nil) }

// event names entry seq by its source and id (never personal: identifiers
// in them are refused), read back from the ledger for a message.
func (r *replay) event(seq uint64) (source, id string, ok bool) {
	h, err := getEntryHeader(r.txn, nil, seq)
	if err != nil {
		return "", "", false
	}
	source, id, err = decodeIdentity(h.raw)
	return source, id, err == nil
}

// describeWith is describe with the record's value v, expected or stored,
// when it says more (a dedupe record's entry).
func (r *replay) describeWith(k, v []byte) string {
	seqAt := func(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }
	disclosure := func(seq uint64) string {
		if _, id, ok := r.event(seq); ok {
			return fmt.Sprintf("disclosure %s (entry %d)", id, seq)
		}
		return fmt.Sprintf("disclosure at entry %d", seq)
	}
	switch k[0] {
	case prefixDedupe:
		if len(v) == 8 {
			seq := binary.BigEndian.Uint64(v)
			if source, id, ok := r.event(seq); ok {
				return fmt.Sprintf("dedupe record of event %s/%s (entry %d)", source, id, seq)
			}
		}
		return fmt.Sprintf("dedupe record %x", k[1:])
	case prefixSubject:
		if len(k) == 1+subjectHashLen+posLen {
			return fmt.Sprintf("%s in the subject index of %x", disclosure(seqAt(k)), k[1:1+subjectHashLen])
		}
	case prefixByRecip:
		if i := bytes.IndexByte(k, 0); i > 0 && len(k) == i+1+posLen {
			return fmt.Sprintf("%s in the index of recipient %s", disclosure(seqAt(k)), k[1:i])
		}
	case prefixByTime:
		if len(k) == 1+posLen {
			return fmt.Sprintf("%s in the index by time", disclosure(seqAt(k)))
		}
	case prefixAfterErasure:
		if len(k) == 9 {
			return fmt.Sprintf("after-erasure flag of %s", disclosure(seqAt(k)))
		}
	case prefixRestricted:
		if len(k) == 9 {
			return fmt.Sprintf("while-restricted flag of %s", disclosure(seqAt(k)))
		}
	case prefixRecipient:
		return fmt.Sprintf("recipient %s", k[1:])
	case prefixRequest:
		return fmt.Sprintf("request %s", k[1:])
	case prefixObligation:
		return fmt.Sprintf("obligation %s", k[1:])
	case prefixNotice:
		return fmt.Sprintf("notice %s", k[1:])
	case prefixHold:
		return fmt.Sprintf("hold %s", k[1:])
	case prefixByDue:
		return fmt.Sprintf("notice %s in the index by due date", k[9:])
	case prefixRecipientDue:
		if i := bytes.IndexByte(k, 0); i > 0 && len(k) > i+9 {
			return fmt.Sprintf("notice %s in the index of recipient %s by due date", k[i+9:], k[1:i])
		}
	case prefixOpen:
		return fmt.Sprintf("notice %s in the index of open obligations", k[9:])
	case prefixSubjectOblig, prefixSubjectReq:
		if len(k) > 1+subjectHashLen {
			what := "obligation"
			if k[0] == prefixSubjectReq {
				what = "request"
			}
			return fmt.Sprintf("%s %s in the index of subject %x", what, k[1+subjectHashLen:], k[1:1+subjectHashLen])
		}
	case prefixErasure:
		return fmt.Sprintf("erasure markers of subject %x", k[1:])
	case prefixSealedFor:
		if len(k) == 1+subjectHashLen+8 {
			return fmt.Sprintf("entry %d sealed for subject %x", seqAt(k), k[1:1+subjectHashLen])
		}
	case prefixSubjectLoc:
		return fmt.Sprintf("locator of subject %x (the subject is known)", k[1:])
	case prefixDataKey:
		if len(k) == 9 {
			return fmt.Sprintf("data key of entry %d", seqAt(k))
		}
	case prefixConsultation:
		return describeConsultation(k) // consultations.go
	}
	return fmt.Sprintf("record %q", k)
}

// describeValue says how a record differs from what the entries give.
func (r *replay) describeValue(k, got, want []byte) string {
	name := r.describeWith(k, want)
	switch k[0] {
	case prefixRecipient, prefixRequest, prefixObligation, prefixHold:
		if fields := jsonDiff(got, want); len(fields) > 0 {
			return fmt.Sprintf("%s: %s", name, strings.Join(fields, "; "))
		}
	case prefixSubject:
		g, gerr := decodeSummary(got)
		w, werr := decodeSummary(want)
		if gerr == nil && werr == nil {
			return fmt.Sprintf("%s: holds recipient %s, categories %v, after erasure %v, while restricted %v, inquiry %v; the entry says %s, %v, %v, %v, %v",
				name, g.recipient, g.categories, g.afterErasure, g.restricted, g.inquiry, w.recipient, w.categories, w.afterErasure, w.restricted, w.inquiry)
		}
	}
	return name + ": value differs from what the entries give"
}

// shown are the fields whose values a difference shows: none names a person.
var shown = map[string]bool{
	"state": true, "outcome": true, "due": true, "openedAt": true, "attempts": true, "recipient": true,
	"channel": true, "type": true, "url": true, "regime": true, "role": true, "liftedBy": true,
	"releasedAt": true, "acknowledgedAt": true, "deliveredAt": true, "exemptedAt": true, "seq": true,
	"notices": true, "categories": true, "disclosures": true, "action": true, "slaDays": true, "purpose": true,
}

// jsonDiff lists the top-level fields that differ between two JSON
// objects, as "field stored X, entries say Y" where the field names no one.
func jsonDiff(got, want []byte) []string {
	var g, w map[string]json.RawMessage
	if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil {
		return nil
	}
	keys := map[string]bool{}
	for k := range g {
		keys[k] = true
	}
	for k := range w {
		keys[k] = true
	}
	var out []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		gv, wv := g[k], w[k]
		if bytes.Equal(gv, wv) {
			continue
		}
		if k == "channel" || !shown[k] {
			if sub := jsonDiff(gv, wv); len(sub) > 0 && k == "channel" {
				for _, s := range sub {
					out = append(out, "channel."+s)
				}
				continue
			}
			if !shown[k] {
				out = append(out, k+" differs")
				continue
			}
		}
		out = append(out, fmt.Sprintf("%s %s, entries say %s", k, orNone(gv), orNone(wv)))
	}
	sort.Strings(out)
	return out
}

func orNone(v json.RawMessage) string {
	if len(v) == 0 {
		return "(none)"
	}
	return string(v)
}
