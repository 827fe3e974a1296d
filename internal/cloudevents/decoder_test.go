package cloudevents

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// schemaPath and goPath run one event's data through each of the two
// validation paths on its own.
func schemaPath(tb testing.TB, typ string, data []byte) []ledger.Problem {
	return testSchemas(tb)[typ].validate(data)
}

func goPath(d *Decoder, typ string, data []byte) []ledger.Problem {
	v, probs := d.decodeData(typ, data)
	if len(probs) > 0 {
		return probs
	}
	return d.check.problems(v, data)
}

// TestSchemaAndGoAgree runs every fixture's data through the JSON Schema and
// through the Go type with its validate tags, separately, so that the two
// definitions of the event contract cannot drift apart.
func TestSchemaAndGoAgree(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	type tc struct {
		fixture
		wantSchemaOK, wantGoOK bool
	}
	var cases []tc
	for _, f := range validFixtures(t) {
		cases = append(cases, tc{f, true, true})
	}
	for _, f := range invalidFixtures(t) {
		switch f.Stage {
		case stageData:
			cases = append(cases, tc{f, false, false})
		case stageVocabulary:
			cases = append(cases, tc{f, true, false})
		case stageAttributes:
			cases = append(cases, tc{f, true, true})
		case stageEnvelope:
			// The data is not what is wrong; nothing to compare.
		case stageJSON:
			// Each path sees one of the duplicated values; TestDuplicateKeys
			// shows that they accept what the decoder refuses.
		default:
			t.Errorf("%s: unknown stage %q", f.File, f.Stage)
		}
	}
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			var ev struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(c.body, &ev); err != nil {
				t.Fatal(err)
			}
			sp, gp := schemaPath(t, ev.Type, ev.Data), goPath(d, ev.Type, ev.Data)
			if got := len(sp) == 0; got != c.wantSchemaOK {
				t.Errorf("JSON Schema accepts = %v, want %v; problems %v", got, c.wantSchemaOK, sp)
			}
			if got := len(gp) == 0; got != c.wantGoOK {
				t.Errorf("Go type accepts = %v, want %v; problems %v", got, c.wantGoOK, gp)
			}
			if c.Stage == stageVocabulary {
				if len(gp) == 0 || gp[0].Reason != ledger.ReasonUnknownKey || gp[0].Field != c.Field {
					t.Errorf("Go problems = %v, want first %s at %s", gp, ledger.ReasonUnknownKey, c.Field)
				}
			}
			if c.Stage == stageData && len(sp) > 0 && sp[0].Field != c.Field {
				t.Errorf("schema problems = %v, want first at %s", sp, c.Field)
			}
		})
	}
}

// TestInvalidFixtures decodes every invalid fixture in every mode it can be
// expressed in and checks the reason and field of the first problem.
func TestInvalidFixtures(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	for _, f := range invalidFixtures(t) {
		t.Run(f.File, func(t *testing.T) {
			check := func(mode string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s: accepted, want %s at %q", mode, f.Reason, f.Field)
				}
				ie := invalidErr(t, err)
				p := ie.Problems[0]
				if string(p.Reason) != f.Reason || p.Field != f.Field {
					t.Errorf("%s: first problem = %s %q (%s), want %s %q", mode, p.Reason, p.Field, p.Detail, f.Reason, f.Field)
				}
				for _, id := range subjectIDsIn(f.body) {
					if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(id)) {
						t.Errorf("%s: error %q quotes a subject identifier", mode, err)
					}
				}
			}
			_, err := d.DecodeStructured(f.body)
			check("DecodeStructured", err)
			_, err = d.DecodeMessage(nil, f.body)
			check("DecodeMessage structured, no headers", err)
			_, err = d.DecodeMessage(map[string][]string{"content-type": {"application/cloudevents+json"}}, f.body)
			check("DecodeMessage structured", err)
			got := decodeOne(t, d, httpStructured(f.body))
			check("DecodeHTTP structured", got.Err)
			if got.Event != nil {
				t.Errorf("DecodeHTTP structured: Event = %v alongside an error", got.Event)
			}
			if f.Reason == string(ledger.ReasonIdentifierHeader) && f.Field != "subject" && (got.Source != "" || got.ID != "") {
				t.Errorf("DecodeHTTP: Source, ID = %q, %q; want both empty when an attribute holds an identifier", got.Source, got.ID)
			}

			attrs, data, ok := binaryForm(f.body)
			if !ok {
				return
			}
			_, err = d.DecodeMessage(natsBinary(attrs), data)
			check("DecodeMessage binary", err)
			check("DecodeHTTP binary", decodeOne(t, d, httpBinary(attrs, data)).Err)
		})
	}
}

