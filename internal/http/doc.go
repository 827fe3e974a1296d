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
//
// What a client can make the server spend is bounded (limits.go): connections
// at once, the time to read a request, lookups of people's data per
// principal; the decoder bounds events per batch. The server speaks HTTPS,
// and mutual TLS, when given a certificate (tls.go).
package http
