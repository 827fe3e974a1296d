package cloudevents

import (
	"encoding/json"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// rawDuplicate returns the path of a duplicated key in an event's Raw, or "".
func rawDuplicate(raw []byte) string {
	if bc := checkBody(raw, nil); bc.envDup != nil {
		return bc.envDup.Field
	}
	if p := firstDuplicate(raw, ""); p != nil {
		return p.Field
	}
	return ""
}

// TestDuplicateKeys checks the refusal of each duplicate-key fixture in
// detail, in every mode, that the JSON Schema could not have seen the
// duplicate on its own, and that the one decode of the data into its Go type
// refuses it.
func TestDuplicateKeys(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	tests := []struct {
		file        string
		detail      string // in structured mode
		binary      string // in binary mode, if different
		source, id  string
		blindChecks bool // the schema and the Go type each accept the data
	}{
		{file: "disclosure-duplicate-key.json", detail: `key "justification" appears twice in one object`,
			source: "/systems/police-disclosure-unit", id: "bad-disclosure-duplicate-key", blindChecks: true},
		{file: "disclosure-duplicate-key-nested.json", detail: `key "id" appears twice in one object`,
			source: "/systems/police-disclosure-unit", id: "bad-disclosure-duplicate-key-nested", blindChecks: true},
		{file: "disclosure-duplicate-key-escaped.json", detail: `key "justification" appears twice in one object`,
			source: "/systems/police-disclosure-unit", id: "bad-disclosure-duplicate-key-escaped", blindChecks: true},
		{file: "duplicate-attribute.json", detail: `key "type" appears twice in one object`,
			source: "/systems/police-disclosure-unit", id: "bad-duplicate-attribute"},
		{file: "duplicate-attribute-case.json", detail: `keys "Data" and "data" name the same attribute: attribute names are read regardless of case`,
			binary: "an extension attribute must not be named data (in any case): it would be a second data member",
			source: "/systems/police-disclosure-unit", id: "bad-duplicate-attribute-case"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			body := fixtureBody(t, "invalid/"+tt.file)
			ev, source, id, err := d.decodeStructured(body, nil)
			if ev != nil {
				t.Fatalf("accepted: Raw %s", ev.Raw)
			}
			ie := invalidErr(t, err)
			field := ie.Problems[0].Field
			if len(ie.Problems) != 1 || ie.Problems[0].Detail != tt.detail || ie.Problems[0].Reason != ledger.ReasonMalformed {
				t.Errorf("problems = %v, want one: malformed, %s", ie.Problems, tt.detail)
			}
			if source != tt.source || id != tt.id {
				t.Errorf("source, id = %q, %q; want %q, %q", source, id, tt.source, tt.id)
			}
			// No value is quoted.
			for _, v := range []string{"Routine check", "Request under DPA", "DBS-000", "org.sharelog", `"x"`} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error %q quotes a value", err)
				}
			}

			if attrs, data, ok := binaryForm(body); ok {
				want := tt.detail
				if tt.binary != "" {
					want = tt.binary
				}
				for mode, err := range map[string]error{
					"nats": func() error { _, err := d.DecodeMessage(natsBinary(attrs), data); return err }(),
					"http": decodeOne(t, d, httpBinary(attrs, data)).Err,
				} {
					ie := invalidErr(t, err)
					if ie.Problems[0].Detail != want || ie.Problems[0].Field != field {
						t.Errorf("%s binary: problems = %v, want %s", mode, ie.Problems, want)
					}
				}
			}

			if tt.blindChecks {
				var ev struct {
					Type string          `json:"type"`
					Data json.RawMessage `json:"data"`
				}
				if err := json.Unmarshal(body, &ev); err != nil {
					t.Fatal(err)
				}
				if p := schemaPath(t, ev.Type, ev.Data); len(p) > 0 {
					t.Errorf("the JSON Schema alone refuses: %v", p)
				}
				if p := goPath(d, ev.Type, ev.Data); len(p) != 1 || p[0].Detail != tt.detail || p[0].Field != field {
					t.Errorf("the Go decode of the data: problems %v, want one: %s at %s", p, tt.detail, field)
				}
			}
		})
	}

	t.Run("id twice", func(t *testing.T) {
		body := strings.Replace(string(fixtureBody(t, "valid/disclosure-uk-gdpr.json")), `"id": "evt-000101",`, `"id": "evt-000101", "id": "evt-000102",`, 1)
		_, source, id, err := d.decodeStructured([]byte(body), nil)
		checkFirst(t, err, string(ledger.ReasonMalformed), "id")
		if source != "" || id != "" {
			t.Errorf("source, id = %q, %q; want both empty: which id is meant cannot be told", source, id)
		}
	})
	t.Run("extension in two cases", func(t *testing.T) {
		body := strings.Replace(string(fixtureBody(t, "valid/disclosure-extensions.json")), `"partitionkey"`, `"partitionKey": "x", "partitionkey"`, 1)
		_, err := d.DecodeStructured([]byte(body))
		checkFirst(t, err, string(ledger.ReasonMalformed), "partitionkey")
	})
	t.Run("deep in data", func(t *testing.T) {
		body := strings.Replace(string(fixtureBody(t, "valid/disclosure-dpa-part3.json")), `"digest": "sha256:9f2c"`, `"digest": "sha256:9f2c", "digest": "sha256:0000"`, 1)
		_, err := d.DecodeStructured([]byte(body))
		checkFirst(t, err, string(ledger.ReasonMalformed), "data.records[0].digest")
	})
}

