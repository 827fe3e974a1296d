package console

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/notify"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Ledger is what the console reads from the ledger store (a subset of what
// the HTTP API reads).
type Ledger interface {
	Who(ctx context.Context, subj ledger.Subject) (*ledger.Who, error)
	SubjectReport(ctx context.Context, subj ledger.Subject) (*ledger.SubjectReport, error)
	Disclosures(ctx context.Context, f ledger.DisclosureFilter) (*ledger.DisclosurePage, error)
	Recipients(ctx context.Context) ([]ledger.Recipient, error)
	Recipient(ctx context.Context, id string) (*ledger.Recipient, error)
	Status(ctx context.Context, request string) (*ledger.RequestStatus, error)
	Obligations(ctx context.Context, f ledger.ObligationFilter) (*ledger.ObligationList, error)
}

// Notices is the manual queue, as the API's notice endpoints use it.
type Notices interface {
	Obligation(ctx context.Context, notice string) (*ledger.Obligation, error)
	ManualQueue(ctx context.Context) ([]notify.ManualNotice, error)
	MarkSent(ctx context.Context, notice, sentBy string) (*ledger.NoticeDelivery, error)
}

// Checkpoints gives the latest signed checkpoint (size 0), or ENOTFOUND.
type Checkpoints interface {
	Checkpoint(ctx context.Context, size int64) ([]byte, error)
}

// Config is what the console is built from; the HTTP server fills it in
// from its own fields.
type Config struct {
	Ledger  Ledger
	Notices Notices     // nil: the manual queue is not running
	Tree    Checkpoints // nil: checkpoints are not served
	// Consultations is the consultation log; nil: it is not kept, and its
	// page says so.
	Consultations ConsultationLog
	// Access is the --access file; nil serves everyone as "anonymous".
	Access *access.Control
	// Consult records a lookup of a person's data before it is answered
	// (DPA 2018 s.62); an error refuses the lookup. nil records nothing.
	Consult func(ctx context.Context, c ledger.Consultation) error
	// Publish publishes one structured CloudEvent as POST /v1/events does
	// (validated, refused with problems, stored in SHARELOG_IN, applied)
	// and says what became of it: "recorded", "duplicate", "pending", or
	// an error naming the rule that refused it. ctx carries the principal
	// (access.From).
	Publish func(ctx context.Context, event []byte) (outcome string, err error)
	// Roles returns the roles the API declares for an operation
	// (schemas/openapi.yaml, x-sharelog-roles), nil for one it does not
	// know; nil Roles uses the console's copy of that table.
	Roles func(operation string) []ledger.Role
	// OIDC, when set, also signs people in with the organisation's OpenID
	// Connect provider.
	OIDC   *OIDC
	Logger *slog.Logger
	// SessionTTL is how long a sign-in lasts (default 8 hours).
	SessionTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Console is the web console's handler; mount it at Prefix.
type Console struct {
	cfg      Config
	sessions *sessions
	pages    map[string]*template.Template
	mux      *http.ServeMux
	log      *slog.Logger
	origin   *http.CrossOriginProtection
	oidc     *oidcClient // nil without Config.OIDC
}

// Prefix is the path the console is served under.
const Prefix = "/ui/"

// Source is the CloudEvents source of the events the console publishes.
const Source = "sharelog/console"

// anonymous is the principal of everyone when there is no --access file:
// the API serves everyone then, and so does the console, with a banner.
var anonymous = &ledger.Principal{Name: "anonymous", Roles: []ledger.Role{ledger.RoleDPO, ledger.RoleClerk, ledger.RoleAdmin, ledger.RoleAuditor}}

// CSP is the console's Content-Security-Policy: nothing inline, nothing
// from another origin.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Console{cfg: cfg, sessions: newSessions(cfg.SessionTTL), pages: map[string]*template.Template{},
		log: cfg.Logger.With("system", "console"), origin: http.NewCrossOriginProtection()}
	c.sessions.now = cfg.Now
	if cfg.OIDC != nil {
		c.oidc = &oidcClient{cfg: *cfg.OIDC, pending: map[string]pendingLogin{}}
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "partials" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", n)
		if err != nil {
			return nil, err
		}
		c.pages[base] = t
	}
	c.routes()
	return c, nil
}

