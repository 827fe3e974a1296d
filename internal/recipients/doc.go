// Package recipients loads the recipient registry from a YAML file (the
// `sharelog serve --recipients FILE` flag) and turns it into
// org.sharelog.recipient.v1 CloudEvents.
//
// The file is strict: its field names are exactly the JSON names of
// ledger.Recipient, an unknown field or a duplicate id is an error, and every
// entry is validated against the rules in ledger.Recipient's struct tags. The
// events it produces have deterministic ids derived from each recipient's
// content, so loading an unchanged file again is a no-op under the ledger's
// (source, id) dedupe and a changed definition yields a new event.
//
// Webhook secrets are not part of this file or of any event: they belong to
// server-side configuration, which a later change adds.
package recipients