// TestAmbiguousHeaders checks that a binary-mode message whose ce-* headers
// (or Content-Type) come twice in different cases, or that carries a ce-data
// header, is refused: which of two headers a map gives first is not defined.
func TestAmbiguousHeaders(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	attrs, data, _ := binaryForm(fixtureBody(t, "valid/disclosure-uk-gdpr.json"))
	tests := []struct {
		name       string
		edit       func(h map[string][]string)
		body       []byte
		wantReason ledger.Reason
		wantField  string
	}{
		{"ce-id twice", func(h map[string][]string) { h["CE-ID"] = []string{"evt-other"} }, data, ledger.ReasonMalformed, "id"},
		{"ce-time twice", func(h map[string][]string) { h["Ce-Time"] = []string{"2025-03-04T10:15:00Z"} }, data, ledger.ReasonMalformed, "time"},
		{"Content-Type twice", func(h map[string][]string) {
			h["Content-Type"] = []string{"application/json"}
			h["content-type"] = []string{"application/json"}
		}, data, ledger.ReasonMalformed, "Content-Type"},
		{"structured Content-Type twice", func(h map[string][]string) {
			clear(h)
			h["Content-Type"] = []string{MediaTypeStructured}
			h["CONTENT-TYPE"] = []string{"text/plain"}
		}, fixtureBody(t, "valid/disclosure-uk-gdpr.json"), ledger.ReasonMalformed, "Content-Type"},
		{"ce-data", func(h map[string][]string) { h["ce-data"] = []string{"x"} }, data, ledger.ReasonMalformed, "data"},
		{"ce-Data", func(h map[string][]string) { h["ce-Data"] = []string{"x"} }, data, ledger.ReasonMalformed, "data"},
		{"other headers twice are fine", func(h map[string][]string) { h["nats-msg-id"] = []string{"m-2"} }, data, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := natsBinary(attrs)
			tt.edit(h)
			for range 20 { // map order varies from call to call
				ev, err := d.DecodeMessage(h, tt.body)
				if tt.wantReason == "" {
					if err != nil {
						t.Fatal(err)
					}
					continue
				}
				if ev != nil {
					t.Fatalf("accepted: Raw %s", ev.Raw)
				}
				checkFirst(t, err, string(tt.wantReason), tt.wantField)
			}
		})
	}
}

// TestKeyCaseVariants checks that a data key differing from a known one only
// in case is refused by name, at every depth of every valid fixture: JSON
// Schema property names are case-sensitive and every object is closed.
func TestKeyCaseVariants(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	n := 0
	for _, f := range validFixtures(t) {
		var ev map[string]any
		if err := json.Unmarshal(f.body, &ev); err != nil {
			t.Fatal(err)
		}
		for _, m := range mutations(ev["data"], "") {
			path, op, _ := strings.Cut(m.name, ":")
			if op != "capitalise" {
				continue
			}
			i := strings.LastIndexByte(path, '.')
			want := "data" + path[:i+1] + strings.ToUpper(path[i+1:i+2]) + path[i+2:]
			ev2 := cloneJSON(t, ev)
			ev2["data"] = m.apply(cloneJSON(t, ev)["data"])
			body, _ := json.Marshal(ev2)
			_, err := d.DecodeStructured(body)
			var found bool
			if err != nil {
				for _, p := range invalidErr(t, err).Problems {
					found = found || p.Reason == ledger.ReasonInvalidData && p.Field == want && p.Detail == "unknown field: not allowed"
				}
			}
			if !found {
				t.Errorf("%s %s: error %v, want %s unknown", f.File, m.name, err, want)
			}
			n++
		}
	}
	if n < 100 {
		t.Errorf("only %d keys tried", n)
	}
}

