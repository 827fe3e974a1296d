package nats

import (
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/ledger"
)

// TestVouch: with an access file, an event is taken only from the principal
// its subject stands for, as far as its roles allow (ledger.MayPublish).
func TestVouch(t *testing.T) {
	c, err := access.Parse([]byte(`principals:
  - {name: casework, roles: [producer], sources: [casework], tokenSHA256: b029abbd5f1e763850d41e1365100f2cd6111adefba7962426c49f1dc5acd510}
  - {name: jane.dpo, roles: [dpo], sources: [dpo], tokenSHA256: 3384046c3b3f99d9cd9010ddb9209ed56ab393ac6e11df37b7467e840daa9205}
  - {name: acro, roles: [recipient], recipient: acro, tokenSHA256: 578e4a8a0725543e1cbcddbda3b5b520c7f31ab1868078942e1303033e5263bb}
`))
	if err != nil {
		t.Fatal(err)
	}
	ev := func(source, typ string) *ledger.Event { return &ledger.Event{Source: source, ID: "e", Type: typ} }
	tests := []struct {
		name    string
		control *access.Control
		subject string
		ev      *ledger.Event
		ok      bool
	}{
		{"a producer on its own source's subject", c, "sharelog.in.casework", ev("casework", ledger.TypeDisclosure), true},
		{"a producer's erasure request", c, "sharelog.in.casework", ev("casework", ledger.TypeErasure), true},
		{"a producer's exemption: the dpo's", c, "sharelog.in.casework", ev("casework", ledger.TypeExemption), false},
		{"another source on a producer's subject", c, "sharelog.in.casework", ev("dpo", ledger.TypeErasure), false},
		{"a source nobody owns, on its own subject", c, "sharelog.in.nobody", ev("nobody", ledger.TypeDisclosure), false},
		{"a dpo's hold on its subject", c, "sharelog.in.dpo", ev("dpo", ledger.TypeHold), true},
		{"a dpo's disclosure: a producer's", c, "sharelog.in.dpo", ev("dpo", ledger.TypeDisclosure), false},
		{"a delivery record on a producer's subject", c, "sharelog.in.casework", ev("casework", ledger.TypeNoticeDelivery), false},
		{"a forgetting on a producer's subject", c, "sharelog.in.casework", ev("casework", ledger.TypeSubjectForgotten), false},
		{"a recipient's ack on its subject", c, "sharelog.in.ack.acro", ev("acro", ledger.TypeNoticeAck), true},
		{"an ack on a recipient's subject nobody answers for", c, "sharelog.in.ack.cgi", ev("cgi", ledger.TypeNoticeAck), false},
		{"a disclosure on a recipient's ack subject", c, "sharelog.in.ack.acro", ev("casework", ledger.TypeDisclosure), false},
		{"an ack on a producer's subject", c, "sharelog.in.casework", ev("casework", ledger.TypeNoticeAck), false},
		{"a subject deeper than a source token", c, "sharelog.in.casework.x", ev("casework", ledger.TypeDisclosure), false},
		{"sharelog's own delivery record", c, SubjectInNotify, ev("sharelog/notify", ledger.TypeNoticeDelivery), true},
		{"what HTTP checked and stored", c, SubjectInHTTP, ev("anything", ledger.TypeDisclosure), true},
		{"no access file: every subject", nil, "sharelog.in.casework", ev("dpo", ledger.TypeHold), true},
	}
	for _, tt := range tests {
		err := vouch(tt.control, tt.subject, tt.ev)
		if tt.ok != (err == nil) {
			t.Errorf("%s: vouch = %v, want ok %v", tt.name, err, tt.ok)
			continue
		}
		if ie, isInvalid := err.(*ledger.InvalidError); err != nil && (!isInvalid || ie.Reason() != ledger.ReasonForbidden) {
			t.Errorf("%s: %v, want reason forbidden", tt.name, err)
		}
	}
}

// TestCheckSubjects: sources that would take one of sharelog's own input
// subjects, and sharelog's own user name, are refused.
func TestCheckSubjects(t *testing.T) {
	for _, tt := range []struct{ file, want string }{
		{"principals: [{name: p, roles: [producer], sources: [notify], tokenSHA256: b029abbd5f1e763850d41e1365100f2cd6111adefba7962426c49f1dc5acd510}]", "sharelog.in.notify"},
		{"principals: [{name: p, roles: [producer], sources: [http], tokenSHA256: b029abbd5f1e763850d41e1365100f2cd6111adefba7962426c49f1dc5acd510}]", "sharelog.in.http"},
		{"principals: [{name: p, roles: [producer], sources: [ack], tokenSHA256: b029abbd5f1e763850d41e1365100f2cd6111adefba7962426c49f1dc5acd510}]", "sharelog.in.ack"},
		{"principals: [{name: sharelog, roles: [auditor], tokenSHA256: b029abbd5f1e763850d41e1365100f2cd6111adefba7962426c49f1dc5acd510}]", "reserved"},
		{"principals: [{name: p, roles: [producer], sources: [casework], tokenSHA256: b029abbd5f1e763850d41e1365100f2cd6111adefba7962426c49f1dc5acd510}]", ""},
	} {
		c, err := access.Parse([]byte(tt.file))
		if err != nil {
			t.Fatal(err)
		}
		err = CheckSubjects(c)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.file, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want an error naming %s", tt.file, err, tt.want)
		}
	}
}
