package ledger

import (
	"slices"
	"strings"
)

// Placeholders are the values that say nothing: a DPA 2018 s.62 log must
// show the justification for a disclosure and who made it, and these do
// not. Compared after trimming and folding case.
var Placeholders = []string{
	"-", "--", "?", ".", "n/a", "na", "n.a.", "none", "nil", "null", "tbc", "tbd",
	"todo", "unknown", "not known", "not applicable", "x", "xxx", "test", "see above", "various",
}

// Meaningless reports whether a free-text value is blank, only white space
// or one of Placeholders.
func Meaningless(s string) bool {
	t := strings.TrimSpace(s)
	if t == "" {
		return true
	}
	// Lowercasing leaves at least a quarter of the bytes (a rune of up to
	// four bytes becomes one of at least one): a value over four times as
	// long as every placeholder is none, and is not lowercased (a copy).
	for _, p := range Placeholders {
		if len(t) <= 4*len(p) {
			return slices.Contains(Placeholders, strings.ToLower(t))
		}
	}
	return false
}

// checkS62 refuses a disclosure whose justification or discloser says
// nothing (DPA 2018 s.62(1),(3)): white space or a placeholder. A field
// that is absent is the schema's to require (under dpa-part3: required_if),
// and absent too in an entry replayed after its subjects were forgotten,
// which blanks it; one that is present must mean something under any regime.
func checkS62(d *Disclosure) error {
	for _, f := range []struct{ field, name, v string }{
		{"data.justification", "justification", d.Justification},
		{"data.disclosedBy", "discloser (disclosedBy)", d.DisclosedBy},
	} {
		if f.v == "" {
			continue
		}
		if Meaningless(f.v) {
			return Invalid(ReasonInvalidData, f.field,
				"the %s is blank or a placeholder (%q): DPA 2018 s.62 requires the log to show the justification for the disclosure and who made it", f.name, strings.TrimSpace(f.v))
		}
	}
	return nil
}

// CheckAlone applies the rules that need nothing from the ledger to an
// event that passed its field rules: the s.62 fields of a disclosure
// (checkS62) and Art. 18(3) for a lifting (InformedBeforeLifting). Decide
// applies them too; a transport that answers at once (HTTP) calls this
// first so that it can refuse with the reason before storing the event.
func CheckAlone(ev *Event) error {
	switch d := ev.Data.(type) {
	case *Disclosure:
		return checkS62(d)
	case *RestrictionLifted:
		return InformedBeforeLifting(d)
	}
	return nil
}
