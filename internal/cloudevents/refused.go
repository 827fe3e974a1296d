package cloudevents

import (
	"encoding/base64"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/sharelog/sharelog/internal/ledger"
)

// NamedSubjects returns the data subjects a NATS message names as far as
// its data can be read, leniently, whether or not it is a valid event: the
// subjects of a disclosure, the subject of a request, the subject of a hold's
// scope. The ingest loop files a refused message under them, by keyed hash,
// so that forgetting a person finds the refused messages that named them.
// A message that cannot be read names no one.
func NamedSubjects(header map[string][]string, body []byte) []ledger.Subject {
	if len(body) > MaxEventSize {
		return nil
	}
	structured := true
	for k := range header {
		if strings.EqualFold(k, "ce-specversion") {
			structured = false
		}
	}
	lenient := json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	var v any
	if json.Unmarshal(body, &v, lenient) != nil {
		return nil
	}
	if m, ok := v.(map[string]any); structured && ok {
		v = m["data"]
		if s, ok := m["data_base64"].(string); ok && v == nil {
			if b, err := base64.StdEncoding.DecodeString(s); err != nil || json.Unmarshal(b, &v, lenient) != nil {
				v = nil
			}
		}
	}
	var out []ledger.Subject
	add := func(s any) {
		m, _ := s.(map[string]any)
		scheme, _ := m["scheme"].(string)
		id, _ := m["id"].(string)
		if scheme != "" && id != "" {
			out = append(out, ledger.Subject{Scheme: scheme, ID: id})
		}
	}
	d, _ := v.(map[string]any)
	if subjects, ok := d["subjects"].([]any); ok {
		for _, s := range subjects {
			add(s)
		}
	}
	add(d["subject"])
	if scope, ok := d["scope"].(map[string]any); ok {
		add(scope["subject"])
	}
	return out
}
