// Package cloudevents turns transport messages into validated sharelog
// events. It is the only place where bytes from producers become
// *ledger.Event values, and the only place that knows the CloudEvents content
// modes: NATS messages in binary or structured mode (DecodeMessage), HTTP
// requests in binary, structured or batch mode (DecodeHTTP), and JSON files of
// structured events (DecodeStructured, DecodeBatch).
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
