package main

import (
	"errors"
	"fmt"

	"github.com/sharelog/sharelog/internal/access"
	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
)

// TokenCmd prints a new bearer token and its hash (DESIGN.md, "Access").
type TokenCmd struct {
	JSON bool `help:"Print JSON instead of text." name:"json"`
}

// NewToken is the output of sharelog token.
type NewToken struct {
	// Token goes to the principal (CLI --token or SHARELOG_TOKEN, HTTP
	// Authorization: Bearer, NATS password); it is shown once, never stored.
	Token string `json:"token"`
	// TokenSHA256 goes in the access file's entry for the principal.
	TokenSHA256 string `json:"tokenSHA256"`
}

// Run implements the token command.
func (c *TokenCmd) Run(env *Env) error {
	tok, sha := access.NewToken()
	out := NewToken{Token: tok, TokenSHA256: sha}
	if c.JSON {
		return printJSON(env.Stdout, out)
	}
	_, err := fmt.Fprintf(env.Stdout, "token:        %s\ntokenSHA256:  %s\n\n"+
		"Give the token to the principal, and put the tokenSHA256 in its entry of the\n"+
		"access file (sharelog serve --access FILE); the file never holds the token.\n", out.Token, out.TokenSHA256)
	return err
}

// accessHint says what to do about a refusal for want of a credential,
// a role or a reason; "" for any other error.
func accessHint(err error) string {
	var p *slhttp.Problem
	if !errors.As(err, &p) {
		return ""
	}
	switch p.Code {
	case ledger.EUNAUTHENTICATED:
		return "the server wants a credential: give your token with --token or SHARELOG_TOKEN"
	case ledger.EFORBIDDEN:
		return "your principal's roles do not allow this; ask whoever keeps the server's access file"
	}
	return ""
}
