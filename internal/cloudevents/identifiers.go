package cloudevents

import (
	"encoding/base64"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/sharelog/sharelog/internal/ledger"
)

// minIdentifyingLen is the fewest letters and digits an identifier needs
// to be looked for in context attributes. Shorter ones ("2026", "web",
// "42") cannot single anyone out in a header or a log line, and they are
// the years, counters and words that ids and sources are made of.
const minIdentifyingLen = 5

// attr is one context attribute, extension or transport header.
type attr struct {
	name, value string
}

// headerAttrs lists transport headers as attributes, named by header.
func headerAttrs(header map[string][]string) []attr { return appendHeaderAttrs(nil, header) }

// appendHeaderAttrs appends the transport headers to out as attributes.
func appendHeaderAttrs(out []attr, header map[string][]string) []attr {
	for k, vs := range header {
		for _, v := range vs {
			out = append(out, attr{name: k, value: v})
		}
	}
	return out
}

// subjectIDs returns the data-subject identifiers in v, one of the ledger
// data types.
func subjectIDs(v any) []string { return appendSubjectIDs(nil, v) }

// appendSubjectIDs appends the data-subject identifiers in v to ids.
func appendSubjectIDs(ids []string, v any) []string {
	add := func(s ledger.Subject) {
		if id := strings.TrimSpace(s.ID); id != "" {
			ids = append(ids, id)
		}
	}
	switch d := v.(type) {
	case *ledger.Disclosure:
		for _, s := range d.Subjects {
			add(s)
		}
	case *ledger.Rectification:
		add(d.Subject)
	case *ledger.Erasure:
		add(d.Subject)
	case *ledger.Restriction:
		add(d.Subject)
	case *ledger.RestrictionLifted:
		add(d.Subject)
	case *ledger.Notice:
		add(d.Subject)
	case *ledger.Hold:
		if d.Scope != nil && d.Scope.Subject != nil {
			add(*d.Scope.Subject)
		}
	case *ledger.HoldReleased:
		if d.Scope != nil && d.Scope.Subject != nil {
			add(*d.Scope.Subject)
		}
	case *ledger.Consultation:
		if d.Subject != nil {
			add(*d.Subject)
		}
	}
	return ids
}

// eventAttrs lists the context attributes and extensions of e that
// identifiersInAttributes looks in: id, source, type, dataschema, then the
// extensions by name.
func eventAttrs(e *event.Event) []attr {
	exts := e.Extensions()
	attrs := make([]attr, 0, 4+len(exts))
	attrs = append(attrs, attr{"id", e.ID()}, attr{"source", e.Source()}, attr{"type", e.Type()}, attr{"dataschema", e.DataSchema()})
	for _, name := range sortedKeys(exts) {
		s, err := types.Format(exts[name])
		if err != nil {
			continue
		}
		attrs = append(attrs, attr{name, s})
	}
	return attrs
}

// identifiersInAttributes returns a problem for every context attribute or
// extension (attrs, in order, as eventAttrs lists them) or extra attribute
// (in the order of their names) that contains one of ids.
// What the rule protects is a person's identifier travelling in headers,
// subjects of NATS messages and logs, where it is not protected as data is;
// so an identifier is found where it stands whole: its tokens (runs of
// letters and digits, compared regardless of case) appear one after the
// other, with nothing but separators between them, as whole tokens of the
// attribute. "DBS-000123456" is found in "/export/dbs_000123456/x" but
// "12345" is not found in "evt-123456". Identifiers with fewer than
// minIdentifyingLen letters and digits are not looked for. Details name the
// attribute, never the identifier.
func identifiersInAttributes(ids []string, attrs, extra []attr) []ledger.Problem {
	var room [4][]string
	wanted := room[:0]
	for _, id := range ids {
		if toks := tokens(id); alnumLen(toks) >= minIdentifyingLen {
			wanted = append(wanted, toks)
		}
	}
	if len(wanted) == 0 {
		return nil
	}
	byName := func(a, b attr) int { return strings.Compare(a.name, b.name) }
	if !slices.IsSortedFunc(extra, byName) {
		extra = slices.Clone(extra) // the caller's, left as it is
		slices.SortFunc(extra, byName)
	}
	var probs []ledger.Problem
	for _, list := range [2][]attr{attrs, extra} {
		for _, a := range list {
			if a.value != "" && holdsIdentifier(a.value, wanted) {
				probs = append(probs, ledger.Problem{
					Reason: ledger.ReasonIdentifierHeader,
					Field:  a.name,
					Detail: "contains a data-subject identifier from data: identifiers belong inside data only",
				})
			}
		}
	}
	return probs
}

