// Package console is the data protection officer's web console, served at
// /ui/ by the HTTP API server: server-rendered pages (html/template) that
// work without JavaScript, with their stylesheet embedded in the binary and
// a strict Content-Security-Policy.
//
// The console reads and writes through the same rules as the API: a
// principal from the --access file signs in with its token (or, without
// --access, everyone is "anonymous"); each page is allowed by ledger.MayRead
// with the roles of the API operation it stands for; every lookup of a person
// is recorded by Consult (DPA 2018 s.62) before it is answered; decisions are
// published as the events they are, after ledger.MayPublish, through the
// same path as POST /v1/events. Data-subject identifiers travel only in
// POST bodies, never in URLs.
package console
