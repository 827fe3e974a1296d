package ledger

import "time"

// WhoRecipient summarises everything one recipient received about one data
// subject: the answer to Art. 15(1)(c) for that recipient, named per C-154/21.
type WhoRecipient struct {
	Recipient        string    `json:"recipient"`
	Name             string    `json:"name"`
	Role             string    `json:"role"`
	Country          string    `json:"country,omitempty"`
	Categories       []string  `json:"categories"`
	Purposes         []string  `json:"purposes"`
	LawfulBases      []string  `json:"lawfulBases"`
	Regimes          []string  `json:"regimes"`
	FirstDisclosedAt time.Time `json:"firstDisclosedAt"`
	LastDisclosedAt  time.Time `json:"lastDisclosedAt"`
	Count            int       `json:"count"`
	// Inquiry is true when any of the disclosures was to a public authority
	// within a particular inquiry (Art. 4(9)): recorded, but flagged.
	Inquiry bool `json:"inquiry,omitempty"`
	// OpenObligations counts rectification, erasure and restriction notices to
	// this recipient about this subject that are not yet closed.
	OpenObligations int `json:"openObligations"`
	// DisclosedAfterErasure counts disclosures to this recipient recorded
	// after an erasure of the same categories of this subject was decided:
	// recorded, but flagged for the DPO.
	DisclosedAfterErasure int `json:"disclosedAfterErasure,omitempty"`
	// DisclosedWhileRestricted counts disclosures to this recipient made
	// while a restriction of the same categories of this subject was in
	// force (UK GDPR Art. 18(2)): recorded, but flagged for the DPO.
	DisclosedWhileRestricted int `json:"disclosedWhileRestricted,omitempty"`
	// ReceivedFrom names the competent authorities the data disclosed to
	// this recipient came from (DPA 2018 s.48(7)), sorted; told of a
	// rectification as well as the recipient.
	ReceivedFrom []string `json:"receivedFrom,omitempty"`
}

// Who is the answer to "who did we share this person's data with?".
// Recipients are sorted by recipient id.
type Who struct {
	Recipients  []WhoRecipient `json:"recipients"`
	Disclosures int            `json:"disclosures"`
	// Holds names the active legal holds that cover this subject (by
	// subject, or by a purpose or category of its disclosures): they stop
	// the ledger from forgetting it.
	Holds []string `json:"holds,omitempty"`
}

// DisclosureRecord is one recorded disclosure with its ledger position.
type DisclosureRecord struct {
	Seq        uint64     `json:"seq"`
	Source     string     `json:"source"`
	ID         string     `json:"id"`
	RecordedAt time.Time  `json:"recordedAt"`
	Disclosure Disclosure `json:"disclosure"`
	// AfterErasure names the erasure request this disclosure came after: a
	// disclosure of a subject's data in categories whose erasure had already
	// been decided. Recorded, but flagged.
	AfterErasure string `json:"afterErasure,omitempty"`
	// WhileRestricted names the restriction in force when this disclosure
	// was made (UK GDPR Art. 18(2)): recorded, but flagged.
	WhileRestricted string `json:"whileRestricted,omitempty"`
	// Forgotten is set when a subject of the disclosure was forgotten: the
	// pseudonymous facts remain, the identifiers and free text are gone.
	Forgotten bool `json:"forgotten,omitempty"`
}

// DisclosureFilter selects disclosures. Zero fields do not filter. Since is
// inclusive and Until exclusive, both on DisclosedAt. Results come in
// (DisclosedAt, Seq) order; After continues from a previous page's Next cursor.
type DisclosureFilter struct {
	Subject   *Subject  `json:"subject,omitempty"`
	Recipient string    `json:"recipient,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	Until     time.Time `json:"until,omitzero"`
	After     string    `json:"after,omitempty"`
	Limit     int       `json:"limit,omitempty"`
}

// DefaultLimit and MaxLimit bound one page of a listing.
const (
	DefaultLimit = 1000
	MaxLimit     = 10000
)

// PageLimit returns the page size a listing asked for with limit: 0 means
// DefaultLimit, more than MaxLimit is cut to MaxLimit, a negative limit is
// EINVALID.
func PageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, Errorf(EINVALID, "limit must not be negative")
	case limit == 0:
		return DefaultLimit, nil
	default:
		return min(limit, MaxLimit), nil
	}
}

// DisclosurePage is one page of a listing. Next is empty on the last page.
type DisclosurePage struct {
	Disclosures []DisclosureRecord `json:"disclosures"`
	Next        string             `json:"next,omitempty"`
}