// TestValidFixtures decodes every valid fixture in every mode and checks
// that each mode yields the same event, stored as the same Raw bytes, and
// that Raw decodes again to itself.
func TestValidFixtures(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	var batch []json.RawMessage
	var want []*ledger.Event
	for _, f := range validFixtures(t) {
		t.Run(f.File, func(t *testing.T) {
			var attrs struct {
				ID, Source, Type, Time, DataSchema string
			}
			if err := json.Unmarshal(f.body, &attrs); err != nil {
				t.Fatal(err)
			}
			ev, err := d.DecodeStructured(f.body)
			if err != nil {
				t.Fatalf("DecodeStructured: %v", err)
			}
			if ev.ID != attrs.ID || ev.Source != attrs.Source || ev.Type != attrs.Type || ev.DataSchema != attrs.DataSchema ||
				ev.Time.Format("2006-01-02T15:04:05Z07:00") != attrs.Time {
				t.Errorf("event = %+v, want attributes %+v", ev, attrs)
			}
			if got, want := typeName(ev.Data), typeName(ledger.Types[ev.Type]()); got != want {
				t.Errorf("Data is %s, want %s", got, want)
			}
			var data struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(f.body, &data); err != nil {
				t.Fatal(err)
			}
			wantData := ledger.Types[ev.Type]()
			if err := json.Unmarshal(data.Data, wantData); err != nil {
				t.Fatal(err)
			}
			gotData, _ := json.Marshal(ev.Data)
			if !jsonEqual(t, gotData, mustMarshal(t, wantData)) {
				t.Errorf("Data = %s, want %s", gotData, data.Data)
			}

			attrsMap, body, ok := binaryForm(f.body)
			if !ok {
				t.Fatal("cannot express the fixture in binary mode")
			}
			modes := map[string]func() (*ledger.Event, error){
				"DecodeMessage binary":     func() (*ledger.Event, error) { return d.DecodeMessage(natsBinary(attrsMap), body) },
				"DecodeMessage structured": func() (*ledger.Event, error) { return d.DecodeMessage(nil, f.body) },
				"DecodeHTTP structured": func() (*ledger.Event, error) {
					r := decodeOne(t, d, httpStructured(f.body))
					return r.Event, r.Err
				},
				"DecodeHTTP binary": func() (*ledger.Event, error) {
					r := decodeOne(t, d, httpBinary(attrsMap, body))
					return r.Event, r.Err
				},
				"Raw again": func() (*ledger.Event, error) { return d.DecodeStructured(ev.Raw) },
			}
			for mode, decode := range modes {
				got, err := decode()
				if err != nil {
					t.Errorf("%s: %v", mode, err)
					continue
				}
				if mode == "DecodeMessage binary" || mode == "DecodeHTTP binary" {
					// A numeric extension becomes a string in binary mode.
					if strings.Contains(string(f.body), `"sequence": 17`) {
						continue
					}
				}
				if !bytes.Equal(got.Raw, ev.Raw) {
					t.Errorf("%s: Raw =\n%s\nwant\n%s", mode, got.Raw, ev.Raw)
				}
				if got.ID != ev.ID || got.Source != ev.Source || !got.Time.Equal(ev.Time) {
					t.Errorf("%s: event %s %s %s, want %s %s %s", mode, got.Source, got.ID, got.Time, ev.Source, ev.ID, ev.Time)
				}
			}
			batch = append(batch, f.body)
			want = append(want, ev)
		})
	}

	t.Run("batch", func(t *testing.T) {
		body, _ := json.Marshal(batch)
		r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/cloudevents-batch+json")
		got, err := d.DecodeHTTP(r)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("got %d events, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i].Err != nil || !bytes.Equal(got[i].Event.Raw, want[i].Raw) || got[i].ID != want[i].ID || got[i].Source != want[i].Source {
				t.Errorf("batch[%d] = %+v, want event %s", i, got[i], want[i].ID)
			}
		}
	})
}

// TestBatchMixed checks that one bad event in a batch fails alone.
func TestBatchMixed(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	valid := fixtureBody(t, "valid/disclosure-uk-gdpr.json")
	var bad []byte
	for _, f := range invalidFixtures(t) {
		if f.File == "disclosure-unknown-category.json" {
			bad = f.body
		}
	}
	body := []byte("[" + string(valid) + "," + string(bad) + `, 17, {"specversion":"1.0"}]`)
	got, err := d.DecodeBatch(body)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		ok     bool
		reason ledger.Reason
		id     string
	}{
		{ok: true, id: "evt-000101"},
		{reason: ledger.ReasonUnknownKey, id: "bad-disclosure-unknown-category"},
		{reason: ledger.ReasonMalformed},
		{reason: ledger.ReasonNotCloudEvent},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d results, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if (g.Err == nil) != w.ok || g.ID != w.id || (g.Event != nil) != w.ok {
			t.Errorf("[%d] = %+v, want ok %v id %q", i, g, w.ok, w.id)
			continue
		}
		if !w.ok {
			if r := invalidErr(t, g.Err).Reason(); r != w.reason {
				t.Errorf("[%d] reason = %s, want %s", i, r, w.reason)
			}
		}
	}
}

