// Package schemas holds sharelog's public event contract as data: one JSON
// Schema (draft 2020-12) per CloudEvent type, named <type>.json, and the
// vocabularies (data categories, purposes, lawful bases) that event data keys
// refer to, under vocab/. Everything is embedded in FS so that the binary
// validates exactly what the repository publishes.
package schemas

import (
	"embed"
	"io/fs"
)

// FS holds the JSON Schemas (<type>.json), the vocabulary files
// (vocab/categories.yaml, vocab/purposes.yaml, vocab/lawful-bases.yaml) and
// the OpenAPI document of the HTTP API (openapi.yaml).
//
//go:embed *.json vocab/*.yaml openapi.yaml
var FS embed.FS

// IDPrefix starts the $id of every event schema; the rest is the event type.
const IDPrefix = "urn:sharelog:schema:"

// ID returns the $id of the JSON Schema for eventType. It is also the only
// value a producer may put in a CloudEvent's dataschema attribute.
func ID(eventType string) string { return IDPrefix + eventType }

// Schema returns the JSON Schema document for eventType. It returns an error
// wrapping fs.ErrNotExist if the type has no schema.
func Schema(eventType string) ([]byte, error) {
	return fs.ReadFile(FS, eventType+".json")
}
