package cloudevents

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestSpecConstraints holds the decoder to the CloudEvents 1.0 core
// specification and JSON format (../shared/reference/cloudevents), one case
// per constraint, in every mode the case can be written in: HTTP binary,
// structured and batch, NATS binary and structured. A refused event lists
// every problem, each naming its attribute.
func TestSpecConstraints(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	var fixture struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(fixtureBody(t, "valid/disclosure-uk-gdpr.json"), &fixture); err != nil {
		t.Fatal(err)
	}
	base := func() map[string]any {
		return map[string]any{
			"specversion": "1.0", "id": "disc-2026-000777", "source": "/systems/case-management",
			"type": ledger.TypeDisclosure, "time": "2026-01-05T10:00:00Z", "datacontenttype": "application/json",
		}
	}
	const absent = "\x00absent"
	nc := func(f string) reasonField { return reasonField{ledger.ReasonNotCloudEvent, f} }
	tests := []struct {
		name string
		set  map[string]any // attributes changed from base; absent deletes one
		// binaryOnly, structuredOnly limit the modes: a JSON null or number
		// has no binary form, and binary header names are case-insensitive.
		structuredOnly, binaryOnly bool
		want                       []reasonField // nil: accepted
	}{
		{name: "time absent is optional", set: map[string]any{"time": absent}},
		{name: "datacontenttype absent", set: map[string]any{"datacontenttype": absent}},
		{name: "datacontenttype null is absent", set: map[string]any{"datacontenttype": nil}, structuredOnly: true},
		{name: "time, subject and an extension null are absent", set: map[string]any{"time": nil, "subject": nil, "traceparent": nil}, structuredOnly: true},
		{name: "a lowercase extension", set: map[string]any{"caseref": "abc"}},
		{name: "a numeric and a boolean extension", set: map[string]any{"seq": 7, "replay": true}, structuredOnly: true},
		{name: "dataschema empty", set: map[string]any{"dataschema": ""}, want: []reasonField{nc("dataschema")}},
		{name: "subject empty", set: map[string]any{"subject": ""}, want: []reasonField{nc("subject")}},
		{name: "subject set", set: map[string]any{"subject": "x"}, want: []reasonField{{ledger.ReasonIdentifierHeader, "subject"}}},
		{name: "id empty", set: map[string]any{"id": ""}, want: []reasonField{nc("id")}},
		{name: "source empty", set: map[string]any{"source": ""}, want: []reasonField{nc("source")}},
		{name: "type empty", set: map[string]any{"type": ""}, want: []reasonField{nc("type")}},
		{name: "id numeric is about id", set: map[string]any{"id": 42}, structuredOnly: true, want: []reasonField{nc("id")}},
		{name: "source not a string", set: map[string]any{"source": true}, structuredOnly: true, want: []reasonField{nc("source")}},
		{name: "extension name with capitals", set: map[string]any{"caseRef": "abc"}, structuredOnly: true, want: []reasonField{nc("caseRef")}},
		{name: "extension name with an underscore", set: map[string]any{"case_ref": "abc"}, want: []reasonField{nc("case_ref")}},
		{name: "extension a negative integer", set: map[string]any{"seq": -7}, structuredOnly: true},
		{name: "extension a fraction", set: map[string]any{"seq": 1.5}, structuredOnly: true, want: []reasonField{nc("seq")}},
		{name: "extension over 32 bits", set: map[string]any{"seq": int64(1) << 31}, structuredOnly: true, want: []reasonField{nc("seq")}},
		{name: "data and data_base64 both", set: map[string]any{"data_base64": "e30="}, structuredOnly: true, want: []reasonField{nc("data_base64")}},
		{name: "data_base64 null is absent", set: map[string]any{"data_base64": nil}, structuredOnly: true},
		{name: "extension an object", set: map[string]any{"caseref": map[string]any{}}, structuredOnly: true, want: []reasonField{nc("caseref")}},
		{name: "extension an array", set: map[string]any{"caseref": []any{}}, structuredOnly: true, want: []reasonField{nc("caseref")}},
		{name: "id absent", set: map[string]any{"id": absent}, want: []reasonField{nc("id")}},
		{name: "id null is absent", set: map[string]any{"id": nil}, structuredOnly: true, want: []reasonField{nc("id")}},
		{name: "every problem listed", set: map[string]any{"id": 42, "subject": "", "source": absent, "dataschema": "", "caseRef": "x"}, structuredOnly: true,
			want: []reasonField{nc("caseRef"), nc("dataschema"), nc("id"), nc("source"), nc("subject")}},
		{name: "every unreadable attribute listed", set: map[string]any{"time": "yesterday", "source": "%zz"}, want: []reasonField{nc("source"), nc("time")}},
		{name: "every problem listed, binary", set: map[string]any{"id": "", "subject": "", "source": absent, "dataschema": ""}, binaryOnly: true,
			want: []reasonField{nc("dataschema"), nc("id"), nc("source"), nc("subject")}},
	}
	for _, tt := range tests {
		attrs := base()
		for k, v := range tt.set {
			if v == absent {
				delete(attrs, k)
			} else {
				attrs[k] = v
			}
		}
		event := map[string]any{"data": fixture.Data}
		strs := map[string]string{}
		for k, v := range attrs {
			event[k] = v
			if s, ok := v.(string); ok {
				strs[k] = s
			}
		}
		body, err := json.Marshal(event)
		if err != nil {
			t.Fatal(err)
		}
		modes := map[string]func(t *testing.T) Decoded{}
		if !tt.binaryOnly {
			modes["http-structured"] = func(t *testing.T) Decoded { return decodeOne(t, d, httpStructured(body)) }
			modes["http-batch"] = func(t *testing.T) Decoded {
				r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(append(append([]byte("["), body...), ']')))
				r.Header.Set("Content-Type", MediaTypeBatch)
				return decodeOne(t, d, r)
			}
			modes["nats-structured"] = func(t *testing.T) Decoded {
				ev, err := d.DecodeMessage(map[string][]string{"Content-Type": {MediaTypeStructured}}, body)
				return Decoded{Event: ev, Err: err}
			}
		}
		if !tt.structuredOnly {
			modes["http-binary"] = func(t *testing.T) Decoded { return decodeOne(t, d, httpBinary(strs, fixture.Data)) }
			modes["nats-binary"] = func(t *testing.T) Decoded {
				ev, err := d.DecodeMessage(natsBinary(strs), fixture.Data)
				return Decoded{Event: ev, Err: err}
			}
		}
		for mode, decode := range modes {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				got := decode(t)
				if tt.want == nil {
					if got.Err != nil {
						t.Fatalf("refused: %v", got.Err)
					}
					if _, ok := attrs["time"].(string); !ok && !got.Event.Time.IsZero() {
						t.Errorf("Time = %v, want zero (sharelog records when it received the event)", got.Event.Time)
					}
					return
				}
				ie := invalidErr(t, got.Err)
				var have []reasonField
				for _, p := range ie.Problems {
					have = append(have, reasonField{p.Reason, p.Field})
					if p.Field == "" {
						t.Errorf("problem names no attribute: %v", p)
					}
				}
				if !slices.Equal(have, tt.want) {
					t.Errorf("problems = %v, want %v", ie.Problems, tt.want)
				}
			})
		}
	}
}

