package nats

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/ledger"
)

// NATS permissions of the principals of an --access file (DESIGN.md,
// "Access"). The embedded server applies them to each principal's
// connection (auth.go), and `sharelog nats-config` prints the same for an
// existing cluster: both come from Permissions, so there is one table.
//
// What each role may do over NATS:
//   - every principal: subscribe to its own reply inbox, InboxPrefix(name).>,
//     and nothing else of anyone's replies (a shared _INBOX.> would let one
//     principal read the replies, notices and stream messages sent to another);
//   - a principal with sources (producer, and a dpo or admin that lists
//     some): publish on sharelog.in.<source token> and ask the service on
//     sharelog.api.events.<source token>, for its own sources only, and
//     follow its own rejections, sharelog.rejected.*.<source token>;
//   - recipient: subscribe to sharelog.notice.<id>, read them through its own
//     durable consumer on SHARELOG_NOTICES (named <id>, filtered to its
//     subject, made by sharelog: EnsureRecipientConsumers), and publish its
//     acks on sharelog.in.ack.<id>;
//   - auditor: subscribe to SubjectCheckpoint and get keys of the KV bucket
//     BucketCheckpoints;
//   - clerk: nothing over NATS (its work is the HTTP manual queue).
//
// Nobody but sharelog itself publishes on sharelog.in.notify (or its other
// own input subjects, OwnInputSubjects) or calls the JetStream API on
// SHARELOG_IN, SHARELOG_REJECTED or SHARELOG_NOTICES: no principal is
// granted either, and the ingest loop vouches every event's source against
// its subject besides (ingest.go).

// The notices' stream and subjects, as internal/notify names them (it
// imports this package, so they are repeated here; a test keeps them equal).
const (
	streamNotices       = "SHARELOG_NOTICES"
	subjectNoticePrefix = "sharelog.notice."
)

// SubjectConfig is where sharelog stores the recipients of --recipients.
const SubjectConfig = "sharelog.in.config"

// OwnInputSubjects are the subjects under sharelog.in. that only sharelog
// publishes on: what arrives on them was checked (or made) by sharelog
// before it was stored, so the ingest loop trusts their source. No source
// may have one of them as its sharelog.in.<source token>, nor "ack".
var OwnInputSubjects = []string{SubjectInHTTP, SubjectInService, SubjectInNotify, SubjectConfig}

// InboxPrefix returns the reply-inbox prefix of the principal called name,
// _INBOX.<name as one subject token>: a client connects with it
// (nats.go CustomInboxPrefix, the nats CLI's --inbox-prefix) to get replies,
// since a principal may subscribe only under its own.
func InboxPrefix(name string) string { return "_INBOX." + SourceToken(name) }

// Permissions returns the NATS permissions of principal p, from its roles
// (see above). A principal with nothing to do over NATS gets permissions
// that deny every subject.
func Permissions(p *ledger.Principal) *server.Permissions {
	pub := []string{}
	sub := []string{InboxPrefix(p.Name) + ".>"}
	for _, s := range p.Sources {
		t := SourceToken(s)
		pub = append(pub, "sharelog.in."+t, SubjectService+"."+t)
		sub = append(sub, SubjectRejectedPrefix+"*."+t)
	}
	if p.Has(ledger.RoleRecipient) {
		id := p.Recipient
		stream, durable := streamNotices, id
		pub = append(pub,
			SubjectAckPrefix+id,
			// Its own durable consumer, which sharelog creates
			// (EnsureRecipientConsumers). No principal may create a
			// consumer: a push consumer's deliver subject is not part of
			// the API subject, so it could make the server deliver to any
			// subject, sharelog.in.notify included.
			"$JS.API.CONSUMER.INFO."+stream+"."+durable,
			"$JS.API.CONSUMER.MSG.NEXT."+stream+"."+durable,
			"$JS.ACK."+stream+"."+durable+".>",
		)
		sub = append(sub, subjectNoticePrefix+id)
	}
	if p.Has(ledger.RoleAuditor) {
		kv := StreamCheckpoints
		// Gets only: a watch would need a consumer, and no principal may
		// create one (see the recipient's).
		pub = append(pub,
			"$JS.API.STREAM.INFO."+kv,
			"$JS.API.STREAM.MSG.GET."+kv,
			"$JS.API.DIRECT.GET."+kv, // by sequence: the history
			"$JS.API.DIRECT.GET."+kv+".>",
		)
		sub = append(sub, SubjectCheckpoint)
	}
	perms := &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
	if len(pub) == 0 {
		perms.Publish = &server.SubjectPermission{Deny: []string{">"}}
	}
	return perms
}

