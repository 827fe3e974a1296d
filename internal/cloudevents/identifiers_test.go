package cloudevents

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/sharelog/sharelog/internal/ledger"
)

func TestIdentifiersInAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		id        string
		source    string
		ext       map[string]any
		extra     []attr
		wantField string // "" for no problem
	}{
		// True positives: the identifier where it stands whole, whatever
		// the case and the separators around and inside it.
		{"long id as whole tokens, any case", "DBS-000123456", "/export/dbs-000123456/x", nil, nil, "source"},
		{"long id with other separators", "DBS-000123456", "/export/dbs_000123456.json", nil, nil, "source"},
		{"NHS number with spaces, in an id with hyphens", "943 476 5919", "/s", map[string]any{"ref": "case-943-476-5919"}, nil, "ref"},
		{"email address in a source", "alice@example.org", "mailto:Alice@Example.org", nil, nil, "source"},
		{"number as a whole token", "000777", "/s/000777", nil, nil, "source"},
		{"the whole value", "C-77812", "c-77812", nil, nil, "source"},
		{"in an extension", "C-77812", "/s", map[string]any{"caseref": "c-77812"}, nil, "caseref"},
		{"in a numeric extension", "77812", "/s", map[string]any{"seq": int32(77812)}, nil, "seq"},
		{"in a transport header", "C-77812", "/s", nil, []attr{{"Nats-Msg-Id", "C-77812-1"}}, "Nats-Msg-Id"},
		{"non-ASCII letters", "Zoë-Ünal-7", "/people/zoë-ünal-7", nil, nil, "source"},
		// False positives the rule must not make.
		{"long id absent", "DBS-000123456", "/export/dbs-000123457", nil, nil, ""},
		{"inside a longer token", "12345", "/s/evt-123456", nil, nil, ""},
		{"tokens not adjacent", "C-77812", "/c/x/77812", nil, nil, ""},
		{"part of the identifier only", "DBS-000123456", "/dbs/export", nil, nil, ""},
		{"a year as identifier, an id with the year", "2026", "/s", map[string]any{"caseref": "disc-2026-000777"}, nil, ""},
		{"a word as identifier, the same word as source", "web", "web", nil, nil, ""},
		{"a short number", "42", "/systems/42/export", nil, nil, ""},
		{"short with punctuation", "a-1", "/x/a-1/y", nil, nil, ""},
		{"short letters", "jo", "/jobs", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := event.New()
			e.SetID("evt-1")
			e.SetSource(tt.source)
			e.SetType(ledger.TypeDisclosure)
			for k, v := range tt.ext {
				e.SetExtension(k, v)
			}
			probs := identifiersInAttributes([]string{tt.id}, eventAttrs(&e), tt.extra)
			switch {
			case tt.wantField == "" && len(probs) > 0:
				t.Errorf("problems = %v, want none", probs)
			case tt.wantField != "" && (len(probs) != 1 || probs[0].Field != tt.wantField || probs[0].Reason != ledger.ReasonIdentifierHeader):
				t.Errorf("problems = %v, want one %s at %s", probs, ledger.ReasonIdentifierHeader, tt.wantField)
			}
		})
	}
}

// TestDataBase64 checks that JSON data sent as data_base64 is accepted and
// stored as plain JSON data, the same as when sent as data.
func TestDataBase64(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	body := fixtureBody(t, "valid/disclosure-uk-gdpr.json")
	want, err := d.DecodeStructured(body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	enc, _ := json.Marshal(base64.StdEncoding.EncodeToString(m["data"]))
	m["data_base64"] = enc
	delete(m, "data")
	b64, _ := json.Marshal(m)
	got, err := d.DecodeStructured(b64)
	if err != nil {
		t.Fatalf("data_base64: %v", err)
	}
	if string(got.Raw) != string(want.Raw) {
		t.Errorf("Raw = %s, want %s", got.Raw, want.Raw)
	}
}

// TestRefusedEarlyReportsNoIdentifier checks that an event refused before
// its data is decoded (for its attributes, or its data's form) does not
// report a source or id that holds an identifier its data names: they are
// echoed to producers and name the subject of the rejection in
// SHARELOG_REJECTED.
func TestRefusedEarlyReportsNoIdentifier(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	const person = "DBS-000123456"
	data := `{"subjects":[{"scheme":"dbs-ref","id":"` + person + `"}],"recipient":"acro","categories":"not-an-array"}`
	tests := []struct {
		name, source, extra string
		wantSource          string
	}{
		{"attribute problem, identifier in source", "/people/dbs-000123456", `"subject":"",`, ""},
		{"data problem, identifier in source", "/people/dbs-000123456", ``, ""},
		{"attribute problem, clean source", "/systems/case-management", `"subject":"",`, "/systems/case-management"},
		{"data problem, clean source", "/systems/case-management", ``, "/systems/case-management"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := `{"specversion":"1.0","id":"e-1","source":"` + tt.source + `","type":"` + ledger.TypeDisclosure + `",` + tt.extra + `"data":` + data + `}`
			got := d.DecodeNATS(map[string][]string{"Content-Type": {MediaTypeStructured}}, []byte(body))
			if got.Err == nil {
				t.Fatal("accepted")
			}
			if got.Source != tt.wantSource {
				t.Errorf("Source = %q, want %q (refused: %v)", got.Source, tt.wantSource, got.Err)
			}
		})
	}
}

// TestIdentifierCasesFromIssue13 decodes the events the issue reported as
// refused wrongly, and events that must still be refused.
func TestIdentifierCasesFromIssue13(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	event := func(id, source, person string) []byte {
		return []byte(`{"specversion":"1.0","id":"` + id + `","source":"` + source + `","type":"` + ledger.TypeDisclosure + `","data":{` +
			`"subjects":[{"scheme":"case","id":"` + person + `"}],"recipient":"acro","categories":["user.name"],` +
			`"purpose":"safeguarding.disclosure_check","lawfulBasis":"art6-1-c","regime":"uk-gdpr","disclosedAt":"2026-01-01T00:00:00Z"}}`)
	}
	tests := []struct {
		name, id, source, person string
		refused                  string // the attribute, or "" for accepted
	}{
		{"a year as identifier, the year in the id", "disc-2026-000777", "/systems/casework", "2026", ""},
		{"a word as identifier, the word as source", "disc-1", "web", "web", ""},
		{"a number inside a longer number", "disc-1234567", "/s", "123456", ""},
		{"the identifier in the id", "disc-C-77812-1", "/s", "C-77812", "id"},
		{"the identifier in the source, other separators", "disc-1", "/people/c_77812", "C-77812", "source"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := d.DecodeStructured(event(tt.id, tt.source, tt.person))
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			checkFirst(t, err, string(ledger.ReasonIdentifierHeader), tt.refused)
		})
	}
}
