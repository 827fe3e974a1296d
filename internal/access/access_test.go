package access

import (
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

func TestParseAndAuthenticate(t *testing.T) {
	tokCase, shaCase := NewToken()
	tokDPO, shaDPO := NewToken()
	file := `principals:
  - name: casework
    roles: [producer]
    sources: [casework]
    tokenSHA256: ` + shaCase + `
  - name: jane.dpo
    roles: [dpo]
    tokenSHA256: ` + shaDPO + `
  - name: acro
    roles: [recipient]
    recipient: acro
    certificate: acro.example
`
	c, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Token(tokCase); p == nil || p.Name != "casework" || !p.Has(ledger.RoleProducer) {
		t.Fatalf("Token(casework) = %+v", p)
	}
	if p := c.Token(tokDPO); p == nil || p.Name != "jane.dpo" {
		t.Fatalf("Token(dpo) = %+v", p)
	}
	if p := c.Token(tokDPO + "x"); p != nil {
		t.Fatalf("a wrong token authenticated %q", p.Name)
	}
	if p := c.Token(shaDPO); p != nil {
		t.Fatal("the hash itself authenticated")
	}
	if p := c.Certificate("acro.example"); p == nil || p.Recipient != "acro" {
		t.Fatalf("Certificate = %+v", p)
	}
	if p := c.SourceOwner("casework"); p == nil || p.Name != "casework" {
		t.Fatalf("SourceOwner = %+v", p)
	}
	if c.SourceOwner("hr") != nil {
		t.Fatal("an unlisted source has an owner")
	}
}

func TestParseRefuses(t *testing.T) {
	_, sha := NewToken()
	_, sha2 := NewToken()
	for _, tc := range []struct{ name, file, want string }{
		{"empty", `principals: []`, "no principals"},
		{"unknown field", "principals:\n  - name: a\n    roles: [dpo]\n    token: x\n", "field token not found"},
		{"unknown role", "principals:\n  - name: a\n    roles: [root]\n    tokenSHA256: " + sha + "\n", "unknown role"},
		{"no credential", "principals:\n  - name: a\n    roles: [dpo]\n", "no credential"},
		{"bad hash", "principals:\n  - name: a\n    roles: [dpo]\n    tokenSHA256: abc\n", "64 hex digits"},
		{"same hash", "principals:\n  - name: a\n    roles: [dpo]\n    tokenSHA256: " + sha + "\n  - name: b\n    roles: [dpo]\n    tokenSHA256: " + sha + "\n", "another principal's"},
		{"same name", "principals:\n  - name: a\n    roles: [dpo]\n    tokenSHA256: " + sha + "\n  - name: a\n    roles: [dpo]\n    tokenSHA256: " + sha2 + "\n", "listed twice"},
		{"same source", "principals:\n  - name: a\n    roles: [producer]\n    sources: [x]\n    tokenSHA256: " + sha + "\n  - name: b\n    roles: [producer]\n    sources: [x]\n    tokenSHA256: " + sha2 + "\n", "belongs to principal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
