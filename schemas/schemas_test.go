package schemas_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/schemas"
)

// TestSchemasMatchTypes checks that there is exactly one schema per event
// type, that each compiles as draft 2020-12 and that its $id and title are
// the ones producers are told to use.
func TestSchemasMatchTypes(t *testing.T) {
	files, err := fs.Glob(schemas.FS, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for typ := range ledger.Types {
		want = append(want, typ+".json")
	}
	slices.Sort(want)
	slices.Sort(files)
	if !slices.Equal(files, want) {
		t.Fatalf("schema files = %v, want %v", files, want)
	}
	for typ := range ledger.Types {
		t.Run(typ, func(t *testing.T) {
			b, err := schemas.Schema(typ)
			if err != nil {
				t.Fatal(err)
			}
			var head struct {
				Schema               string `json:"$schema"`
				ID                   string `json:"$id"`
				Title                string `json:"title"`
				AdditionalProperties *bool  `json:"additionalProperties"`
			}
			if err := json.Unmarshal(b, &head); err != nil {
				t.Fatal(err)
			}
			if got, want := head.ID, schemas.ID(typ); got != want {
				t.Errorf("$id = %q, want %q", got, want)
			}
			if head.Title != typ {
				t.Errorf("title = %q, want %q", head.Title, typ)
			}
			if head.Schema != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %q, want draft 2020-12", head.Schema)
			}
			if head.AdditionalProperties == nil || *head.AdditionalProperties {
				t.Errorf("additionalProperties must be false")
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			c := jsonschema.NewCompiler()
			if err := c.AddResource(head.ID, doc); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Compile(head.ID); err != nil {
				t.Fatalf("compile: %v", err)
			}
		})
	}
}

func TestSchemaUnknownType(t *testing.T) {
	if _, err := schemas.Schema("org.example.nope.v1"); err == nil || !strings.Contains(err.Error(), "not exist") {
		t.Fatalf("Schema(unknown) error = %v, want not exist", err)
	}
}
