package cloudevents

import (
	"bytes"
	"hash/maphash"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/schemas"
)

// Most events carry only the attributes sharelog keeps, as plain strings:
// specversion 1.0, id, source, type, and perhaps time, dataschema and
// datacontenttype application/json. Such a plain event is finished here
// without sdk-go's event.Event: its attributes are read as sdk-go reads
// them (the source, dataschema and time with sdk-go's own parsers), and Raw
// is written as event.WriteJson writes it. Every other event, and a plain
// one sdk-go would read differently or refuse (a value with surrounding
// spaces, a source it writes back otherwise, an unknown type, a zero time,
// a value JSON must escape), goes the way of sdk-go, which words every
// refusal. TestPlainAsSDK holds the two ways to the same outcome, Raw byte
// for byte, on every golden input.

// plain holds the context attributes of a plain event: each as it is in
// the event, with nothing to escape in JSON.
type plain struct {
	id, source, typ, dataschema, time string
	ok                                bool // every attribute is plain
}

// plainValue reports whether s may be a plain attribute value: JSON writes
// it between quotes as it is (no quote, backslash or control character, as
// jsoniter's WriteString has it), and sdk-go reads it without trimming.
func plainValue(s string) bool {
	if s == "" || s != strings.TrimSpace(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// set records attribute name with value s, as plain as it is; ct is the
// data content type.
func (p *plain) set(name, s string) {
	if !plainValue(s) {
		p.ok = false
		return
	}
	switch name {
	case "id":
		p.id = s
	case "source":
		p.source = s
	case "type":
		p.typ = s
	case "dataschema":
		p.dataschema = s
	case "time":
		p.time = s
	case "datacontenttype":
		p.ok = p.ok && s == event.ApplicationJSON
	case "specversion":
		p.ok = p.ok && s == event.CloudEventsVersionV1
	default:
		p.ok = false // an extension or the subject
	}
}

// plainMembers reads the plain attributes of a structured event from its
// top-level members, and the data's text. A member's value is a JSON string
// without escapes, or the data, an object.
func plainMembers(body []byte, members []member) (plain, []byte) {
	p := plain{ok: true}
	var data []byte
	// The values kept are copied into one string, then cut from it.
	n := 0
	for _, m := range members {
		if m.name != "data" {
			n += m.end - m.start
		}
	}
	var kept strings.Builder
	kept.Grow(n)
	type cut struct {
		name       string
		start, end int
	}
	var room [8]cut
	cuts := room[:0]
	for _, m := range members {
		v := body[m.start:m.end]
		if m.name == "data" {
			if v[0] != '{' {
				return plain{}, nil
			}
			data = v
			continue
		}
		if v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
			return plain{}, nil
		}
		// As set has them, without copying the two that are only compared.
		switch s := v[1 : len(v)-1]; m.name {
		case "specversion":
			p.ok = p.ok && string(s) == event.CloudEventsVersionV1
		case "datacontenttype":
			p.ok = p.ok && string(s) == event.ApplicationJSON
		case "id", "source", "type", "dataschema", "time":
			cuts = append(cuts, cut{m.name, kept.Len(), kept.Len() + len(s)})
			kept.Write(s)
		default:
			p.ok = false // as set has it
		}
	}
	all := kept.String()
	for _, c := range cuts {
		p.set(c.name, all[c.start:c.end])
	}
	if data == nil {
		p.ok = false
	}
	return p, data
}

// plainHeader reads the plain attributes of a binary-mode event from h, as
// binaryHeader returns it.
func plainHeader(h http.Header) plain {
	p := plain{ok: true}
	for k, vs := range h {
		name := "datacontenttype"
		if k != "Content-Type" {
			switch k {
			case "Ce-Specversion", "Ce-Id", "Ce-Source", "Ce-Type", "Ce-Time", "Ce-Dataschema":
				name = strings.ToLower(k[3:])
			default:
				return plain{}
			}
		}
		p.set(name, vs[0])
	}
	return p
}

// readAsSDK reports whether sdk-go reads p as it is, in either mode, and
// accepts it (a known type, non-empty attributes, a source and dataschema
// that it writes back as they are, and a time that is not zero, which it
// would drop in binary mode). It returns the time, zero when absent.
func (p plain) readAsSDK() (types.Timestamp, bool) {
	var at types.Timestamp
	if !p.ok || p.id == "" || p.source == "" || p.typ == "" {
		return at, false
	}
	if _, known := ledger.Types[p.typ]; !known {
		return at, false
	}
	if !sourcesAsSDK.has(p.source) {
		if u := types.ParseURIRef(p.source); u == nil || u.String() != p.source {
			return at, false
		}
		sourcesAsSDK.add(p.source)
	}
	if p.dataschema != "" {
		// p.dataschema == schemas.ID(p.typ), without building the ID.
		if !strings.HasPrefix(p.dataschema, schemas.IDPrefix) || p.dataschema[len(schemas.IDPrefix):] != p.typ {
			return at, false
		}
		if !schemasAsSDK.has(p.dataschema) {
			if u := types.ParseURI(p.dataschema); u == nil || !u.Validate() || u.String() != p.dataschema {
				return at, false
			}
			schemasAsSDK.add(p.dataschema)
		}
	}
	if p.time != "" {
		t, err := types.ParseTimestamp(p.time)
		if err != nil || t.IsZero() {
			return at, false
		}
		at = *t
	}
	return at, true
}

// sourcesAsSDK and schemasAsSDK remember sources and dataschemas that
// readAsSDK found sdk-go reads and writes back as they are: a producing
// system sends the same ones again and again, and each check is a URL parse
// and a URL written back, a few allocations, for the same outcome.
var sourcesAsSDK, schemasAsSDK stringCache

// stringCache is a set of strings with room for a few: direct-mapped, so
// that a string comes out when another takes its slot. It is safe for
// concurrent use.
type stringCache struct {
	slots [64]atomic.Pointer[string]
}

var stringCacheSeed = maphash.MakeSeed()

func (c *stringCache) slot(s string) *atomic.Pointer[string] {
	return &c.slots[maphash.String(stringCacheSeed, s)%uint64(len(c.slots))]
}

// has reports whether s is in the set.
func (c *stringCache) has(s string) bool {
	p := c.slot(s).Load()
	return p != nil && *p == s
}

// add puts a copy of s in the set, in place of the string in its slot.
func (c *stringCache) add(s string) {
	s = strings.Clone(s) // not a part of a larger string
	c.slot(s).Store(&s)
}

// finishPlain finishes a plain event that sdk-go reads as it is (see
// readAsSDK), at its time, as finish does an event sdk-go read: data is the
// data's text, not empty, and v the data decoded from it, or nil.
func (d *Decoder) finishPlain(p plain, at types.Timestamp, data []byte, v any, extra []attr) (ev *ledger.Event, source, id string, err error) {
	source, id = p.source, p.id
	if v == nil {
		var probs []ledger.Problem
		if v, probs = d.decodeData(p.typ, data); len(probs) > 0 {
			return nil, source, id, &ledger.InvalidError{Problems: probs}
		}
	}
	attrs := [4]attr{{"id", p.id}, {"source", p.source}, {"type", p.typ}, {"dataschema", p.dataschema}}
	var ids [4]string
	if probs := identifiersInAttributes(appendSubjectIDs(ids[:0], v), attrs[:], extra); len(probs) > 0 {
		return nil, "", "", &ledger.InvalidError{Problems: probs}
	}
	if probs := d.check.problems(v, data); len(probs) > 0 {
		return nil, source, id, &ledger.InvalidError{Problems: probs}
	}
	data, err = compactData(data)
	if err != nil {
		return nil, source, id, err
	}

	// What event.WriteJson writes for the event finish would have made.
	raw := make([]byte, 0, 160+len(p.id)+len(p.source)+len(p.typ)+len(p.dataschema)+len(data))
	raw = append(raw, `{"specversion":"1.0","id":"`...)
	raw = append(raw, p.id...)
	raw = append(raw, `","source":"`...)
	raw = append(raw, p.source...)
	raw = append(raw, `","type":"`...)
	raw = append(raw, p.typ...)
	raw = append(raw, `","datacontenttype":"application/json"`...)
	if p.dataschema != "" {
		raw = append(raw, `,"dataschema":"`...)
		raw = append(raw, p.dataschema...)
		raw = append(raw, '"')
	}
	if p.time != "" {
		// As at.String(), types.FormatTime, formats it.
		raw = append(raw, `,"time":"`...)
		raw = at.UTC().AppendFormat(raw, time.RFC3339Nano)
		raw = append(raw, '"')
	}
	raw = append(raw, `,"data":`...)
	raw = append(raw, data...)
	raw = append(raw, '}')
	return &ledger.Event{
		Source:     source,
		ID:         id,
		Type:       p.typ,
		Time:       at.Time.UTC(),
		DataSchema: p.dataschema,
		Data:       v,
		Raw:        raw,
	}, source, id, nil
}
