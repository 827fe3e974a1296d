// Package http is sharelog's HTTP API and the client the CLI uses to call it.
//
// The server takes events in every CloudEvents HTTP content mode and answers
// a DPO's questions as JSON. Data-subject identifiers are only ever sent in
// request bodies (POST), never in URLs, and never logged: request logs name
// the route pattern, not the URL. Errors are application/problem+json, mapped
// from the ledger's error codes in one place (error.go) and back again in the
// client.
//
// Access (auth.go): each operation's roles are declared in
// schemas/openapi.yaml, read once into one table; with an access file the
// server authenticates each request (bearer token or verified client
// certificate), checks the roles, and records a lookup of a person with its
// reason (Server.Consult) before answering it, refusing it if it cannot.
package http
