package store

import (
	"bytes"
	"encoding/binary"
	"slices"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/sharelog/sharelog/internal/ledger"
)

// A sealed entry keeps an event in two parts: the clear part, which is the
// recorded event (Raw) with the value of every field that identifies a
// person or may name one replaced by an empty placeholder, and the personal
// part, those values with where they go, sealed. Subject identifiers become
// "" (their schemes stay); free text (justifications, summaries, notes,
// reasons), the people who decided or disclosed, record references and
// rectified values are cut out. What stays in clear is the evidence that
// outlives forgetting: who received which categories, for what purpose, on
// what basis, when; which requests were decided and which notices answered.
//
// The cut is made on Raw's bytes, so opening the personal part gives back
// Raw exactly, and only the personal values (not the whole event) are
// encrypted: the clear part stays compressible by Badger.

// Placeholders left in the clear part.
var (
	placeholderString = []byte(`""`)
	placeholderValue  = []byte(`null`)
)

// patchVersion starts every personal part. It is never the first byte of
// zstd's magic number, so sealData may compress a long part.
const patchVersion byte = 'p'

// splitPersonal cuts ev's personal values out of ev.Raw. It returns the
// clear part and the personal part: patchVersion, a uvarint count, then
// for each value in order its uvarint offset in the clear part, its
// placeholder (0 for "", 1 for null) and its bytes as in Raw.
//
// Each value is found in Raw by its path and must be what the typed event
// holds; an event where one is missing, differs, or overlaps another is
// refused rather than recorded with personal data left in clear (Raw with
// duplicate object keys would be one: the decoder refuses those).
func splitPersonal(ev *ledger.Event) (clear, patch []byte, err error) {
	return appendSplit(nil, nil, ev)
}

// appendSplit is splitPersonal appending the clear part to clear and the
// personal part to patch, so that the writer reuses its buffers from one
// event to the next.
func appendSplit(clear, patch []byte, ev *ledger.Event) ([]byte, []byte, error) {
	fields, err := ledger.PersonalFields(ev)
	if err != nil {
		return nil, nil, err
	}
	type span struct{ start, end int }
	var room [8]span // enough for most events without allocating
	spans := room[:0]
	size := 1 + binary.MaxVarintLen64 // the patch's: version, count, then per value
	// Looked up in a string view of Raw: gjson.GetBytes copies every value
	// it finds, three allocations an event, and nothing found here is kept.
	raw := unsafe.String(unsafe.SliceData(ev.Raw), len(ev.Raw))
	for _, f := range fields {
		r := gjson.Get(raw, f.Path)
		if !r.Exists() || r.Index <= 0 || r.Index+len(r.Raw) > len(ev.Raw) ||
			!bytes.Equal(ev.Raw[r.Index:r.Index+len(r.Raw)], []byte(r.Raw)) {
			return nil, nil, unsealable(f.Path)
		}
		if f.Want != nil && (r.Type != gjson.String || r.Str != *f.Want) {
			return nil, nil, unsealable(f.Path)
		}
		spans = append(spans, span{r.Index, r.Index + len(r.Raw)})
		size += 2*binary.MaxVarintLen64 + 1 + len(r.Raw)
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })

	clear = slices.Grow(clear, len(ev.Raw))
	patch = append(slices.Grow(patch, size), patchVersion)
	patch = binary.AppendUvarint(patch, uint64(len(spans)))
	prev := 0
	for _, s := range spans {
		if s.start < prev {
			return nil, nil, unsealable("data")
		}
		clear = append(clear, ev.Raw[prev:s.start]...)
		patch = binary.AppendUvarint(patch, uint64(len(clear)))
		if ev.Raw[s.start] == '"' {
			patch = append(patch, 0)
			clear = append(clear, placeholderString...)
		} else {
			patch = append(patch, 1)
			clear = append(clear, placeholderValue...)
		}
		patch = binary.AppendUvarint(patch, uint64(s.end-s.start)) // as appendString
		patch = append(patch, ev.Raw[s.start:s.end]...)
		prev = s.end
	}
	return append(clear, ev.Raw[prev:]...), patch, nil
}

func unsealable(path string) error {
	return ledger.Invalid(ledger.ReasonMalformed, path,
		"the value at %s could not be located in the event for sealing; the event is refused so that it is not recorded in clear", path)
}

// joinPersonal reverses splitPersonal: the clear part with every
// placeholder replaced by its value.
func joinPersonal(clear, patch []byte) ([]byte, error) {
	if len(patch) < 1 || patch[0] != patchVersion {
		return nil, errCorrupt
	}
	r := reader{b: patch[1:]}
	n := r.uvarint()
	if r.err != nil || n > uint64(len(clear)) {
		return nil, errCorrupt
	}
	out := make([]byte, 0, len(clear)+len(patch))
	prev := 0
	for range n {
		off := r.uvarint()
		if r.err != nil || len(r.b) < 1 {
			return nil, errCorrupt
		}
		var ph []byte
		switch r.b[0] {
		case 0:
			ph = placeholderString
		case 1:
			ph = placeholderValue
		default:
			return nil, errCorrupt
		}
		r.b = r.b[1:]
		v := r.bytes()
		if r.err != nil || off < uint64(prev) || off+uint64(len(ph)) > uint64(len(clear)) ||
			!bytes.Equal(clear[off:off+uint64(len(ph))], ph) {
			return nil, errCorrupt
		}
		out = append(out, clear[prev:off]...)
		out = append(out, v...)
		prev = int(off) + len(ph)
	}
	if len(r.b) != 0 {
		return nil, errCorrupt
	}
	return append(out, clear[prev:]...), nil
}