// holdsIdentifier reports whether the attribute value holds one of the
// identifiers wanted, each as its tokens (identifiersInAttributes).
func holdsIdentifier(value string, wanted [][]string) bool {
	// A URI (the source, dataschema) may hold the identifier
	// percent-encoded. Tokens are made only for a value that holds the
	// first token of an identifier.
	v := strings.ToLower(value)
	var dv string // percent-decoded, when it differs
	if strings.Contains(v, "%") {
		dv = strings.ToLower(percentDecode(value))
	}
	var have, decoded []string
	for _, want := range wanted {
		inV, inDV := strings.Contains(v, want[0]), dv != "" && strings.Contains(dv, want[0])
		if !inV && !inDV {
			continue
		}
		if inV && have == nil {
			have = tokens(v)
		}
		if inDV && decoded == nil {
			decoded = tokens(dv)
		}
		if containsRun(have, want) || containsRun(decoded, want) {
			return true
		}
	}
	return false
}

// tokens splits s into its runs of letters and digits, lowercased.
func tokens(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !isAlnum(r) })
}

// alnumLen counts the letters and digits of toks.
func alnumLen(toks []string) int {
	n := 0
	for _, t := range toks {
		n += utf8.RuneCountInString(t)
	}
	return n
}

// containsRun reports whether want occurs in have as consecutive elements.
func containsRun(have, want []string) bool {
	for i := 0; i+len(want) <= len(have); i++ {
		if slices.Equal(have[i:i+len(want)], want) {
			return true
		}
	}
	return false
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// withoutIdentifiers returns source and id of a refused event, or two empty
// strings if either holds a data-subject identifier that the event's data
// names. An event refused before its data was decoded was never checked
// for identifiers in its attributes, yet its source and id are reported
// (and the source names the subject it is filed under in
// SHARELOG_REJECTED): the data is read here leniently, as far as it can
// be, for the identifiers. data is the event's data, or with structured
// its whole JSON text.
func withoutIdentifiers(data []byte, structured bool, source, id string) (string, string) {
	if source == "" && id == "" {
		return source, id
	}
	if len(data) > MaxEventSize {
		return "", "" // not read: not reported
	}
	lenient := json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var v any
	if json.Unmarshal(data, &v, lenient) != nil {
		return source, id
	}
	if structured {
		m, _ := v.(map[string]any)
		v = m["data"]
		if s, ok := m["data_base64"].(string); ok && v == nil {
			if b, err := base64.StdEncoding.DecodeString(s); err == nil && json.Unmarshal(b, &v, lenient) != nil {
				v = nil
			}
		}
	}
	var ids []string
	idOf := func(s any) {
		if m, ok := s.(map[string]any); ok {
			if id, ok := m["id"].(string); ok {
				ids = append(ids, id)
			}
		}
	}
	d, _ := v.(map[string]any)
	if subjects, ok := d["subjects"].([]any); ok {
		for _, s := range subjects {
			idOf(s)
		}
	}
	idOf(d["subject"])
	if scope, ok := d["scope"].(map[string]any); ok {
		idOf(scope["subject"])
	}
	if len(identifiersInAttributes(ids, nil, []attr{{"id", id}, {"source", source}})) > 0 {
		return "", ""
	}
	return source, id
}
