// Package http is sharelog's HTTP API and the client the CLI uses to call it.
//
// The server takes events in every CloudEvents HTTP content mode and answers
// a DPO's questions as JSON. Data-subject identifiers are only ever sent in
// request bodies (POST), never in URLs, and never logged: request logs name
// the route pattern, not the URL. Errors are application/problem+json, mapped
// from the ledger's error codes in one place (error.go) and back again in the
// client.
package http