// ServeHTTP serves the console with its security headers, refusing
// cross-origin form posts (http.CrossOriginProtection) on top of the
// session's CSRF token.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if err := c.origin.Check(r); err != nil {
		c.errorPage(w, r, nil, http.StatusForbidden, "This form was sent from another site, so it was refused.")
		return
	}
	c.mux.ServeHTTP(w, r)
}

// page is what every template gets.
type page struct {
	Title     string
	Principal *ledger.Principal
	Anonymous bool
	OIDC      bool // sign-in with the organisation's provider is offered
	Tokens    bool // sign-in with a token is offered
	CSRF      string
	Flash     string
	Nav       []navItem
	Errors    []fieldError
	Data      any
}

type navItem struct {
	Href, Label string
	Current     bool
}

// fieldError is one entry of an error summary: the field's id and what to do.
type fieldError struct {
	Field, Message string
}

// render writes page name with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, ss *session, status int, name, title string, data any, errs ...fieldError) {
	t := c.pages[name]
	p := page{Title: title, Data: data, Errors: errs, Anonymous: !c.authenticates(), OIDC: c.oidc != nil, Tokens: c.cfg.Access != nil}
	if ss != nil {
		p.Principal, p.CSRF, p.Flash = ss.principal, ss.csrf, c.sessions.takeFlash(ss)
		p.Nav = c.nav(ss.principal, r.URL.Path)
	}
	if len(errs) > 0 {
		p.Title = "Error: " + title
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		c.log.Error("render", "page", name, "err", err)
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage shows msg with status.
func (c *Console) errorPage(w http.ResponseWriter, r *http.Request, ss *session, status int, msg string) {
	title := http.StatusText(status)
	c.render(w, r, ss, status, "error", title, msg)
}

// fail shows err: its message, which names no person, and for internal
// errors a generic one.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, ss *session, err error) {
	status := http.StatusInternalServerError
	switch ledger.ErrorCode(err) {
	case ledger.EINVALID:
		status = http.StatusBadRequest
	case ledger.ENOTFOUND:
		status = http.StatusNotFound
	case ledger.ECONFLICT:
		status = http.StatusConflict
	case ledger.EUNAVAILABLE:
		status = http.StatusServiceUnavailable
	case ledger.EFORBIDDEN:
		status = http.StatusForbidden
	case ledger.EUNAUTHENTICATED:
		status = http.StatusUnauthorized
	}
	msg := ledger.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		c.log.Error("page failed", "route", r.Pattern, "err", err)
		msg = "Something went wrong; the server's log has the details."
	}
	c.errorPage(w, r, ss, status, msg)
}

// section is a part of the console: its pages need one of roles, as the API
// operation it stands for does (Config.Roles gives the API's table; roles
// here are the default, the same as schemas/openapi.yaml's).
type section struct {
	href, label, operation string
	roles                  []ledger.Role
}

// The sections, in the order the navigation shows them.
var (
	secPerson   = section{"/ui/person", "Find a person", "who", []ledger.Role{ledger.RoleDPO}}
	secRequests = section{"/ui/requests", "Requests", "listObligations", []ledger.Role{ledger.RoleDPO, ledger.RoleClerk}}
	secRequest  = section{"/ui/requests", "Requests", "requestStatus", []ledger.Role{ledger.RoleDPO}}
	secOverdue  = section{"/ui/overdue", "Overdue", "listObligations", []ledger.Role{ledger.RoleDPO, ledger.RoleClerk}}
	secManual   = section{"/ui/manual", "Manual queue", "manualQueue", []ledger.Role{ledger.RoleClerk, ledger.RoleDPO}}
	secMarkSent = section{"/ui/manual", "Manual queue", "markSent", []ledger.Role{ledger.RoleClerk, ledger.RoleDPO}}
	// Decisions are events; ledger.MayPublish decides each one. The page
	// is for those who may publish them (not an API operation).
	secDecisions  = section{"/ui/decisions", "Record a decision", "recordDecision", ledger.PublishRoles[ledger.TypeExemption]}
	secRecipients = section{"/ui/recipients", "Recipients", "listRecipients", []ledger.Role{ledger.RoleAdmin, ledger.RoleDPO, ledger.RoleAuditor}}
	secRecipient  = section{"/ui/recipients", "Recipients", "getRecipient", []ledger.Role{ledger.RoleAdmin, ledger.RoleDPO, ledger.RoleAuditor}}
	secEvidence   = section{"/ui/evidence", "Evidence", "getCheckpoint", []ledger.Role{ledger.RoleAuditor, ledger.RoleDPO, ledger.RoleAdmin}}
	secExport     = section{"/ui/evidence", "Evidence", "listDisclosures", []ledger.Role{ledger.RoleDPO}}
	secAccesses   = section{"/ui/evidence/accesses", "Consultation log", OperationAccesses, []ledger.Role{ledger.RoleDPO, ledger.RoleAuditor}}
	sections      = []section{secPerson, secRequests, secOverdue, secManual, secDecisions, secRecipients, secEvidence}
)

