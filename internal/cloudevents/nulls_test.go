package cloudevents

import (
	"reflect"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestNullRefusedForEveryType checks that dataOptions refuse a JSON null for
// every Go type that the data of an event type holds, at any depth, so that
// a null is refused as the JSON Schemas refuse it. A change's value, of
// interface type, may be any JSON, null included.
func TestNullRefusedForEveryType(t *testing.T) {
	t.Parallel()
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		switch typ.Kind() {
		case reflect.Struct:
			if typ.PkgPath() != reflect.TypeFor[ledger.Event]().PkgPath() {
				return // time.Time: a JSON string
			}
			for f := range typ.Fields() {
				if f.Anonymous && f.Tag.Get("json") == "" {
					walk(f.Type, path) // inlined: its members are checked
					continue
				}
				if f.Type.Kind() != reflect.Interface && !nullRefused.types[f.Type] {
					t.Errorf("%s.%s: no null refuser for %s", path, f.Name, f.Type)
				}
				walk(f.Type, path+"."+f.Name)
			}
		case reflect.Slice:
			if typ.Elem().Kind() != reflect.Interface && !nullRefused.types[typ.Elem()] {
				t.Errorf("%s: no null refuser for elements of type %s", path, typ.Elem())
			}
			walk(typ.Elem(), path+"[]")
		case reflect.Pointer:
			walk(typ.Elem(), path)
		}
	}
	for typ, newData := range ledger.Types {
		walk(reflect.TypeOf(newData()).Elem(), typ)
	}
}

// TestPointerPathEmbedded checks that a member of an embedded struct, which
// the JSON decoder inlines, is found with its validate tag.
func TestPointerPathEmbedded(t *testing.T) {
	t.Parallel()
	type header struct {
		Regime string `json:"regime" validate:"omitempty,oneof=a b"`
	}
	type request struct {
		header
		Subject ledger.Subject `json:"subject"`
	}
	typ := reflect.TypeFor[request]()
	if path, tag := pointerPath(typ, "/regime"); path != "data.regime" || tag != "omitempty,oneof=a b" {
		t.Errorf("regime: %q %q", path, tag)
	}
	if path, tag := pointerPath(typ, "/subject/scheme"); path != "data.subject.scheme" || tag != "required,scheme" {
		t.Errorf("subject.scheme: %q %q", path, tag)
	}
}
