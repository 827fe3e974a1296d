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
// The context attributes are checked as CloudEvents 1.0 says before sdk-go
// reads them (envelope.go): every problem listed, each naming its attribute;
// a null attribute is absent; time is optional. The CloudEvents envelope is
// then read by the CloudEvents Go SDK (sdk-go), unless the event is plain
// (plain.go: only specversion, id, source, type, time, dataschema and
// datacontenttype application/json, as sdk-go would read them): such an
// event, the usual one, is finished without sdk-go's event.Event, to the
// same outcome and the same Raw. The
// event data is read once, by the JSON v2 decoder of go-json-experiment/json,
// straight into the Go type from internal/ledger: that one pass refuses text
// that is not UTF-8, a key twice in one object, a member the type does not
// have (names are matched case-sensitively), a value of the wrong JSON type
// and a null. The validate tags on the type follow, whose custom tags check
// vocabulary keys against internal/vocab: compiled once into plans of checks
// (tagplan.go) that pass the usual valid value, with validator/v10 run, and
// its errors made the problems, for every value a plan does not pass. The Go
// types, their validate tags and the vocabularies are the only rules the
// decoder applies; the JSON Schemas in schemas/ publish the same contract,
// and tests hold the two in agreement on every fixture and every golden
// input.
//
// Every refusal is a *ledger.InvalidError whose problems name a field and a
// ledger.Reason. Problem details never quote a data-subject identifier, and an
// event that carries one in a context attribute (the subject attribute, the
// id, the source, an extension) is refused.
package cloudevents
