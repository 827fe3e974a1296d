package ledger

import "slices"

// HoldsCovering returns the ids of the holds among active that cover a
// subject, sorted. A hold covers the subject by its keyed hash (hex), or
// by the purpose and categories of any of its disclosures: a hold naming
// both needs one disclosure matching both, and categories match when
// either covers the other. A hold with an empty scope covers nothing.
//
// An active hold stops the ledger forgetting the subject, by erasure or
// by retention expiry: data kept as evidence, or under a moratorium on
// destruction such as the IICSA's, must not be destroyed (UK GDPR
// Art. 17(3)(b) and (e); DPA 2018 s.47(2)).
func HoldsCovering(active []HoldRecord, subjectHashHex string, disclosures []DisclosureSummary) []string {
	var out []string
	for _, h := range active {
		if !h.Active() {
			continue
		}
		if h.SubjectHash != "" {
			if h.SubjectHash == subjectHashHex {
				out = append(out, h.Hold)
			}
			continue
		}
		if h.Purpose == "" && len(h.Categories) == 0 {
			continue
		}
		for _, s := range disclosures {
			if h.Purpose != "" && h.Purpose != s.Purpose {
				continue
			}
			if len(h.Categories) > 0 && !CategoriesOverlap(h.Categories, s.Categories) {
				continue
			}
			out = append(out, h.Hold)
			break
		}
	}
	slices.Sort(out)
	return out
}

// needsDisclosures reports whether any active hold is scoped by purpose or
// category, so that HoldsCovering needs the subject's disclosures.
func needsDisclosures(active []HoldRecord) bool {
	for _, h := range active {
		if h.Active() && h.SubjectHash == "" && (h.Purpose != "" || len(h.Categories) > 0) {
			return true
		}
	}
	return false
}

// SubjectHolds returns the active holds covering the subject with keyed
// hash h, reading what it needs from st.
func SubjectHolds(st State, h []byte) ([]string, error) {
	active, err := st.ActiveHolds()
	if err != nil || len(active) == 0 || h == nil {
		return nil, err
	}
	var sums []DisclosureSummary
	if needsDisclosures(active) {
		if sums, err = st.Disclosures(h); err != nil {
			return nil, err
		}
	}
	return HoldsCovering(active, hexString(h), sums), nil
}

// Forget blanks what a (released) hold by subject may say of the person
// once the subject is forgotten: its reason and who placed it.
func (h *HoldRecord) Forget() { h.Reason, h.PlacedBy = "", "" }
