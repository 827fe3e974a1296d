package cloudevents

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/sharedref"
)

// conformanceDir holds the CloudEvents conformance cases (YAML), outside the
// repository in the shared reference material.
const conformanceDir = "../../../shared/reference/cloudevents/conformance-yaml"

// conformanceCase is one case of a conformance YAML file. Attribute values
// are kept as the YAML scalars' text ("1.0", not 1).
type conformanceCase struct {
	file                string
	name                string
	mode                string // binary, structured, or "" for both
	attrs               map[string]string
	extensions          map[string]string
	transportExtensions map[string]string
	data                string
}

func loadConformance(t *testing.T, rel string) []conformanceCase {
	t.Helper()
	path := filepath.Join(conformanceDir, rel)
	b := sharedref.Read(t, path)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []conformanceCase
	for i := 0; ; i++ {
		var doc struct {
			Mode                string               `yaml:"Mode"`
			ContextAttributes   map[string]yaml.Node `yaml:"ContextAttributes"`
			TransportExtensions map[string]string    `yaml:"TransportExtensions"`
			Data                string               `yaml:"Data"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, i, err)
		}
		c := conformanceCase{file: rel, mode: doc.Mode, attrs: map[string]string{}, extensions: map[string]string{},
			transportExtensions: doc.TransportExtensions, data: doc.Data}
		for k, n := range doc.ContextAttributes {
			if k == "Extensions" {
				if err := n.Decode(&c.extensions); err != nil {
					t.Fatalf("%s: document %d: extensions: %v", path, i, err)
				}
				continue
			}
			c.attrs[k] = n.Value
		}
		c.name = rel + "#" + c.attrs["id"]
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return out
}

// modes returns the content modes a case is to be sent in.
func (c conformanceCase) modes() []string {
	if c.mode != "" {
		return []string{c.mode}
	}
	return []string{"binary", "structured"}
}

// transports are the ways a case is sent in each of its content modes: the
// HTTP binding (binary, structured, and structured inside a batch) and the
// NATS binding (binary, structured).
var transports = map[string][]string{
	"binary":     {"http-binary", "nats-binary"},
	"structured": {"http-structured", "http-batch", "nats-structured"},
}

// decode sends the case to d as transport (see transports) and returns
// what d made of it.
func (c conformanceCase) decode(t *testing.T, d *Decoder, transport string) Decoded {
	t.Helper()
	switch transport {
	case "http-binary", "http-structured":
		return decodeOne(t, d, c.request(t, strings.TrimPrefix(transport, "http-")))
	case "http-batch":
		r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(append(append([]byte("["), c.structuredBody(t)...), ']')))
		r.Header.Set("Content-Type", MediaTypeBatch)
		for k, v := range c.transportExtensions {
			r.Header.Set(k, v)
		}
		return decodeOne(t, d, r)
	case "nats-structured":
		h := map[string][]string{"Content-Type": {MediaTypeStructured}}
		for k, v := range c.transportExtensions {
			h[k] = []string{v}
		}
		return d.DecodeNATS(h, c.structuredBody(t))
	case "nats-binary":
		// The NATS binding: every attribute, datacontenttype included, in
		// a ce- header.
		h := map[string][]string{}
		for k, v := range c.attrs {
			h["ce-"+k] = []string{v}
		}
		for k, v := range c.extensions {
			h["ce-"+k] = []string{strings.TrimRight(v, "\n")}
		}
		for k, v := range c.transportExtensions {
			h[k] = []string{v}
		}
		return d.DecodeNATS(h, []byte(c.data))
	}
	t.Fatalf("unknown transport %q", transport)
	return Decoded{}
}

// structuredBody is the case in the JSON format.
func (c conformanceCase) structuredBody(t *testing.T) []byte {
	t.Helper()
	ev := map[string]any{}
	for k, v := range c.attrs {
		ev[k] = v
	}
	for k, v := range c.extensions {
		ev[k] = v
	}
	dct := c.attrs["datacontenttype"]
	if dct == "" || strings.Contains(dct, "json") {
		ev["data"] = json.RawMessage(strings.TrimSpace(c.data))
	} else {
		ev["data"] = c.data
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// request builds the HTTP request the HTTP protocol binding describes for the
// case in the given mode.
func (c conformanceCase) request(t *testing.T, mode string) *http.Request {
	t.Helper()
	var r *http.Request
	switch mode {
	case "binary":
		r = httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(c.data))
		for k, v := range c.attrs {
			if k == "datacontenttype" {
				r.Header.Set("Content-Type", v)
			} else {
				r.Header.Set("Ce-"+k, v)
			}
		}
		for k, v := range c.extensions {
			// Header values cannot hold line breaks; the YAML block scalar
			// ends with one.
			r.Header.Set("Ce-"+k, strings.TrimRight(v, "\n"))
		}
	case "structured":
		r = httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(c.structuredBody(t)))
		r.Header.Set("Content-Type", MediaTypeStructured)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	for k, v := range c.transportExtensions {
		r.Header.Set(k, v)
	}
	return r
}

type reasonField struct {
	Reason ledger.Reason
	Field  string
}

// TestConformanceV1 sends every CloudEvents 1.0 conformance case, over HTTP
// and NATS in each of its content modes (transports). Their
// envelopes must be read correctly: the only problems sharelog may report
// are its own rules, which the cases do not follow (their types are not
// sharelog's; some carry non-JSON data). Cases without time are not refused
// for it: time is optional, and sharelog records when it received the event.
func TestConformanceV1(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	cases := append(loadConformance(t, "v1.yaml"), loadConformance(t, "v1.0/v1_minimum.yaml")...)
	for _, c := range cases {
		for _, mode := range c.modes() {
			for _, tr := range transports[mode] {
				t.Run(c.name+"/"+tr, func(t *testing.T) {
					got := c.decode(t, d, tr)
					if got.ID != c.attrs["id"] || got.Source != c.attrs["source"] {
						t.Errorf("Source, ID = %q, %q; want %q, %q", got.Source, got.ID, c.attrs["source"], c.attrs["id"])
					}
					want := []reasonField{}
					if dct := c.attrs["datacontenttype"]; dct != "" && !isJSONContentType(dct) {
						want = append(want, reasonField{ledger.ReasonContentType, "datacontenttype"})
					}
					want = append(want, reasonField{ledger.ReasonUnknownType, "type"})
					ie := invalidErr(t, got.Err)
					var have []reasonField
					for _, p := range ie.Problems {
						have = append(have, reasonField{p.Reason, p.Field})
					}
					if !slices.Equal(have, want) {
						t.Errorf("problems = %v, want %v", ie.Problems, want)
					}
				})
			}
		}
	}
}

// TestConformanceV1Disclosure takes every 1.0 conformance case, swaps in a
// sharelog disclosure (type and data; a case without time keeps none) and
// checks that it is accepted in the same mode, over HTTP and NATS, with its
// extensions kept.
func TestConformanceV1Disclosure(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	var disclosure struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(fixtureBody(t, "valid/disclosure-uk-gdpr.json"), &disclosure); err != nil {
		t.Fatal(err)
	}
	cases := append(loadConformance(t, "v1.yaml"), loadConformance(t, "v1.0/v1_minimum.yaml")...)
	for _, c := range cases {
		c.attrs = maps.Clone(c.attrs)
		c.attrs["type"] = ledger.TypeDisclosure
		if c.attrs["datacontenttype"] != "" {
			c.attrs["datacontenttype"] = "application/json; charset=utf-8"
		}
		c.data = string(disclosure.Data)
		for _, mode := range c.modes() {
			for _, tr := range transports[mode] {
				t.Run(c.name+"/"+tr, func(t *testing.T) {
					got := c.decode(t, d, tr)
					if got.Err != nil {
						t.Fatalf("refused: %v", got.Err)
					}
					if got.Event.ID != c.attrs["id"] || got.Event.Source != c.attrs["source"] || got.Event.Type != ledger.TypeDisclosure {
						t.Errorf("event = %s %s %s, want %s %s", got.Event.Source, got.Event.ID, got.Event.Type, c.attrs["source"], c.attrs["id"])
					}
					var raw map[string]any
					if err := json.Unmarshal(got.Event.Raw, &raw); err != nil {
						t.Fatal(err)
					}
					for k, v := range c.extensions {
						if mode == "binary" {
							v = strings.TrimRight(v, "\n")
						}
						if raw[k] != v {
							t.Errorf("Raw[%q] = %v, want %q", k, raw[k], v)
						}
					}
				})
			}
		}
	}
}

// TestConformanceV03 checks that CloudEvents 0.3 cases are refused for their
// specversion in every mode.
func TestConformanceV03(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	cases := append(loadConformance(t, "v03.yaml"), loadConformance(t, "v0.3/v03_minimum.yaml")...)
	for _, c := range cases {
		for _, mode := range c.modes() {
			for _, tr := range transports[mode] {
				t.Run(c.name+"/"+tr, func(t *testing.T) {
					got := c.decode(t, d, tr)
					checkFirst(t, got.Err, string(ledger.ReasonSpecVersion), "specversion")
				})
			}
		}
	}
}
