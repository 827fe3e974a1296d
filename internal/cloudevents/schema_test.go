package cloudevents

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/schemas"
)

// typeSchema is the compiled JSON Schema of one event type.
type typeSchema struct {
	id     string
	schema *jsonschema.Schema
}

var printer = message.NewPrinter(language.English)

// compileSchemas compiles the embedded schema of every type in ledger.Types,
// asserting formats (date-time, uri).
func compileSchemas() (map[string]*typeSchema, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.DefaultDraft(jsonschema.Draft2020)
	out := make(map[string]*typeSchema, len(ledger.Types))
	for typ := range ledger.Types {
		b, err := schemas.Schema(typ)
		if err != nil {
			return nil, fmt.Errorf("cloudevents: schema for %s: %w", typ, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("cloudevents: schema for %s: %w", typ, err)
		}
		id := schemas.ID(typ)
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("cloudevents: schema for %s: %w", typ, err)
		}
		out[typ] = &typeSchema{id: id}
	}
	for typ, ts := range out {
		s, err := c.Compile(ts.id)
		if err != nil {
			return nil, fmt.Errorf("cloudevents: compile schema for %s: %w", typ, err)
		}
		ts.schema = s
	}
	return out, nil
}

// The JSON Schemas in schemas/ are the published contract; the decoder does
// not use them. These tests compile them and check them against the Go path.

var (
	schemasOnce     sync.Once
	compiledSchemas map[string]*typeSchema
	schemasErr      error
)

// testSchemas returns the compiled schema of every type, compiled once.
func testSchemas(tb testing.TB) map[string]*typeSchema {
	tb.Helper()
	schemasOnce.Do(func() { compiledSchemas, schemasErr = compileSchemas() })
	if schemasErr != nil {
		tb.Fatal(schemasErr)
	}
	return compiledSchemas
}

// parseData parses data, which must be a JSON object, into the form the
// JSON Schema validator takes (numbers as json.Number).
func parseData(data []byte) (map[string]any, *ledger.Problem) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, &ledger.Problem{Reason: ledger.ReasonMalformed, Field: "data", Detail: "not valid JSON"}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, &ledger.Problem{Reason: ledger.ReasonMalformed, Field: "data", Detail: "must be a JSON object"}
	}
	return obj, nil
}

// validate checks data, a JSON object, against the schema. It returns one
// problem (ReasonInvalidData) per failed keyword, sorted by field.
func (ts *typeSchema) validate(data []byte) []ledger.Problem {
	doc, p := parseData(data)
	if p != nil {
		return []ledger.Problem{*p}
	}
	return ts.validateDoc(doc)
}

// validateDoc checks a parsed JSON object against the schema.
func (ts *typeSchema) validateDoc(doc map[string]any) []ledger.Problem {
	err := ts.schema.Validate(doc)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []ledger.Problem{{Reason: ledger.ReasonInvalidData, Field: "data", Detail: "does not match its JSON Schema"}}
	}
	var probs []ledger.Problem
	collectSchemaProblems(ve, doc, &probs)
	if len(probs) == 0 {
		probs = append(probs, ledger.Problem{Reason: ledger.ReasonInvalidData, Field: "data", Detail: "does not match its JSON Schema"})
	}
	slices.SortStableFunc(probs, func(a, b ledger.Problem) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Detail, b.Detail)
	})
	return slices.Compact(probs)
}

// collectSchemaProblems appends a problem for every leaf of the error tree.
func collectSchemaProblems(ve *jsonschema.ValidationError, doc map[string]any, probs *[]ledger.Problem) {
	if len(ve.Causes) > 0 {
		for _, c := range ve.Causes {
			collectSchemaProblems(c, doc, probs)
		}
		return
	}
	add := func(loc []string, detail string) {
		*probs = append(*probs, ledger.Problem{Reason: ledger.ReasonInvalidData, Field: fieldPath(doc, loc), Detail: detail})
	}
	loc := ve.InstanceLocation
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			add(append(slices.Clip(loc), m), "required")
		}
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			add(append(slices.Clip(loc), p), "unknown field: not allowed")
		}
	default:
		add(loc, schemaDetail(ve.ErrorKind, loc))
	}
}

// schemaDetail describes a failed keyword without quoting the value, which
// may be personal data.
func schemaDetail(k jsonschema.ErrorKind, loc []string) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("got %s, want %s", k.Got, strings.Join(k.Want, " or "))
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprint(w)
		}
		if len(want) > 10 {
			return "not one of the allowed values"
		}
		return "must be one of: " + strings.Join(want, ", ")
	case *kind.Const:
		return fmt.Sprintf("must be %v", k.Want)
	case *kind.Pattern:
		return "does not match the pattern " + k.Want
	case *kind.Format:
		return "must be a valid " + k.Want
	case *kind.MinLength:
		if k.Want == 1 {
			return "must not be empty"
		}
		return fmt.Sprintf("must be at least %d characters", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters", k.Want)
	case *kind.MinItems:
		if k.Want == 1 {
			return "must not be empty"
		}
		return fmt.Sprintf("must have at least %d items", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items", k.Want)
	case *kind.Minimum:
		return "must be at least " + k.Want.RatString()
	case *kind.Maximum:
		return "must be at most " + k.Want.RatString()
	}
	return k.LocalizedString(printer)
}

// fieldPath renders an instance location inside data as a path:
// data.subjects[0].scheme. doc tells array indexes from object keys.
func fieldPath(doc map[string]any, loc []string) string {
	var b strings.Builder
	b.WriteString("data")
	var cur any = doc
	for _, tok := range loc {
		switch c := cur.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(c) {
				cur = c[i]
			} else {
				cur = nil
			}
		case map[string]any:
			b.WriteString("." + tok)
			cur = c[tok]
		default:
			b.WriteString("." + tok)
			cur = nil
		}
	}
	return b.String()
}

// TestSchemaAgreesOnGoldenInputs runs the data of every structured golden
// input (fixtures, generated events, layouts, escapes and mutations of every
// member of every valid fixture) through the published JSON Schema and
// through the decoder's Go path, and checks that they accept and refuse the
// same data. The only rules the schema cannot know are the vocabularies: when
// the Go path alone refuses, each of its problems must be an unknown key.
func TestSchemaAgreesOnGoldenInputs(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	compared := 0
	for _, c := range goldenCases(t) {
		if c.body == nil {
			continue // binary mode: the same data as the structured case
		}
		var ev struct {
			Type string          `json:"type"`
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(c.body, &ev) != nil || ledger.Types[ev.Type] == nil || firstByte(ev.Data) != '{' {
			continue
		}
		compared++
		sp, gp := schemaPath(t, ev.Type, ev.Data), goPath(d, ev.Type, ev.Data)
		switch {
		case len(sp) > 0 && len(gp) == 0:
			t.Errorf("%s: the JSON Schema refuses (%v), the Go path accepts", c.name, sp)
		case len(sp) == 0 && len(gp) > 0:
			for _, p := range gp {
				if p.Reason != ledger.ReasonUnknownKey {
					t.Errorf("%s: the Go path refuses (%v), the JSON Schema accepts", c.name, gp)
					break
				}
			}
		}
	}
	if compared < 1000 {
		t.Errorf("compared %d inputs, want the golden set (over 1,000)", compared)
	}
}