func (c *Console) nav(p *ledger.Principal, path string) []navItem {
	var items []navItem
	for _, s := range sections {
		if ledger.MayRead(p, s.operation, c.roles(s), "") == nil {
			items = append(items, navItem{Href: s.href, Label: s.label, Current: strings.HasPrefix(path, s.href)})
		}
	}
	return items
}

// handler is a console page: it gets the request's session.
type handler func(w http.ResponseWriter, r *http.Request, ss *session)

// authed serves h to a signed-in principal allowed in sec (nil: any
// principal), checking the CSRF token of every POST. Without --access,
// everyone is "anonymous" and gets a session on first visit.
func (c *Console) authed(sec *section, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss := c.sessions.get(r)
		if ss == nil && !c.authenticates() {
			ss = c.sessions.create(anonymous)
			http.SetCookie(w, ss.cookie(r))
			if r.Method == http.MethodPost {
				c.errorPage(w, r, ss, http.StatusForbidden, "Your session had ended; go back, reload the form and send it again.")
				return
			}
		}
		if ss == nil {
			http.Redirect(w, r, "/ui/sign-in", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxRoPA+64<<10)
			if !ss.validCSRF(r) {
				c.errorPage(w, r, ss, http.StatusForbidden, "This form has expired or did not come from this console; go back, reload the page and send it again.")
				return
			}
		}
		if sec != nil {
			if err := ledger.MayRead(ss.principal, sec.operation, c.roles(*sec), ""); err != nil {
				c.fail(w, r, ss, err)
				return
			}
		}
		ctx := access.WithPrincipal(r.Context(), ss.principal)
		h(w, r.WithContext(ctx), ss)
	}
}

func (c *Console) routes() {
	mux := http.NewServeMux()
	assets, _ := fs.Sub(assetFS, "assets")
	mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /ui/sign-in", c.signInForm)
	mux.HandleFunc("POST /ui/sign-in", c.signIn)
	mux.HandleFunc("POST /ui/sign-out", c.authed(nil, c.signOut))
	if c.oidc != nil {
		mux.HandleFunc("GET /ui/oidc/login", c.oidcLogin)
		mux.HandleFunc("GET /ui/oidc/callback", c.oidcCallback)
	}
	mux.HandleFunc("GET /ui/{$}", c.authed(nil, c.home))
	mux.HandleFunc("GET /ui/person", c.authed(&secPerson, c.personForm))
	mux.HandleFunc("POST /ui/person", c.authed(&secPerson, c.person))
	mux.HandleFunc("POST /ui/person/report", c.authed(&secPerson, c.personReport))
	mux.HandleFunc("GET /ui/requests", c.authed(&secRequests, c.requests))
	mux.HandleFunc("GET /ui/requests/{id}", c.authed(&secRequest, c.request))
	mux.HandleFunc("GET /ui/overdue", c.authed(&secOverdue, c.overdue))
	mux.HandleFunc("GET /ui/manual", c.authed(&secManual, c.manual))
	mux.HandleFunc("GET /ui/manual/{notice}", c.authed(&secManual, c.manualNotice))
	mux.HandleFunc("POST /ui/manual/{notice}/sent", c.authed(&secMarkSent, c.markSent))
	mux.HandleFunc("GET /ui/decisions", c.authed(&secDecisions, c.decisions))
	mux.HandleFunc("POST /ui/decisions/{kind}", c.authed(&secDecisions, c.decide))
	mux.HandleFunc("GET /ui/recipients", c.authed(&secRecipients, c.recipients))
	mux.HandleFunc("GET /ui/recipients/{id}", c.authed(&secRecipient, c.recipient))
	mux.HandleFunc("GET /ui/evidence", c.authed(&secEvidence, c.evidence))
	mux.HandleFunc("GET /ui/evidence/disclosures.csv", c.authed(&secExport, c.disclosuresCSV))
	mux.HandleFunc("POST /ui/evidence/ropa.csv", c.authed(&secExport, c.ropaCSV))
	mux.HandleFunc("GET /ui/evidence/accesses", c.authed(&secAccesses, c.accesses))
	mux.HandleFunc("POST /ui/evidence/accesses", c.authed(&secAccesses, c.accesses))
	mux.HandleFunc("GET /ui/evidence/accesses.csv", c.authed(&secAccesses, c.accessesCSV))
	mux.HandleFunc("POST /ui/evidence/accesses.csv", c.authed(&secAccesses, c.accessesCSV))
	mux.HandleFunc("/ui/", c.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *session) {
		c.errorPage(w, r, ss, http.StatusNotFound, "There is no such page.")
	}))
	c.mux = mux
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, ss *session) {
	c.render(w, r, ss, http.StatusOK, "home", "sharelog", nil)
}

