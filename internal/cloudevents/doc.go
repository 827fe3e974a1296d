// Package cloudevents turns transport messages into validated sharelog
// events. It is the only place where bytes from producers become
// *ledger.Event values, and the only place that knows the CloudEvents content
// modes: NATS messages in binary or structured mode (DecodeMessage), HTTP
// requests in binary, structured or batch mode (DecodeHTTP), and JSON files of
// structured events (DecodeStructured, DecodeBatch).
//
// Before anything else, the JSON text is checked with the jsontext package of
// github.com/go-json-experiment/json (duplicates.go): it must be valid JSON in
// UTF-8, with no key twice in one object (in data at any depth, or in the
// envelope, where attribute names are compared regardless of case as sdk-go
// reads them). JSON parsers disagree on which of two
// duplicate values counts, so a duplicate could show the checks one value and
// a later reader of Raw another; Raw never holds a key twice. In binary mode,
// the data is checked the same way and the ce-* attribute values must be
// UTF-8.
//
// The CloudEvents envelope is read by the CloudEvents Go SDK (sdk-go). The
// event data is then checked twice, in order: against the type's JSON Schema
// from the schemas package, and by a strict decode into the Go type from
// internal/ledger followed by validator/v10 rules, whose custom tags check
// vocabulary keys against internal/vocab. A test keeps the two in agreement.
//
// Every refusal is a *ledger.InvalidError whose problems name a field and a
// ledger.Reason. Problem details never quote a data-subject identifier, and an
// event that carries one in a context attribute (the subject attribute, the
// id, the source, an extension) is refused.
package cloudevents
