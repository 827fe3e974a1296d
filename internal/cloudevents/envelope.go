package cloudevents

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/sharelog/sharelog/internal/ledger"
)

// The constraints of the CloudEvents core specification and JSON format on
// context attributes that sdk-go does not enforce, checked on the members
// the read of the body found (before sdk-go reads the event) or on the ce-*
// headers: it drops an empty subject or dataschema, reads an attribute name
// with capitals as its lowercase, and stops at the first attribute it cannot
// read. Every problem of the event is listed.

// requiredAttrs are the REQUIRED context attributes of CloudEvents 1.0.
var requiredAttrs = [...]string{"id", "source", "specversion", "type"}

// requiredHeaders are the canonical ce- headers of requiredAttrs.
var requiredHeaders = [...]string{"Ce-Id", "Ce-Source", "Ce-Specversion", "Ce-Type"}

// stringAttrs are the context attributes of type String, URI, URI-reference
// or Timestamp: all JSON strings in the JSON format.
var stringAttrs = map[string]bool{
	"id": true, "source": true, "specversion": true, "type": true,
	"datacontenttype": true, "dataschema": true, "subject": true, "time": true,
}

// validAttrName reports whether name is a valid attribute name: lowercase
// ASCII letters and digits (CloudEvents 1.0, Attribute Naming Convention).
func validAttrName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// validHeaderAttrName reports whether name, from a ce- header, is a valid
// attribute name in any case.
func validHeaderAttrName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i] | 0x20; (c < 'a' || c > 'z') && (name[i] < '0' || name[i] > '9') {
			return false
		}
	}
	return true
}

// envelope is what envelopeProblems found in the members of a structured
// event.
type envelope struct {
	problems []ledger.Problem // sorted by field
	// nulls says an attribute (or data_base64) is null, which the JSON
	// format says is the same as absent: withoutNulls leaves them out
	// before sdk-go reads the event, which reads some of them wrongly.
	nulls bool
}

// envelopeProblems checks the members of a structured event other than data
// and data_base64: each attribute name, the JSON type of each value, that no
// attribute is an empty string where the specification wants it non-empty,
// and that the required attributes are present. A null is an absent
// attribute (JSON format, section 2.4).
func envelopeProblems(body []byte, members []member) envelope {
	var env envelope
	var present [len(requiredAttrs)]bool
	add := func(reason ledger.Reason, field, detail string) {
		env.problems = append(env.problems, ledger.Problem{Reason: reason, Field: field, Detail: detail})
	}
	var data, base64 bool
	for _, m := range members {
		if m.name == "data" || m.name == "data_base64" {
			if body[m.start] != 'n' {
				data, base64 = data || m.name == "data", base64 || m.name == "data_base64"
			} else if m.name == "data_base64" {
				env.nulls = true
			}
			continue
		}
		v := body[m.start:m.end]
		if !validAttrName(m.name) {
			add(ledger.ReasonNotCloudEvent, clip(m.name), "attribute names must be lowercase ASCII letters and digits (a-z, 0-9)")
			continue
		}
		if v[0] == 'n' { // null: absent
			env.nulls = true
			continue
		}
		for i, r := range requiredAttrs {
			if m.name == r {
				present[i] = true
			}
		}
		if !stringAttrs[m.name] {
			switch v[0] {
			case '"', 't', 'f':
			case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
				// CloudEvents' Integer: a whole number within 32 bits.
				if _, err := strconv.ParseInt(string(v), 10, 32); err != nil {
					add(ledger.ReasonNotCloudEvent, m.name, "an extension number must be an integer from -2147483648 to 2147483647")
				}
			default:
				add(ledger.ReasonNotCloudEvent, m.name, "an extension value must be a string, an integer or a boolean")
			}
			continue
		}
		if m.name == "specversion" {
			// Present, whatever its JSON type: a version sharelog does
			// not support.
			if string(v) != `"1.0"` {
				switch s, err := jsontext.AppendUnquote(nil, v); {
				case err != nil:
					add(ledger.ReasonSpecVersion, "specversion", "specversion is not supported: sharelog accepts CloudEvents 1.0")
				case string(s) != "1.0":
					add(ledger.ReasonSpecVersion, "specversion", fmt.Sprintf("specversion %q is not supported: sharelog accepts CloudEvents 1.0", clip(string(s))))
				}
			}
			continue
		}
		if v[0] != '"' {
			add(ledger.ReasonNotCloudEvent, m.name, "must be a string")
			continue
		}
		if len(v) == 2 { // ""
			add(ledger.ReasonNotCloudEvent, m.name, emptyDetail(m.name))
			continue
		}
	}
	if data && base64 {
		add(ledger.ReasonNotCloudEvent, "data_base64", "data and data_base64 must not both be present")
	}
	for i, ok := range present {
		if !ok {
			detail := "required"
			if requiredAttrs[i] == "specversion" {
				detail = "required: specversion 1.0"
			}
			add(ledger.ReasonNotCloudEvent, requiredAttrs[i], detail)
		}
	}
	env.problems = sortProblems(env.problems)
	return env
}

// emptyDetail says why attribute name must not be an empty string.
func emptyDetail(name string) string {
	switch name {
	case "id", "source", "specversion", "type":
		return "must not be empty"
	}
	return "must not be empty when present: leave the attribute out instead"
}

// binaryProblems checks the ce-* headers of a binary-mode event, h as
// binaryHeader returns it: each attribute name (header names are
// case-insensitive, so they are lowercased first) and that no attribute
// that must be non-empty is empty, and that the required attributes are
// there. Every problem is listed, sorted by field.
func binaryProblems(h http.Header) []ledger.Problem {
	var probs []ledger.Problem
	for i, key := range requiredHeaders {
		if _, ok := h[key]; !ok {
			probs = append(probs, ledger.Problem{Reason: ledger.ReasonNotCloudEvent, Field: requiredAttrs[i], Detail: "required"})
		}
	}
	for k, vs := range h {
		if k == "Content-Type" {
			continue
		}
		// Header names are case-insensitive: k is canonical (Ce-Id).
		if !validHeaderAttrName(k[3:]) {
			probs = append(probs, ledger.Problem{Reason: ledger.ReasonNotCloudEvent, Field: clip(strings.ToLower(k[3:])), Detail: fmt.Sprintf("header %s: attribute names must be ASCII letters and digits", clip(k))})
		} else if vs[0] == "" {
			if name := strings.ToLower(k[3:]); stringAttrs[name] {
				probs = append(probs, ledger.Problem{Reason: ledger.ReasonNotCloudEvent, Field: name, Detail: emptyDetail(name)})
			}
		}
	}
	return sortProblems(probs)
}

// withoutNulls returns body, a JSON object, without its members whose value
// is null, bar data (a null data is no data), or body itself if it cannot be
// rewritten.
func withoutNulls(body []byte) []byte {
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	var out bytes.Buffer
	enc := jsontext.NewEncoder(&out)
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' || enc.WriteToken(jsontext.BeginObject) != nil {
		return body
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return body
		}
		n := name.String()
		v, err := dec.ReadValue()
		if err != nil {
			return body
		}
		if v.Kind() == 'n' && n != "data" {
			continue
		}
		if enc.WriteToken(jsontext.String(n)) != nil || enc.WriteValue(v) != nil {
			return body
		}
	}
	if enc.WriteToken(jsontext.EndObject) != nil {
		return body
	}
	return out.Bytes()
}
