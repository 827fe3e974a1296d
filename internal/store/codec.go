package store

import (
	"crypto/cipher"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Entry value formats: the first byte of every entry value.
const (
	// entryPlain: header, then Raw in plain text. Entries that name no
	// data subject (recipients, deliveries, forgettings) are kept so.
	entryPlain byte = 1
	// entrySealed: header, the clear part (Raw with its personal values
	// cut out, redact.go), the keyRef of the key that seals the personal
	// part, then the personal part sealed (AES-256-GCM).
	entrySealed byte = 3
	// entryS2Dict1 is not an entry value's format but that of the value
	// Badger keeps for it: the entry value (plain or sealed) compressed
	// against dictionary 1 (packEntry, entrydict.go). Values written before
	// it are entry values as they are, and start with 1 or 3.
	entryS2Dict1 byte = 4
)

var errCorrupt = errors.New("corrupt value")

// encodeEntry builds a plain entry value: format byte, uvarint stream seq,
// varint recorded-at in Unix nanoseconds, then Raw.
func encodeEntry(dst []byte, streamSeq uint64, recordedAt time.Time, raw []byte) []byte {
	dst = append(dst, entryPlain)
	dst = binary.AppendUvarint(dst, streamSeq)
	dst = binary.AppendVarint(dst, recordedAt.UnixNano())
	return append(dst, raw...)
}

// encodeSealedEntry appends to dst the sealed entry value of entry seq:
// format byte, uvarint stream seq, varint recorded-at, uvarint length and
// clear part, the key reference, then nonce(12) and the AES-256-GCM
// ciphertext of the personal part under key (a is its AEAD), bound to the
// entry's place (entryAAD). With synthetic the nonce is derived from the rest (sealData),
// as replicas need.
func encodeSealedEntry(dst []byte, seq, streamSeq uint64, recordedAt time.Time, clear, personal []byte, ref keyRef, key []byte, a cipher.AEAD, synthetic bool) []byte {
	dst = slices.Grow(dst, 3*binary.MaxVarintLen64+len(clear)+1+subjectHashLen+nonceLen+len(personal)+a.Overhead())
	dst = append(dst, entrySealed)
	dst = binary.AppendUvarint(dst, streamSeq)
	dst = binary.AppendVarint(dst, recordedAt.UnixNano())
	dst = binary.AppendUvarint(dst, uint64(len(clear))) // as appendString
	dst = append(dst, clear...)
	dst = ref.append(dst)
	return appendSealed(dst, a, key, entryAAD(seq), personal, synthetic)
}

// entryHeader is an entry value without its event decoded.
type entryHeader struct {
	streamSeq  uint64
	recordedAt time.Time
	// raw is the recorded event: Raw itself for a plain entry or an opened
	// sealed one, the clear part for a sealed entry not opened.
	raw []byte
	// ref names the key of a sealed entry's personal part.
	ref keyRef
	// sealed: the entry has a sealed part; opened: it was decrypted;
	// forgotten: its key is gone.
	sealed, opened, forgotten bool
}

// decodeEntryHeader splits an entry value. A sealed entry comes back with
// its clear part as raw and its sealed personal part as ct.
func decodeEntryHeader(v []byte) (h entryHeader, ct []byte, err error) {
	if len(v) < 1 || (v[0] != entryPlain && v[0] != entrySealed) {
		return entryHeader{}, nil, errCorrupt
	}
	format := v[0]
	v = v[1:]
	ss, n := binary.Uvarint(v)
	if n <= 0 {
		return entryHeader{}, nil, errCorrupt
	}
	v = v[n:]
	ra, n := binary.Varint(v)
	if n <= 0 {
		return entryHeader{}, nil, errCorrupt
	}
	h = entryHeader{streamSeq: ss, recordedAt: time.Unix(0, ra).UTC(), raw: v[n:]}
	if format == entryPlain {
		return h, nil, nil
	}
	r := reader{b: v[n:]}
	h.raw = r.bytes()
	if r.err != nil {
		return entryHeader{}, nil, r.err
	}
	if h.ref, ct, err = readKeyRef(r.b); err != nil {
		return entryHeader{}, nil, err
	}
	h.sealed = true
	return h, ct, nil
}

// rawEvent is the part of the CloudEvents JSON format the ledger reads back.
type rawEvent struct {
	Source     string         `json:"source"`
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	Time       time.Time      `json:"time"`
	DataSchema string         `json:"dataschema"`
	Data       jsontext.Value `json:"data"`
}

// decodeEvent decodes a recorded event, with the JSON v2 decoder (the
// decoder of the ingest; what was recorded passed it). raw must not be
// modified afterwards: the returned Event's Raw is raw.
func decodeEvent(raw []byte) (ledger.Event, error) {
	var w rawEvent
	if err := jsonv2.Unmarshal(raw, &w); err != nil {
		return ledger.Event{}, fmt.Errorf("decode recorded event: %w", err)
	}
	ctor, ok := ledger.Types[w.Type]
	if !ok {
		return ledger.Event{}, fmt.Errorf("recorded event has unknown type %q", w.Type)
	}
	data := ctor()
	if len(w.Data) > 0 {
		if err := jsonv2.Unmarshal(w.Data, data); err != nil {
			return ledger.Event{}, fmt.Errorf("decode recorded %s data: %w", w.Type, err)
		}
	}
	return ledger.Event{
		Source:     w.Source,
		ID:         w.ID,
		Type:       w.Type,
		Time:       w.Time,
		DataSchema: w.DataSchema,
		Data:       data,
		Raw:        raw,
	}, nil
}

// decodeIdentity reads only source and id from a recorded event.
func decodeIdentity(raw []byte) (source, id string, err error) {
	var w struct {
		Source string `json:"source"`
		ID     string `json:"id"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return "", "", fmt.Errorf("decode recorded event: %w", err)
	}
	return w.Source, w.ID, nil
}

// summary is what the subject index keeps of one disclosure for one subject:
// enough to answer Who without reading the entry. It holds no identifier.
type summary struct {
	inquiry      bool
	afterErasure bool
	restricted   bool
	receivedFrom string // the competent authority the data came from (DPA 2018 s.48(7))
	recipient    string
	purpose      string
	lawfulBasis  string
	regime       string
	categories   []string
	id           string    // the disclosure's event id; empty in summaries written before it was kept
	at           time.Time // from the key, set by subjectSummaries
}

// Summary flags.
const (
	summaryInquiry      = 1
	summaryAfterErasure = 2 // disclosed after an erasure of this subject's data in these categories
	summaryRestricted   = 4 // disclosed while a restriction of this subject's data in these categories was in force
	summaryProfile      = 8 // the profile (purpose, lawful basis, regime, categories) is named by its H8 (profiles.go)
)

// encodeSummary appends the compact binary form: flags byte, then recipient,
// purpose, lawful basis and regime as uvarint-length strings, a uvarint count
// of categories and each category likewise, then the disclosure's event id.
// The flags are the summary's Inquiry, AfterErasure and WhileRestricted.
func encodeSummary(dst []byte, d ledger.DisclosureSummary) []byte {
	dst = append(dst, summaryFlags(&d))
	dst = appendString(dst, d.Recipient)
	dst = appendProfile(dst, &d) // profiles.go
	return appendSummaryEnd(dst, &d)
}

// encodeSummaryRef is encodeSummary with the profile named by its H8
// (profiles.go): flags|summaryProfile, recipient, H8, and the rest as
// encodeSummary ends.
func encodeSummaryRef(dst []byte, d ledger.DisclosureSummary, profile []byte) []byte {
	dst = append(dst, summaryFlags(&d)|summaryProfile)
	dst = appendString(dst, d.Recipient)
	dst = append(dst, profile...)
	return appendSummaryEnd(dst, &d)
}

func summaryFlags(d *ledger.DisclosureSummary) byte {
	var flags byte
	if d.Inquiry {
		flags |= summaryInquiry
	}
	if d.AfterErasure {
		flags |= summaryAfterErasure
	}
	if d.WhileRestricted {
		flags |= summaryRestricted
	}
	return flags
}

// appendSummaryEnd appends what a summary ends with: the disclosure's event
// id, then the origin when there is one.
func appendSummaryEnd(dst []byte, d *ledger.DisclosureSummary) []byte {
	dst = appendString(dst, d.ID)
	if d.ReceivedFrom != "" {
		// After the id, only when set: summaries written before it was kept
		// (and those without an origin) end with the id.
		dst = appendString(dst, d.ReceivedFrom)
	}
	return dst
}

// decodeSummary reverses encodeSummary. Strings are copied out of v.
func decodeSummary(v []byte) (summary, error) {
	var s summary
	if len(v) < 1 {
		return s, errCorrupt
	}
	s.inquiry = v[0]&summaryInquiry != 0
	s.afterErasure = v[0]&summaryAfterErasure != 0
	s.restricted = v[0]&summaryRestricted != 0
	r := reader{b: v[1:]}
	s.recipient = r.string()
	s.purpose = r.string()
	s.lawfulBasis = r.string()
	s.regime = r.string()
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = errCorrupt
	}
	if r.err == nil {
		s.categories = make([]string, n)
		for i := range s.categories {
			s.categories[i] = r.string()
		}
	}
	if r.err == nil && len(r.b) > 0 {
		s.id = r.string()
	}
	if r.err == nil && len(r.b) > 0 {
		s.receivedFrom = r.string()
	}
	return s, r.err
}

// summaryRecipient returns only the recipient of an encoded summary, without
// copying it.
func summaryRecipient(v []byte) ([]byte, error) {
	if len(v) < 1 {
		return nil, errCorrupt
	}
	r := reader{b: v[1:]}
	b := r.bytes()
	return b, r.err
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// reader decodes uvarints and length-prefixed strings; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	u, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return u
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) string() string { return string(r.bytes()) }

// encodeMeta and decodeMeta handle the meta value: applied stream seq and
// entry count, 8 bytes big-endian each.
func encodeMeta(applied, count uint64) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, applied)
	binary.BigEndian.PutUint64(v[8:], count)
	return v
}

func decodeMeta(v []byte) (applied, count uint64, err error) {
	if len(v) != 16 {
		return 0, 0, errCorrupt
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:]), nil
}
