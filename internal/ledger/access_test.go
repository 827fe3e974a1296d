package ledger

import "testing"

func TestMayPublish(t *testing.T) {
	casework := &Principal{Name: "casework", Roles: []Role{RoleProducer}, Sources: []string{"casework"}}
	dpo := &Principal{Name: "jane.dpo", Roles: []Role{RoleDPO}}
	admin := &Principal{Name: "registry", Roles: []Role{RoleAdmin}}
	acro := &Principal{Name: "acro", Roles: []Role{RoleRecipient}, Recipient: "acro"}
	auditor := &Principal{Name: "ico", Roles: []Role{RoleAuditor}}
	for _, tc := range []struct {
		law       string
		p         *Principal
		typ       string
		source    string
		recipient string
		want      string // error code, "" for allowed
	}{
		{"Art. 30(1)(d): a producer records its disclosures", casework, TypeDisclosure, "casework", "", ""},
		{"Art. 32: a producer publishes only as its own sources", casework, TypeDisclosure, "hr", "", EFORBIDDEN},
		{"Art. 16/17/18: a producer passes on the person's requests", casework, TypeErasure, "casework", "", ""},
		{"Art. 17(3): only the DPO records an exemption", casework, TypeExemption, "casework", "", EFORBIDDEN},
		{"Art. 17(3)(e): the DPO records a legal hold", dpo, TypeHold, "dpo", "", ""},
		{"Art. 12(3): the DPO extends the answer's time", dpo, TypeExtension, "dpo", "", ""},
		{"Art. 5(1)(f): the DPO does not forge disclosures", dpo, TypeDisclosure, "casework", "", EFORBIDDEN},
		{"Art. 30(1)(d): the admin keeps the recipient registry", admin, TypeRecipient, "registry", "", ""},
		{"Art. 32: the admin publishes no requests", admin, TypeErasure, "registry", "", EFORBIDDEN},
		{"Art. 19: a recipient acknowledges its own notices", acro, TypeNoticeAck, "acro", "acro", ""},
		{"Art. 19: a recipient cannot acknowledge another's notice", acro, TypeNoticeAck, "acro", "police-scotland", EFORBIDDEN},
		{"Art. 19: a recipient cannot raise an erasure", acro, TypeErasure, "acro", "", EFORBIDDEN},
		{"s.62: an auditor publishes nothing", auditor, TypeDisclosure, "x", "", EFORBIDDEN},
		{"Art. 19: notices are sharelog's own", dpo, TypeNotice, "dpo", "", EFORBIDDEN},
		{"Art. 19: deliveries are sharelog's own", dpo, TypeNoticeDelivery, "dpo", "", EFORBIDDEN},
		{"Art. 17: forgetting is sharelog's own", dpo, TypeSubjectForgotten, "dpo", "", EFORBIDDEN},
		{"Art. 32: nobody unauthenticated publishes", nil, TypeDisclosure, "casework", "", EUNAUTHENTICATED},
	} {
		t.Run(tc.law, func(t *testing.T) {
			err := MayPublish(tc.p, tc.typ, tc.source, tc.recipient)
			if got := ErrorCode(err); got != tc.want {
				t.Fatalf("MayPublish = %v (code %q), want code %q", err, got, tc.want)
			}
		})
	}
}

func TestMayRead(t *testing.T) {
	dpo := &Principal{Name: "jane.dpo", Roles: []Role{RoleDPO}}
	acro := &Principal{Name: "acro", Roles: []Role{RoleRecipient}, Recipient: "acro"}
	clerk := &Principal{Name: "sam", Roles: []Role{RoleClerk}}
	for _, tc := range []struct {
		law       string
		p         *Principal
		roles     []Role
		recipient string
		want      string
	}{
		{"s.62: the DPO consults a person's record", dpo, []Role{RoleDPO}, "", ""},
		{"Art. 32: a clerk does not search people", clerk, []Role{RoleDPO}, "", EFORBIDDEN},
		{"Art. 19: a recipient reads its own notices", acro, []Role{RoleRecipient, RoleDPO}, "acro", ""},
		{"Art. 19: a recipient does not read another's notices", acro, []Role{RoleRecipient, RoleDPO}, "hmrc", EFORBIDDEN},
		{"Art. 19: the DPO reads any recipient's notices", dpo, []Role{RoleRecipient, RoleDPO}, "hmrc", ""},
		{"Art. 32: no credential, no answer", nil, []Role{RoleDPO}, "", EUNAUTHENTICATED},
	} {
		t.Run(tc.law, func(t *testing.T) {
			err := MayRead(tc.p, "op", tc.roles, tc.recipient)
			if got := ErrorCode(err); got != tc.want {
				t.Fatalf("MayRead = %v (code %q), want code %q", err, got, tc.want)
			}
		})
	}
}

func TestValidatePrincipal(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Principal
		ok   bool
	}{
		{"producer with sources", Principal{Name: "a", Roles: []Role{RoleProducer}, Sources: []string{"a"}}, true},
		{"producer without sources", Principal{Name: "a", Roles: []Role{RoleProducer}}, false},
		{"no name", Principal{Roles: []Role{RoleDPO}}, false},
		{"no roles", Principal{Name: "a"}, false},
		{"unknown role", Principal{Name: "a", Roles: []Role{"root"}}, false},
		{"recipient with id", Principal{Name: "a", Roles: []Role{RoleRecipient}, Recipient: "acro"}, true},
		{"recipient without id", Principal{Name: "a", Roles: []Role{RoleRecipient}}, false},
		{"recipient id without role", Principal{Name: "a", Roles: []Role{RoleDPO}, Recipient: "acro"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidatePrincipal(tc.p); (err == nil) != tc.ok {
				t.Fatalf("ValidatePrincipal = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