func TestRequestLevelErrors(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	valid := fixtureBody(t, "valid/disclosure-uk-gdpr.json")
	tests := []struct {
		name, contentType string
		header            map[string]string
		body              []byte
		wantCode          string
		wantReason        ledger.Reason
	}{
		{"no content type", "", nil, valid, ledger.EINVALID, ledger.ReasonContentType},
		{"plain json", "application/json", nil, valid, ledger.EINVALID, ledger.ReasonContentType},
		{"other format", "application/cloudevents+avro", nil, valid, ledger.EINVALID, ledger.ReasonContentType},
		{"batch not array", "application/cloudevents-batch+json", nil, valid, ledger.EINVALID, ledger.ReasonMalformed},
		{"batch not json", "application/cloudevents-batch+json", nil, []byte("[{"), ledger.EINVALID, ledger.ReasonMalformed},
		{"batch null", "application/cloudevents-batch+json", nil, []byte("null"), ledger.EINVALID, ledger.ReasonMalformed},
		{"structured too large", "application/cloudevents+json", nil, bytes.Repeat([]byte(" "), MaxEventSize+1), ledger.ETOOLARGE, ""},
		{"binary too large", "application/json", map[string]string{"Ce-Specversion": "1.0"}, bytes.Repeat([]byte(" "), MaxEventSize+1), ledger.ETOOLARGE, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			got, err := d.DecodeHTTP(r)
			if err == nil {
				t.Fatalf("DecodeHTTP = %v, want a request-level error", got)
			}
			if code := ledger.ErrorCode(err); code != tt.wantCode {
				t.Errorf("code = %s, want %s (%v)", code, tt.wantCode, err)
			}
			if tt.wantReason != "" {
				if r := invalidErr(t, err).Reason(); r != tt.wantReason {
					t.Errorf("reason = %s, want %s", r, tt.wantReason)
				}
			}
		})
	}

	t.Run("MaxBytesReader", func(t *testing.T) {
		r := httpStructured(valid)
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 10)
		_, err := d.DecodeHTTP(r)
		if code := ledger.ErrorCode(err); code != ledger.ETOOLARGE {
			t.Errorf("code = %s, want %s (%v)", code, ledger.ETOOLARGE, err)
		}
	})
}

// TestOversize checks per-event size limits in every mode.
func TestOversize(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	valid := fixtureBody(t, "valid/disclosure-uk-gdpr.json")
	// A valid event padded with whitespace to just over the limit.
	big := pad(valid, MaxEventSize+1)
	_, err := d.DecodeStructured(big)
	checkFirst(t, err, string(ledger.ReasonOversize), "")
	_, err = d.DecodeMessage(nil, big)
	checkFirst(t, err, string(ledger.ReasonOversize), "")

	attrs, data, _ := binaryForm(valid)
	h := natsBinary(attrs)
	padded := append(bytes.Repeat([]byte(" "), MaxEventSize-len(data)), data...) // body fits, headers tip it over
	_, err = d.DecodeMessage(h, padded)
	checkFirst(t, err, string(ledger.ReasonOversize), "")

	got, err := d.DecodeBatch([]byte("[" + string(big) + "," + string(valid) + "]"))
	if err != nil {
		t.Fatal(err)
	}
	checkFirst(t, got[0].Err, string(ledger.ReasonOversize), "")
	if got[1].Err != nil {
		t.Errorf("batch[1]: %v", got[1].Err)
	}

	// Just under the limit is fine.
	fits := pad(valid, MaxEventSize)
	if _, err := d.DecodeStructured(fits); err != nil {
		t.Errorf("event of exactly MaxEventSize bytes: %v", err)
	}
}

