package ledger

import "regexp"

// AllRegimes lists every legal regime, in the order they are documented.
var AllRegimes = []string{RegimeUKGDPR, RegimeEUGDPR, RegimeDPAPart3, RegimeDPAPart4}

// ValidRegime reports whether r is one of AllRegimes.
func ValidRegime(r string) bool {
	for _, x := range AllRegimes {
		if r == x {
			return true
		}
	}
	return false
}

// MaxSlugLen bounds a slug: a recipient id, a subject scheme.
const MaxSlugLen = 64

// slugPattern is a lowercase slug: words of a-z and 0-9 joined by single hyphens.
var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// ValidSlug reports whether s is a slug of at most MaxSlugLen bytes, as
// recipient ids must be.
func ValidSlug(s string) bool { return len(s) <= MaxSlugLen && slugPattern.MatchString(s) }

// FieldRules are the rules on single values that the data types' validate
// tags name (validate:"slug", validate:"regime"); every validator of those
// types registers each of them under its name.
var FieldRules = map[string]func(string) bool{
	"slug":   ValidSlug,
	"regime": ValidRegime,
}

// Sender is who an event came from, as far as its transport vouches.
type Sender struct {
	// Internal is set for sharelog's own events (NATS subject
	// sharelog.in.notify, which only sharelog may publish to).
	Internal bool
	// Recipient is the recipient the transport vouches for: the <id> of
	// sharelog.in.ack.<id>, or the recipient of a signed HTTP ack.
	Recipient string
}

// MaySend decides whether sender may send an event of type typ at all.
// sharelog alone derives notices and records deliveries, forgettings and
// consultations; an acknowledgement must come from a recipient (that it is
// the notice's own recipient is checked against the obligation). It returns nil or an
// *InvalidError naming the rule.
func MaySend(typ string, sender Sender) *InvalidError {
	switch typ {
	case TypeNotice:
		return Invalid(ReasonConflict, "type",
			"notices are derived by sharelog from rectification, erasure and restriction requests; they are not recorded from outside")
	case TypeNoticeDelivery:
		if !sender.Internal {
			return Invalid(ReasonConflict, "type",
				"notice deliveries are recorded only by sharelog itself, on sharelog.in.notify")
		}
	case TypeSubjectForgotten:
		if !sender.Internal {
			return Invalid(ReasonConflict, "type",
				"subjects are forgotten only by sharelog itself, on sharelog.in.notify")
		}
	case TypeConsultation:
		if !sender.Internal {
			return Invalid(ReasonConflict, "type",
				"consultations are recorded only by sharelog itself, on sharelog.in.notify (DPA 2018 s.62)")
		}
	case TypeNoticeAck:
		if sender.Recipient == "" {
			return Invalid(ReasonWrongRecipient, "type",
				"acks are accepted only from the notice's recipient: POST /v1/recipients/{id}/acks (signed) or NATS subject sharelog.in.ack.<recipient>")
		}
	}
	return nil
}