// authenticates reports whether people sign in (--access or --oidc);
// otherwise everyone is anonymous.
func (c *Console) authenticates() bool { return c.cfg.Access != nil || c.oidc != nil }

func (c *Console) signInForm(w http.ResponseWriter, r *http.Request) {
	if !c.authenticates() {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	c.render(w, r, nil, http.StatusOK, "sign-in", "Sign in", nil)
}

// signIn takes a principal's token from the form and starts a session.
func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	if c.cfg.Access == nil {
		http.Redirect(w, r, "/ui/sign-in", http.StatusSeeOther)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	p := c.cfg.Access.Token(strings.TrimSpace(r.PostFormValue("token")))
	if p == nil {
		c.render(w, r, nil, http.StatusUnauthorized, "sign-in", "Sign in", nil,
			fieldError{"token", "Enter a valid access token; this one is not in the access file"})
		return
	}
	if old := c.sessions.get(r); old != nil {
		c.sessions.delete(old)
	}
	ss := c.sessions.create(p)
	c.log.Info("signed in", "principal", p.Name)
	http.SetCookie(w, ss.cookie(r))
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request, ss *session) {
	c.sessions.delete(ss)
	http.SetCookie(w, clearCookie(r))
	if !c.authenticates() {
		http.Redirect(w, r, "/ui/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/ui/sign-in", http.StatusSeeOther)
}

// may reports whether ss's principal may use sec (for links and buttons).
func (c *Console) may(ss *session, sec section) bool {
	return ledger.MayRead(ss.principal, sec.operation, c.roles(sec), "") == nil
}

// roles returns the roles that may use sec: the API's for its operation
// when Config.Roles knows it, else the section's own.
func (c *Console) roles(sec section) []ledger.Role {
	if c.cfg.Roles != nil {
		if r := c.cfg.Roles(sec.operation); len(r) > 0 {
			return r
		}
	}
	return sec.roles
}

var funcs = template.FuncMap{
	"date": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return ""
			}
			return v.UTC().Format("2 Jan 2006 15:04 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return ""
			}
			return v.UTC().Format("2 Jan 2006 15:04 UTC")
		}
		return ""
	},
	"day": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2 Jan 2006")
	},
	"join": func(s []string) string { return strings.Join(s, ", ") },
	"has":  func(p *ledger.Principal, role string) bool { return p.Has(ledger.Role(role)) },
	"errfor": func(errs []fieldError, field string) string {
		for _, e := range errs {
			if e.Field == field {
				return e.Message
			}
		}
		return ""
	},
	"field": func(errs []fieldError, id, label, hint, name string, value any) textField {
		v, _ := value.(string)
		f := textField{ID: id, Label: label, Hint: hint, Name: name, Value: v}
		for _, e := range errs {
			if e.Field == id {
				f.Error = e.Message
			}
		}
		return f
	},
	"contains": func(s []string, v string) bool {
		return slices.Contains(s, v)
	},
}

// textField is a text input with its label, hint and error (partials.html).
type textField struct {
	ID, Label, Hint, Name, Value, Error string
}

// errIs reports whether err has code.
func errIs(err error, code string) bool {
	return err != nil && ledger.ErrorCode(err) == code
}
