package cloudevents

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/sharelog/sharelog/internal/ledger"
)

// minSubstringLen is the shortest identifier matched as a substring of an
// attribute; shorter ones must match a whole token, so that an identifier
// such as "7" does not match every id containing a 7.
const minSubstringLen = 4

// attr is one context attribute, extension or transport header.
type attr struct {
	name, value string
}

// headerAttrs lists transport headers as attributes, named by header.
func headerAttrs(header map[string][]string) []attr {
	var out []attr
	for k, vs := range header {
		for _, v := range vs {
			out = append(out, attr{name: k, value: v})
		}
	}
	return out
}

// subjectIDs returns the data-subject identifiers in v, one of the ledger
// data types.
func subjectIDs(v any) []string {
	var ids []string
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
	}
	return ids
}

// identifiersInAttributes returns a problem for every context attribute,
// extension (of e, if not nil) or extra attribute that contains one of ids. Identifiers of
// minSubstringLen or more characters match as case-insensitive substrings,
// shorter ones as whole tokens. Details name the attribute, never the
// identifier.
func identifiersInAttributes(ids []string, e *event.Event, extra []attr) []ledger.Problem {
	if len(ids) == 0 {
		return nil
	}
	var exts map[string]any
	if e != nil {
		exts = e.Extensions()
	}
	attrs := make([]attr, 0, 4+len(exts)+len(extra))
	if e != nil {
		attrs = append(attrs, attr{"id", e.ID()}, attr{"source", e.Source()}, attr{"type", e.Type()}, attr{"dataschema", e.DataSchema()})
		if len(exts) > 0 {
			for _, name := range sortedKeys(exts) {
				s, err := types.Format(exts[name])
				if err != nil {
					continue
				}
				attrs = append(attrs, attr{name, s})
			}
		}
	}
	n := len(attrs)
	attrs = append(attrs, extra...)
	slices.SortFunc(attrs[n:], func(a, b attr) int { return strings.Compare(a.name, b.name) })

	lower := make([]string, len(ids))
	for i, id := range ids {
		lower[i] = strings.ToLower(id)
	}
	var probs []ledger.Problem
	for _, a := range attrs {
		if a.value == "" {
			continue
		}
		v := strings.ToLower(a.value)
		for _, id := range lower {
			var found bool
			if utf8.RuneCountInString(id) >= minSubstringLen {
				found = strings.Contains(v, id)
			} else {
				found = containsToken(v, id)
			}
			if found {
				probs = append(probs, ledger.Problem{
					Reason: ledger.ReasonIdentifierHeader,
					Field:  a.name,
					Detail: "contains a data-subject identifier from data: identifiers belong inside data only",
				})
				break
			}
		}
	}
	return probs
}

// containsToken reports whether id occurs in v as a whole token: not preceded
// or followed by a letter or digit.
func containsToken(v, id string) bool {
	for off := 0; off <= len(v)-len(id); {
		i := strings.Index(v[off:], id)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(id)
		before, _ := utf8.DecodeLastRuneInString(v[:start])
		after, _ := utf8.DecodeRuneInString(v[end:])
		if (start == 0 || !isAlnum(before)) && (end == len(v) || !isAlnum(after)) {
			return true
		}
		off = start + 1
	}
	return false
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