// TestNotUTF8 checks that JSON text that is not UTF-8, and in binary mode an
// attribute value that is not, is refused: json.Valid accepts such text, but
// the JSON Schema (json-iterator) and the Go type (encoding/json) would read
// its strings differently, and Raw would not be valid JSON text.
func TestNotUTF8(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	valid := fixtureBody(t, "valid/disclosure-dpa-part3.json")
	for name, body := range map[string]string{
		"byte in data":        strings.Replace(string(valid), `"PC 1234 J. Smith"`, "\"PC 1234 \xff Smith\"", 1),
		"surrogate in data":   strings.Replace(string(valid), `"PC 1234 J. Smith"`, `"PC 1234 \ud800 Smith"`, 1),
		"byte in id":          strings.Replace(string(valid), `"evt-000102"`, "\"evt-\xff\"", 1),
		"byte in a data key":  strings.Replace(string(valid), `"disclosedBy"`, "\"disclosedBy\xff\"", 1),
		"surrogate in a name": strings.Replace(string(valid), `"specversion"`, `"specversion\udc00"`, 1),
	} {
		t.Run(name, func(t *testing.T) {
			if body == string(valid) {
				t.Fatal("fixture changed: no replacement made")
			}
			_, err := d.DecodeStructured([]byte(body))
			checkFirst(t, err, string(ledger.ReasonMalformed), "")
		})
	}

	attrs, data, _ := binaryForm(valid)
	t.Run("binary data", func(t *testing.T) {
		bad := []byte(strings.Replace(string(data), `"PC 1234 J. Smith"`, "\"PC 1234 \xff Smith\"", 1))
		_, err := d.DecodeMessage(natsBinary(attrs), bad)
		checkFirst(t, err, string(ledger.ReasonMalformed), "data")
	})
	for _, attr := range []string{"id", "source", "type"} {
		for _, v := range []string{"x\xffy", "x%FFy"} {
			t.Run("binary "+attr+" "+v, func(t *testing.T) {
				a := maps.Clone(attrs)
				a[attr] = v
				_, err := d.DecodeMessage(natsBinary(a), data)
				checkFirst(t, err, string(ledger.ReasonMalformed), attr)
				if err != nil && strings.Contains(err.Error(), "x\xffy") {
					t.Errorf("error %q quotes the value", err)
				}
			})
		}
	}
}

// TestDataDecodedInTheRead checks that the data of a structured event whose
// type attribute comes before its data is decoded in the one read of the
// event that also checks its text, and to the value a separate decode of the
// data gives.
func TestDataDecodedInTheRead(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	for i, body := range genDisclosures(1, 0, 16, 200_000) {
		bc := checkBody(body, d.decodeDataFrom)
		if bc.data == nil || bc.dataType != ledger.TypeDisclosure {
			t.Fatalf("event %d: data not decoded in the read (type %q)", i, bc.dataType)
		}
		want, probs := d.decodeData(bc.dataType, bc.dataText)
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		if !reflect.DeepEqual(bc.data, want) {
			t.Errorf("event %d: decoded in the read %+v, separately %+v", i, bc.data, want)
		}
	}
	// Data before type, and data that does not decode: not decoded in the
	// read, and the event's outcome is as without it (TestGoldenOutcomes).
	body := []byte(`{"data":{"notice":"n-1","outcome":"done"},"specversion":"1.0","id":"a","source":"s","type":"org.sharelog.notice.ack.v1","time":"2025-01-01T00:00:00Z"}`)
	if bc := checkBody(body, d.decodeDataFrom); bc.data != nil || !bc.valid {
		t.Errorf("data before type: %+v", bc)
	}
	body = []byte(`{"specversion":"1.0","id":"a","source":"s","type":"org.sharelog.notice.ack.v1","time":"2025-01-01T00:00:00Z","data":{"notice":"n-1","outcome":null}}`)
	if bc := checkBody(body, d.decodeDataFrom); bc.data != nil || !bc.valid || !bc.object {
		t.Errorf("data that does not decode: %+v", bc)
	}
}