// TestAttributeAndDataProblems checks that an event refused for its
// attributes also has its data's problems listed, when its type is known
// and its data is JSON.
func TestAttributeAndDataProblems(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	body := []byte(`{"specversion":"1.0","id":"e-1","source":"/s","type":"` + ledger.TypeDisclosure + `",` +
		`"dataschema":"https://example.org/other.json","data":{"subjects":[{"scheme":"dbs-ref","id":"A1"}],"recipient":"acro",` +
		`"purpose":"safeguarding.disclosure_check","lawfulBasis":"dpa-s35-2-b","regime":"uk-gdpr","disclosedAt":"2026-01-01T00:00:00Z"}}`)
	check := func(body []byte, want ...reasonField) {
		t.Helper()
		_, err := d.DecodeStructured(body)
		ie := invalidErr(t, err)
		var have []reasonField
		for _, p := range ie.Problems {
			have = append(have, reasonField{p.Reason, p.Field})
		}
		if !slices.Equal(have, want) {
			t.Errorf("problems = %v, want %v", ie.Problems, want)
		}
	}
	check(body, reasonField{ledger.ReasonInvalidData, "dataschema"}, reasonField{ledger.ReasonInvalidData, "data.categories"})
	// Refused before sdk-go reads the event: an empty subject.
	check(bytes.Replace(body, []byte(`"dataschema":"https://example.org/other.json"`), []byte(`"subject":""`), 1),
		reasonField{ledger.ReasonNotCloudEvent, "subject"}, reasonField{ledger.ReasonInvalidData, "data.categories"})
}