// TestDecodeMessageModes covers how DecodeMessage picks the content mode and
// that it checks every NATS header for identifiers.
func TestDecodeMessageModes(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	valid := fixtureBody(t, "valid/disclosure-uk-gdpr.json")
	attrs, data, _ := binaryForm(valid)
	tests := []struct {
		name       string
		header     map[string][]string
		body       []byte
		wantReason ledger.Reason
		wantField  string
	}{
		{"structured lower-case header", map[string][]string{"content-type": {"Application/CloudEvents+JSON; charset=utf-8"}}, valid, "", ""},
		{"batch over NATS", map[string][]string{"Content-Type": {"application/cloudevents-batch+json"}}, []byte("[" + string(valid) + "]"), ledger.ReasonContentType, "Content-Type"},
		{"unknown content type", map[string][]string{"Content-Type": {"text/plain"}}, valid, ledger.ReasonContentType, "Content-Type"},
		{"identifier in Nats-Msg-Id", map[string][]string{"Nats-Msg-Id": {"dbs-000123456"}}, valid, ledger.ReasonIdentifierHeader, "Nats-Msg-Id"},
		{"identifier in another header", map[string][]string{"X-Trace": {"person DBS-000123456"}, "Content-Type": {"application/cloudevents+json"}}, valid, ledger.ReasonIdentifierHeader, "X-Trace"},
		{"binary with Content-Type", func() map[string][]string {
			h := natsBinary(attrs)
			delete(h, "ce-datacontenttype")
			h["Content-Type"] = []string{"application/json"}
			return h
		}(), data, "", ""},
		{"binary without content type", func() map[string][]string {
			h := natsBinary(attrs)
			delete(h, "ce-datacontenttype")
			return h
		}(), data, "", ""},
		{"binary percent-encoded source", func() map[string][]string {
			h := natsBinary(attrs)
			h["ce-source"] = []string{"%2Fsystems%2Fcase-management"}
			return h
		}(), data, "", ""},
		{"binary percent-encoded identifier", func() map[string][]string {
			h := natsBinary(attrs)
			h["ce-ref"] = []string{"%44BS-000123456"}
			return h
		}(), data, ledger.ReasonIdentifierHeader, "ref"},
		{"binary text data", func() map[string][]string {
			h := natsBinary(attrs)
			h["ce-datacontenttype"] = []string{"text/plain"}
			return h
		}(), data, ledger.ReasonContentType, "datacontenttype"},
		{"binary data not JSON", natsBinary(attrs), []byte("{nope"), ledger.ReasonMalformed, "data"},
		{"binary specversion 0.3", func() map[string][]string {
			h := natsBinary(attrs)
			h["Ce-SpecVersion"] = []string{"0.3"}
			return h
		}(), data, ledger.ReasonSpecVersion, "specversion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := d.DecodeMessage(tt.header, tt.body)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("DecodeMessage: %v", err)
				}
				if ev.Source != "/systems/case-management" || ev.ID != "evt-000101" {
					t.Errorf("event = %s %s, want /systems/case-management evt-000101", ev.Source, ev.ID)
				}
				return
			}
			checkFirst(t, err, string(tt.wantReason), tt.wantField)
		})
	}
}

func TestInvalidErrorType(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	_, err := d.DecodeStructured([]byte("nope"))
	var ie *ledger.InvalidError
	if !errors.As(err, &ie) || ledger.ErrorCode(err) != ledger.EINVALID {
		t.Fatalf("err = %v (%T), want *ledger.InvalidError", err, err)
	}
}

func typeName(v any) string { return fmtType(v) }

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// pad returns the JSON object obj with whitespace after its opening brace,
// making it n bytes long.
func pad(obj []byte, n int) []byte {
	obj = bytes.TrimSpace(obj)
	out := make([]byte, 0, n)
	out = append(out, '{')
	out = append(out, bytes.Repeat([]byte(" "), n-len(obj))...)
	return append(out, obj[1:]...)
}

// TestSpecVersionRefusals pins how a structured event's specversion is
// refused: present with any value but "1.0" (any JSON type) it is not
// supported; absent, or null, which the JSON format says is the same, it is
// required. The two are told apart from the event,
// not from sdk-go's message.
func TestSpecVersionRefusals(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	const rest = `"id":"a","source":"s","type":"org.sharelog.notice.ack.v1","time":"2025-01-01T00:00:00Z","data":{"notice":"n","outcome":"done"}}`
	for _, sv := range []string{`"2.0"`, `""`, `1.0`, `"0.2"`, `true`, `{}`, `[]`} {
		_, err := d.DecodeStructured([]byte(`{"specversion":` + sv + `,` + rest))
		checkFirst(t, err, string(ledger.ReasonSpecVersion), "specversion")
	}
	_, err := d.DecodeStructured([]byte(`{` + rest))
	checkFirst(t, err, string(ledger.ReasonNotCloudEvent), "specversion")
	_, err = d.DecodeStructured([]byte(`{"specversion":null,` + rest))
	checkFirst(t, err, string(ledger.ReasonNotCloudEvent), "specversion")
}
