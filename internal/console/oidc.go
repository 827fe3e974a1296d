package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.yaml.in/yaml/v3"
	"golang.org/x/oauth2"

	"github.com/sharelog/sharelog/internal/ledger"
)

// OIDC configures sign-in with the organisation's own OpenID Connect
// provider (the --oidc file): the authorisation code flow with PKCE, a
// state bound to the browser and a nonce bound to the ID token. The roles
// come from one claim of the ID token.
type OIDC struct {
	// Issuer is the provider's issuer URL (its discovery document is at
	// Issuer/.well-known/openid-configuration).
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"clientID"`
	// ClientSecret, or ClientSecretEnv naming an environment variable that
	// holds it, authenticates the console to the provider.
	ClientSecret    string `yaml:"clientSecret"`
	ClientSecretEnv string `yaml:"clientSecretEnv"`
	// RedirectURL is the console's callback as registered with the
	// provider: https://<host>/ui/oidc/callback. Empty: derived from each
	// request's host (for a test or a single loopback host only).
	RedirectURL string `yaml:"redirectURL"`
	// Scopes asked for (default openid, profile, email).
	Scopes []string `yaml:"scopes"`
	// RolesClaim names the claim, a string or a list of strings, whose
	// values that are sharelog roles (dpo, clerk, admin, auditor) become the
	// principal's roles (default "groups"); other values are ignored.
	RolesClaim string `yaml:"rolesClaim"`
	// NameClaim names the claim shown as the principal's name in the
	// consultation log (default "email", then preferred_username, then sub).
	NameClaim string `yaml:"nameClaim"`
}

// LoadOIDC reads and checks an --oidc file.
func LoadOIDC(path string) (*OIDC, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("oidc file: %w", err)
	}
	var o OIDC
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&o); err != nil {
		return nil, fmt.Errorf("oidc file %s: %w", path, err)
	}
	if o.ClientSecretEnv != "" {
		o.ClientSecret = os.Getenv(o.ClientSecretEnv)
		if o.ClientSecret == "" {
			return nil, fmt.Errorf("oidc file %s: clientSecretEnv names %s, which is empty", path, o.ClientSecretEnv)
		}
	}
	switch {
	case o.Issuer == "":
		return nil, fmt.Errorf("oidc file %s: issuer is required", path)
	case o.ClientID == "":
		return nil, fmt.Errorf("oidc file %s: clientID is required", path)
	}
	return &o, nil
}

// oidcRoles are the roles a provider's claim may grant: the console's.
// producer and recipient principals come from the --access file only.
var oidcRoles = []ledger.Role{ledger.RoleDPO, ledger.RoleClerk, ledger.RoleAdmin, ledger.RoleAuditor}

// stateCookie binds a sign-in's state to the browser that started it.
const stateCookie = "sharelog_oidc"

// loginTTL bounds how long a sign-in at the provider may take.
const loginTTL = 10 * time.Minute

// maxPending bounds the sign-ins under way, so that starting sign-ins
// without finishing them cannot fill the memory.
const maxPending = 10000

// oidcClient is the provider (discovered on first use) and the sign-ins
// under way, by state.
type oidcClient struct {
	cfg      OIDC
	mu       sync.Mutex
	provider *oidc.Provider
	pending  map[string]pendingLogin
}

type pendingLogin struct {
	nonce, verifier, redirect string
	expires                   time.Time
}

// discover returns the provider, fetching its discovery document once.
func (o *oidcClient) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	o.provider = p
	return p, nil
}

func (o *oidcClient) oauth2(p *oidc.Provider, redirect string) *oauth2.Config {
	scopes := o.cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: scopes}
}

func (o *oidcClient) redirectURL(r *http.Request) string {
	if o.cfg.RedirectURL != "" {
		return o.cfg.RedirectURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/ui/oidc/callback"
}

// oidcLogin sends the browser to the provider.
func (c *Console) oidcLogin(w http.ResponseWriter, r *http.Request) {
	o := c.oidc
	p, err := o.discover(r.Context())
	if err != nil {
		c.log.Error("oidc discovery", "issuer", o.cfg.Issuer, "err", err)
		c.errorPage(w, r, nil, http.StatusServiceUnavailable, "The organisation's sign-in service cannot be reached; try again later, or sign in with a token.")
		return
	}
	state, nonce, verifier := randomID(), randomID(), oauth2.GenerateVerifier()
	redirect := o.redirectURL(r)
	now := c.cfg.Now()
	o.mu.Lock()
	for s, pl := range o.pending {
		if now.After(pl.expires) {
			delete(o.pending, s)
		}
	}
	if len(o.pending) >= maxPending {
		o.mu.Unlock()
		c.errorPage(w, r, nil, http.StatusServiceUnavailable, "Too many sign-ins are under way; try again in a few minutes.")
		return
	}
	o.pending[state] = pendingLogin{nonce: nonce, verifier: verifier, redirect: redirect, expires: now.Add(loginTTL)}
	o.mu.Unlock()
	// Lax, not Strict: the provider's redirect back is a cross-site
	// navigation, on which a Strict cookie would not be sent.
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state, Path: "/ui/oidc/", MaxAge: int(loginTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, o.oauth2(p, redirect).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// oidcCallback takes the provider's answer: the state must be the one this
// browser was sent with, the code is exchanged (with the PKCE verifier),
// the ID token verified (signature, issuer, audience, expiry, nonce), and
// the roles read from its claim.
func (c *Console) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := c.oidc
	q := r.URL.Query()
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: "", Path: "/ui/oidc/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	state := q.Get("state")
	ck, err := r.Cookie(stateCookie)
	if err != nil || state == "" || ck.Value != state {
		c.errorPage(w, r, nil, http.StatusBadRequest, "This sign-in did not start in this browser, or took too long; sign in again.")
		return
	}
	o.mu.Lock()
	pl, ok := o.pending[state]
	delete(o.pending, state)
	o.mu.Unlock()
	if !ok || c.cfg.Now().After(pl.expires) {
		c.errorPage(w, r, nil, http.StatusBadRequest, "This sign-in has expired; sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		c.errorPage(w, r, nil, http.StatusUnauthorized, "The organisation's sign-in service refused the sign-in ("+e+").")
		return
	}
	p, err := o.discover(r.Context())
	if err != nil {
		c.errorPage(w, r, nil, http.StatusServiceUnavailable, "The organisation's sign-in service cannot be reached; try again later.")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	principal, err := o.principal(ctx, p, pl, q.Get("code"))
	if err != nil {
		c.log.Warn("oidc sign-in refused", "err", err)
		c.errorPage(w, r, nil, http.StatusForbidden, "Signing in failed: "+err.Error())
		return
	}
	ss := c.sessions.create(principal)
	c.log.Info("signed in", "principal", principal.Name, "via", "oidc")
	http.SetCookie(w, ss.cookie(r))
	// A page of our own, not a redirect: the session cookie is
	// SameSite=Strict, and the navigation that led here started at the
	// provider, so the browser would not send it on a redirect.
	c.render(w, r, nil, http.StatusOK, "signed-in", "Signed in", principal.Name)
}

// principal exchanges the code and reads the principal from the ID token.
func (o *oidcClient) principal(ctx context.Context, p *oidc.Provider, pl pendingLogin, code string) (*ledger.Principal, error) {
	if code == "" {
		return nil, errors.New("the provider gave no code")
	}
	tok, err := o.oauth2(p, pl.redirect).Exchange(ctx, code, oauth2.VerifierOption(pl.verifier))
	if err != nil {
		return nil, errors.New("the provider did not accept the sign-in code")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("the provider gave no ID token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("the ID token is not valid: %v", err)
	}
	if idt.Nonce != pl.nonce {
		return nil, errors.New("the ID token is not for this sign-in (nonce)")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	name := ""
	for _, k := range []string{o.cfg.NameClaim, "email", "preferred_username", "sub"} {
		if v, ok := claims[k].(string); k != "" && ok && v != "" {
			name = v
			break
		}
	}
	rolesClaim := o.cfg.RolesClaim
	if rolesClaim == "" {
		rolesClaim = "groups"
	}
	var values []string
	switch v := claims[rolesClaim].(type) {
	case string:
		values = strings.Fields(v)
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				values = append(values, s)
			}
		}
	}
	var roles []ledger.Role
	for _, r := range oidcRoles {
		if slices.Contains(values, string(r)) {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return nil, fmt.Errorf("your account (%s) has no sharelog role in its %q claim", name, rolesClaim)
	}
	return &ledger.Principal{Name: name, Roles: roles}, nil
}
