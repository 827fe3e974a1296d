package ledger

import "strings"

// Covers reports whether the dotted category key parent covers child: it is
// the same key or an ancestor of it. "user.contact" covers "user.contact"
// and "user.contact.email" but not "user.contactless" or "user". An erasure
// of user.contact therefore reaches a disclosure of user.contact.email.
func Covers(parent, child string) bool {
	if parent == "" {
		return false
	}
	return child == parent || (len(child) > len(parent) && child[len(parent)] == '.' && strings.HasPrefix(child, parent))
}

// AffectedCategories returns the categories of a disclosure of disclosed
// that a request about requested (all when empty) affects. Coverage goes
// both ways: a request about user.contact affects a disclosure of
// user.contact.email, and a request about user.contact.email affects a
// disclosure of user.contact; for each pair where one covers the other the
// narrower key is the affected category.
func AffectedCategories(requested, disclosed []string) []string {
	if len(requested) == 0 {
		return disclosed
	}
	var out []string
	for _, d := range disclosed {
		for _, r := range requested {
			switch {
			case Covers(r, d):
				out = append(out, d)
			case Covers(d, r):
				out = append(out, r)
			}
		}
	}
	return out
}

// CategoriesOverlap reports whether a category of a covers or is covered by
// a category of b.
func CategoriesOverlap(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if Covers(x, y) || Covers(y, x) {
				return true
			}
		}
	}
	return false
}

// ChangesFor keeps the rectified fields a recipient may be sent: those in a
// category covered by a category it received. A change in a broader
// category than the recipient received is left out, since its value may be
// data the recipient never had (data minimisation, UK GDPR Art. 5(1)(c)).
func ChangesFor(changes []Change, received []string) []Change {
	var out []Change
	for _, c := range changes {
		for _, r := range received {
			if Covers(r, c.Category) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}
