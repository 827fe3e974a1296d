package cloudevents

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/vocab"
)

// Stages of the invalid-fixture manifest.
const (
	stageEnvelope   = "envelope"
	stageAttributes = "attributes"
	stageData       = "data"
	stageVocabulary = "vocabulary"
	stageJSON       = "json"
)

type fixture struct {
	File   string `yaml:"file"`
	Reason string `yaml:"reason"`
	Field  string `yaml:"field"`
	Stage  string `yaml:"stage"`
	body   []byte
}

func newDecoder(tb testing.TB) *Decoder {
	tb.Helper()
	v, err := vocab.Load()
	if err != nil {
		tb.Fatal(err)
	}
	d, err := NewDecoder(v)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func validFixtures(tb testing.TB) []fixture {
	tb.Helper()
	files, err := filepath.Glob("testdata/events/valid/*.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no valid fixtures: %v", err)
	}
	var out []fixture
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, fixture{File: filepath.Base(f), body: b})
	}
	return out
}

func invalidFixtures(tb testing.TB) []fixture {
	tb.Helper()
	b, err := os.ReadFile("testdata/events/invalid/manifest.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	var m struct {
		Fixtures []fixture `yaml:"fixtures"`
	}
	if err := yaml.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	listed := map[string]bool{}
	for i := range m.Fixtures {
		f := &m.Fixtures[i]
		listed[f.File] = true
		if f.body, err = os.ReadFile(filepath.Join("testdata/events/invalid", f.File)); err != nil {
			tb.Fatal(err)
		}
	}
	files, _ := filepath.Glob("testdata/events/invalid/*.json")
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			tb.Errorf("%s is not in manifest.yaml", f)
		}
	}
	return m.Fixtures
}

// invalidErr returns err as an *InvalidError or fails.
func invalidErr(t *testing.T, err error) *ledger.InvalidError {
	t.Helper()
	var ie *ledger.InvalidError
	if !errors.As(err, &ie) || len(ie.Problems) == 0 {
		t.Fatalf("error = %v (%T), want a *ledger.InvalidError with problems", err, err)
	}
	return ie
}

// checkFirst checks the first problem's reason and field.
func checkFirst(t *testing.T, err error, reason, field string) {
	t.Helper()
	ie := invalidErr(t, err)
	p := ie.Problems[0]
	if string(p.Reason) != reason || p.Field != field {
		t.Errorf("first problem = %s %q (%s), want %s %q", p.Reason, p.Field, p.Detail, reason, field)
	}
}

// subjectIDsIn returns the subject identifiers in a fixture's data, found
// without the decoder.
func subjectIDsIn(body []byte) []string {
	var ev struct {
		Data struct {
			Subjects []ledger.Subject `json:"subjects"`
			Subject  *ledger.Subject  `json:"subject"`
			Scope    *struct {
				Subject *ledger.Subject `json:"subject"`
			} `json:"scope"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &ev)
	var ids []string
	for _, s := range ev.Data.Subjects {
		ids = append(ids, s.ID)
	}
	if ev.Data.Subject != nil {
		ids = append(ids, ev.Data.Subject.ID)
	}
	if ev.Data.Scope != nil && ev.Data.Scope.Subject != nil {
		ids = append(ids, ev.Data.Scope.Subject.ID)
	}
	return slices.DeleteFunc(ids, func(s string) bool { return s == "" })
}

// binaryForm turns a structured fixture into binary mode: one header per
// attribute and the data as the body. It returns ok false when the fixture
// cannot be expressed in binary mode (not an object, no specversion, an
// attribute that is not a string or number, an attribute twice).
func binaryForm(body []byte) (attrs map[string]string, data []byte, ok bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m["specversion"] == nil || topLevelKeys(body) != len(m) {
		return nil, nil, false
	}
	attrs = map[string]string{}
	for k, raw := range m {
		if k == "data" {
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) != nil {
			return nil, nil, false
		}
		switch v := v.(type) {
		case string:
			attrs[k] = v
		case float64:
			if k == "id" || k == "source" || k == "specversion" || k == "type" {
				return nil, nil, false
			}
			attrs[k] = fmt.Sprint(v)
		default:
			return nil, nil, false
		}
	}
	if raw, has := m["data"]; has {
		var s string
		if json.Unmarshal(raw, &s) == nil && !strings.Contains(attrs["datacontenttype"], "json") {
			data = []byte(s)
		} else {
			data = raw
		}
	}
	return attrs, data, true
}

// topLevelKeys counts the members of the JSON object body, duplicates
// included.
func topLevelKeys(body []byte) int {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return -1
	}
	n := 0
	for dec.More() {
		if _, err := dec.Token(); err != nil {
			return -1
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return -1
		}
		n++
	}
	return n
}

// natsBinary builds NATS headers for a binary-mode message, in mixed case to
// check that header names are matched case-insensitively.
func natsBinary(attrs map[string]string) map[string][]string {
	h := map[string][]string{"Nats-Msg-Id": {"m-1"}}
	for k, v := range attrs {
		name := "ce-" + k
		if k == "specversion" {
			name = "Ce-SpecVersion"
		}
		h[name] = []string{v}
	}
	return h
}

// httpBinary builds an HTTP binary-mode request: datacontenttype in
// Content-Type, other attributes in Ce-* headers.
func httpBinary(attrs map[string]string, data []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(data))
	for k, v := range attrs {
		if k == "datacontenttype" {
			r.Header.Set("Content-Type", v)
			continue
		}
		r.Header.Set("Ce-"+k, v)
	}
	return r
}

func httpStructured(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	return r
}

// decodeOne runs DecodeHTTP on a request expected to hold one event.
func decodeOne(t *testing.T, d *Decoder, r *http.Request) Decoded {
	t.Helper()
	got, err := d.DecodeHTTP(r)
	if err != nil {
		t.Fatalf("DecodeHTTP: request-level error %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("DecodeHTTP returned %d results, want 1", len(got))
	}
	return got[0]
}

func fmtType(v any) string { return fmt.Sprintf("%T", v) }

func fixtureBody(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/events", name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
