package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// cookieName is the session cookie's name.
const cookieName = "sharelog_session"

// maxSessions bounds the sessions held in memory.
const maxSessions = 10000

// session is one signed-in principal. Its id is the cookie's value; csrf is
// the token every form of the session carries.
type session struct {
	id        string
	csrf      string
	principal *ledger.Principal
	expires   time.Time
	flash     string // a message for the next page shown, then cleared
}

// sessions is the server-side session store, in memory: a restart signs
// everyone out.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	ttl time.Duration
	now func() time.Time
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{m: map[string]*session{}, ttl: ttl, now: time.Now}
}

// randomID returns 32 random bytes, base64url-encoded.
func randomID() string {
	b := make([]byte, 32)
	rand.Read(b) // never returns an error (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for p. When the store is full it drops the
// expired sessions, then if need be the oldest.
func (s *sessions) create(p *ledger.Principal) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if len(s.m) >= maxSessions {
		for id, ss := range s.m {
			if now.After(ss.expires) {
				delete(s.m, id)
			}
		}
	}
	if len(s.m) >= maxSessions {
		// Full of live sessions: the oldest one ends.
		var oldest *session
		for _, ss := range s.m {
			if oldest == nil || ss.expires.Before(oldest.expires) {
				oldest = ss
			}
		}
		delete(s.m, oldest.id)
	}
	ss := &session{id: randomID(), csrf: randomID(), principal: p, expires: now.Add(s.ttl)}
	s.m[ss.id] = ss
	return ss
}

// get returns the live session of r's cookie, or nil.
func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[c.Value]
	if ss == nil {
		return nil
	}
	if s.now().After(ss.expires) {
		delete(s.m, ss.id)
		return nil
	}
	return ss
}

// delete ends the session.
func (s *sessions) delete(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, ss.id)
}

// setFlash keeps msg for the session's next page.
func (s *sessions) setFlash(ss *session, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.flash = msg
}

// takeFlash returns the session's message and clears it.
func (s *sessions) takeFlash(ss *session) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := ss.flash
	ss.flash = ""
	return msg
}

// validCSRF reports whether r's form carries the session's CSRF token.
func (ss *session) validCSRF(r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) == 1
}

// cookie returns the session cookie: HttpOnly, SameSite=Strict, limited to
// /ui/, Secure when the request came over TLS. It lasts while the browser
// is open; the server ends the session at its expiry regardless.
func (ss *session) cookie(r *http.Request) *http.Cookie {
	return &http.Cookie{
		Name: cookieName, Value: ss.id, Path: "/ui/",
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	}
}

// clearCookie removes the session cookie from the browser.
func clearCookie(r *http.Request) *http.Cookie {
	return &http.Cookie{
		Name: cookieName, Value: "", Path: "/ui/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	}
}
