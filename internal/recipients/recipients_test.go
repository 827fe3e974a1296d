package recipients

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// one builds a file with a single recipient whose body lines are given.
func one(lines ...string) string {
	return "recipients:\n  - " + strings.Join(lines, "\n    ") + "\n"
}

const okBody = "id: acro\n    name: ACRO\n    role: competent-authority\n    channel: {type: nats}"

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in        string
		wantField string // Field of the first problem
		wantIn    string // substring of the error's text
	}{
		{"empty file", "", "", "the file is empty"},
		{"syntax error", "recipients: [\n", "", "line"},
		{"two documents", one(okBody) + "---\nrecipients: []\n", "", "line 6: only one YAML document"},
		{"top level is a list", "- id: acro\n", "", "line 1: the top level must be a mapping"},
		{"unknown top-level field", "recipient: []\n", "recipient", `line 1: unknown top-level field "recipient"`},
		{"recipients not a list", "recipients: {id: acro}\n", "recipients", "line 1: must be a list"},
		{"recipients null", "recipients:\n", "recipients", "must be a list"},
		{"entry not a mapping", "recipients:\n  - acro\n", "recipients[0]", "line 2: must be a mapping"},
		{"unknown field", one(okBody, "nmae: ACRO"), "recipients[0]", `line 6: unknown field "nmae" (id "acro")`},
		{"snake case is unknown", one(okBody, "sla_days: 3"), "recipients[0]", `unknown field "sla_days"`},
		{"unknown channel field", one("id: acro", "name: ACRO", "role: processor", "channel: {type: webhook, url: 'https://x.example', secret: s}"),
			"recipients[0].channel", `line 5: unknown field "secret" (id "acro")`},
		{"channel not a mapping", one("id: acro", "name: ACRO", "role: processor", "channel: nats"), "recipients[0].channel", "line 5: must be a mapping"},
		{"duplicate yaml key", one(okBody, "id: acro2"), "recipients[0]", `"id" already defined`},
		{"slaDays not a number", one(okBody, "slaDays: thirty"), "recipients[0]", "line 6: cannot unmarshal"},
		{"missing id", one("name: ACRO", "role: processor", "channel: {type: nats}"), "recipients[0].id", "is required"},
		{"missing name", one("id: acro", "role: processor", "channel: {type: nats}"), "recipients[0].name", `line 2: is required (id "acro")`},
		{"missing role", one("id: acro", "name: ACRO", "channel: {type: nats}"), "recipients[0].role", "is required"},
		{"missing channel", one("id: acro", "name: ACRO", "role: processor"), "recipients[0].channel.type", "is required"},
		{"uppercase id", one("id: ACRO", "name: ACRO", "role: processor", "channel: {type: nats}"), "recipients[0].id", `line 2: must be a lowercase slug (a-z, 0-9, single hyphens between, at most 64 characters), got "ACRO"`},
		{"double hyphen id", one("id: a--b", "name: A", "role: processor", "channel: {type: nats}"), "recipients[0].id", "must be a lowercase slug"},
		{"trailing hyphen id", one("id: ab-", "name: A", "role: processor", "channel: {type: nats}"), "recipients[0].id", "must be a lowercase slug"},
		{"id too long", one("id: "+strings.Repeat("a", 65), "name: A", "role: processor", "channel: {type: nats}"), "recipients[0].id", "at most 64 characters"},
		{"bad role", one("id: acro", "name: ACRO", "role: police", "channel: {type: nats}"), "recipients[0].role",
			`line 4: must be one of controller, processor, joint-controller, competent-authority, got "police" (id "acro")`},
		{"bad regime", one(okBody, "regime: gdpr"), "recipients[0].regime", `must be one of uk-gdpr, eu-gdpr, dpa-part3, dpa-part4, got "gdpr"`},
		{"lowercase country", one(okBody, "country: gb"), "recipients[0].country", `line 6: must be an ISO 3166-1 alpha-2 country code in capitals, such as GB, got "gb"`},
		{"UK is not a country code", one(okBody, "country: UK"), "recipients[0].country", `got "UK"`},
		{"bad channel type", one("id: acro", "name: ACRO", "role: processor", "channel: {type: email}"), "recipients[0].channel.type",
			`must be one of nats, webhook, manual, got "email"`},
		{"webhook without url", one("id: acro", "name: ACRO", "role: processor", "channel: {type: webhook}"), "recipients[0].channel.url", "is required for a webhook channel"},
		{"webhook ftp url", one("id: acro", "name: ACRO", "role: processor", "channel: {type: webhook, url: 'ftp://x.example/'}"), "recipients[0].channel.url", "must be an absolute http or https URL"},
		{"webhook relative url", one("id: acro", "name: ACRO", "role: processor", "channel: {type: webhook, url: /notices}"), "recipients[0].channel.url", "must be an absolute http or https URL"},
		{"webhook httpx scheme", one("id: acro", "name: ACRO", "role: processor", "channel: {type: webhook, url: 'httpx://x.example/'}"), "recipients[0].channel.url", "must be an absolute http or https URL"},
		{"url on a nats channel", one("id: acro", "name: ACRO", "role: processor", "channel: {type: nats, url: 'https://x.example/'}"), "recipients[0].channel.url", "only a webhook channel has a url"},
		{"negative slaDays", one(okBody, "slaDays: -1"), "recipients[0].slaDays", "must be at least 0, got -1"},
		{"slaDays over a year", one(okBody, "slaDays: 400"), "recipients[0].slaDays", "must be at most 366, got 400"},
		{"name too long", one("id: acro", "name: "+strings.Repeat("n", 201), "role: processor", "channel: {type: nats}"), "recipients[0].name", `must be at most 200 characters (id "acro")`},
		{"duplicate id", one(okBody) + "  - " + okBody + "\n", "recipients[1].id", `line 6: duplicate id "acro" (first at recipients[0], line 2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := Parse(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("Parse: got %d recipients and no error, want an error containing %q", len(rs), tt.wantIn)
			}
			if got := ledger.ErrorCode(err); got != ledger.EINVALID {
				t.Errorf("ErrorCode: got %q, want %q (err %v)", got, ledger.EINVALID, err)
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error: got %q, want it to contain %q", err, tt.wantIn)
			}
			var ie *ledger.InvalidError
			if !errors.As(err, &ie) || len(ie.Problems) == 0 {
				t.Fatalf("error: got %T %v, want a *ledger.InvalidError with problems", err, err)
			}
			if got := ie.Problems[0].Field; got != tt.wantField {
				t.Errorf("first problem's field: got %q, want %q (err %v)", got, tt.wantField, err)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	in := `recipients:
  - id: acro
    name: ACRO
    role: police
    country: gb
    channel: {type: nats}
  - id: Bad
    name: B
    role: processor
    channel: {type: webhook}
`
	_, err := Parse(strings.NewReader(in))
	var ie *ledger.InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("Parse: got %v, want a *ledger.InvalidError", err)
	}
	var got []string
	for _, p := range ie.Problems {
		got = append(got, p.Field)
	}
	want := []string{"recipients[0].role", "recipients[0].country", "recipients[1].id", "recipients[1].channel.url"}
	if !slices.Equal(got, want) {
		t.Errorf("problem fields: got %q, want %q", got, want)
	}
}

func TestParseValid(t *testing.T) {
	t.Parallel()
	in := `# a comment
recipients:
  - id: acro
    name: ACRO Criminal Records Office
    role: competent-authority
    country: GB
    regime: dpa-part3
    channel: {type: nats}
    contact: dpo@acro.example
    slaDays: 30
    inquiryAuthority: false
  - id: dxc
    name: "DXC & Co"
    role: processor
    channel:
      type: webhook
      url: https://hooks.example.com/sharelog
  - id: ico
    name: Information Commissioner's Office
    role: controller
    country: GB
    channel: {type: manual}
    inquiryAuthority: true
`
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := []ledger.Recipient{
		{ID: "acro", Name: "ACRO Criminal Records Office", Role: ledger.RoleCompetentAuthority, Country: "GB", Regime: ledger.RegimeDPAPart3,
			Channel: ledger.Channel{Type: "nats"}, Contact: "dpo@acro.example", SLADays: 30},
		{ID: "dxc", Name: "DXC & Co", Role: ledger.RoleProcessor, Channel: ledger.Channel{Type: "webhook", URL: "https://hooks.example.com/sharelog"}},
		{ID: "ico", Name: "Information Commissioner's Office", Role: ledger.RoleController, Country: "GB", Channel: ledger.Channel{Type: "manual"}, InquiryAuthority: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseEmptyList(t *testing.T) {
	t.Parallel()
	got, err := Parse(strings.NewReader("recipients: []\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got == nil || len(got) != 0 {
		t.Errorf("Parse: got %#v, want an empty, non-nil slice", got)
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()
	in := "recipients: []\n#" + strings.Repeat("x", MaxFileSize)
	_, err := Parse(strings.NewReader(in))
	if got := ledger.ErrorCode(err); got != ledger.ETOOLARGE {
		t.Errorf("ErrorCode: got %q, want %q (err %v)", got, ledger.ETOOLARGE, err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "recipients.yaml")
	if err := os.WriteFile(path, []byte(one(okBody)), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(rs) != 1 || rs[0].ID != "acro" {
		t.Errorf("Load: got %+v, want one recipient acro", rs)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load missing file: got %v, want an error matching fs.ErrNotExist", err)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(one(okBody, "colour: red")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	if got := ledger.ErrorCode(err); got != ledger.EINVALID {
		t.Errorf("Load bad file: code got %q, want %q", got, ledger.EINVALID)
	}
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), `unknown field "colour"`) {
		t.Errorf("Load bad file: got %v, want the path and the unknown field named", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := ledger.Recipient{ID: "a", Name: "A", Role: ledger.RoleProcessor, Channel: ledger.Channel{Type: "manual"}}
	if err := Validate([]ledger.Recipient{ok}); err != nil {
		t.Errorf("Validate valid: got %v, want nil", err)
	}
	err := Validate([]ledger.Recipient{ok, ok})
	want := `recipients[1].id: duplicate id "a" (first at recipients[0])`
	if err == nil || err.Error() != want {
		t.Errorf("Validate duplicate: got %v, want %q", err, want)
	}
}

// TestMirrorMatchesLedger keeps the YAML mirror types in step with the
// ledger's: same field names, in the same order, with YAML names equal to
// JSON names and the same types.
func TestMirrorMatchesLedger(t *testing.T) {
	t.Parallel()
	pairs := []struct{ mirror, ledger reflect.Type }{
		{reflect.TypeFor[recipientYAML](), reflect.TypeFor[ledger.Recipient]()},
		{reflect.TypeFor[channelYAML](), reflect.TypeFor[ledger.Channel]()},
	}
	for _, p := range pairs {
		if got, want := p.mirror.NumField(), p.ledger.NumField(); got != want {
			t.Errorf("%v has %d fields, %v has %d", p.mirror, got, p.ledger, want)
			continue
		}
		for i := range p.ledger.NumField() {
			m, l := p.mirror.Field(i), p.ledger.Field(i)
			if m.Name != l.Name {
				t.Errorf("%v field %d: got %s, want %s", p.mirror, i, m.Name, l.Name)
			}
			if got, want := m.Tag.Get("yaml"), jsonName(l); got != want {
				t.Errorf("%v.%s yaml name: got %q, want the JSON name %q", p.mirror, m.Name, got, want)
			}
			if m.Type.Kind() != reflect.Struct && m.Type != l.Type {
				t.Errorf("%v.%s type: got %v, want %v", p.mirror, m.Name, m.Type, l.Type)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(one(okBody)))
	f.Add([]byte("recipients: []\n"))
	f.Add([]byte("recipients:\n  - &a {id: x}\n  - *a\n"))
	if b, err := os.ReadFile("../../deploy/recipients.example.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := Parse(strings.NewReader(string(b)))
		if err != nil {
			if ledger.ErrorCode(err) == ledger.EINTERNAL {
				t.Fatalf("Parse: internal error %v", err)
			}
			return
		}
		if err := Validate(rs); err != nil {
			t.Fatalf("Parse accepted recipients that Validate refuses: %v", err)
		}
	})
}