// CheckSubjects refuses an access file whose principals cannot be given
// distinct NATS subjects: a source whose sharelog.in.<source token> is one of
// sharelog's own input subjects (or the ack prefix), a source or name too
// long to be one subject token, or the name of sharelog's own user.
func CheckSubjects(c *access.Control) error {
	for _, e := range c.Entries() {
		if e.Name == InternalUser {
			return fmt.Errorf("access file: principal name %q is reserved for sharelog's own NATS user", e.Name)
		}
		if SourceToken(e.Name) == SourceUnknown {
			return fmt.Errorf("access file: principal name %.40q...: too long for a NATS subject token", e.Name)
		}
		for _, s := range e.Sources {
			t := SourceToken(s)
			switch {
			case t == SourceUnknown:
				return fmt.Errorf("access file: principal %q: source %.40q...: too long for a NATS subject token", e.Name, s)
			case t == "ack" || slices.Contains(OwnInputSubjects, "sharelog.in."+t):
				return fmt.Errorf("access file: principal %q: source %q would publish on sharelog.in.%s, which is sharelog's own subject; choose another source", e.Name, s, t)
			}
		}
	}
	return nil
}

// vouch decides, with an access file, whether the event ev that arrived on
// subject was published by a principal that may publish it: on
// sharelog.in.ack.<id>, the principal that answers for recipient <id> (NATS
// permissions let only it publish there); on sharelog.in.<token>, the
// principal that owns the event's source, whose token must be <token> (so
// no producer publishes as another). The rule itself is the domain's
// (ledger.MayPublish); this only says who. Events on sharelog's own input
// subjects pass: sharelog checked them before storing them. A refusal is an
// *ledger.InvalidError with reason forbidden, filed in SHARELOG_REJECTED as
// any other; its detail names the subject and the principal, not the
// event's values.
func vouch(c *access.Control, subject string, ev *ledger.Event) error {
	if c == nil || slices.Contains(OwnInputSubjects, subject) {
		return nil
	}
	var p *ledger.Principal
	recipient := ""
	if id, ok := strings.CutPrefix(subject, SubjectAckPrefix); ok {
		recipient = id
		if p = recipientPrincipal(c, id); p == nil {
			return forbidden("no principal of the access file answers for the recipient of subject %s", subject)
		}
	} else {
		token, _ := strings.CutPrefix(subject, "sharelog.in.")
		if SourceToken(ev.Source) != token {
			return forbidden("the event's source is not the one subject %s is for: a principal publishes on sharelog.in.<its source> only", subject)
		}
		if p = c.SourceOwner(ev.Source); p == nil {
			return forbidden("no principal of the access file publishes from the source of subject %s", subject)
		}
	}
	if err := ledger.MayPublish(p, ev.Type, ev.Source, recipient); err != nil {
		return forbidden("%s", ledger.ErrorMessage(err))
	}
	return nil
}

// forbidden returns an event's refusal for the publisher's lack of right.
func forbidden(format string, args ...any) *ledger.InvalidError {
	return ledger.Invalid(ledger.ReasonForbidden, "source", format, args...)
}

// recipientPrincipal returns the principal that answers for recipient id,
// or nil.
func recipientPrincipal(c *access.Control, id string) *ledger.Principal {
	for _, e := range c.Entries() {
		if e.Recipient == id && slices.Contains(e.Roles, ledger.RoleRecipient) {
			return e.Principal()
		}
	}
	return nil
}

// EnsureRecipientConsumers creates, for each recipient principal of c, its
// durable pull consumer on SHARELOG_NOTICES: named after the recipient id,
// filtered to sharelog.notice.<id>, acked one by one. The recipient may read
// and ack through it (Permissions) but not create or change it, so it
// catches up on notices published while it was away and sees no others.
// Safe to call from every start.
func EnsureRecipientConsumers(ctx context.Context, js jetstream.JetStream, c *access.Control) error {
	for _, e := range c.Entries() {
		if !slices.Contains(e.Roles, ledger.RoleRecipient) {
			continue
		}
		_, err := js.CreateOrUpdateConsumer(ctx, streamNotices, jetstream.ConsumerConfig{
			Durable:       e.Recipient,
			Description:   "notices to recipient " + e.Recipient + " (principal " + e.Name + ")",
			FilterSubject: subjectNoticePrefix + e.Recipient,
			AckPolicy:     jetstream.AckExplicitPolicy,
		})
		if err != nil {
			return fmt.Errorf("consumer %s on %s: %w", e.Recipient, streamNotices, err)
		}
	}
	return nil
}
