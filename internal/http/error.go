package http

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sharelog/sharelog/internal/ledger"
)

// codes maps ledger error codes to HTTP statuses; the client inverts it.
var codes = map[string]int{
	ledger.EINVALID:     http.StatusBadRequest,
	ledger.ENOTFOUND:    http.StatusNotFound,
	ledger.ECONFLICT:    http.StatusConflict,
	ledger.EUNAVAILABLE: http.StatusServiceUnavailable,
	ledger.ETOOLARGE:    http.StatusRequestEntityTooLarge,
	ledger.EINTERNAL:    http.StatusInternalServerError,

	ledger.EUNAUTHENTICATED: http.StatusUnauthorized,
	ledger.EFORBIDDEN:       http.StatusForbidden,
	ledger.ETOOMANY:         http.StatusTooManyRequests,
}

// statusCode returns the HTTP status for a ledger error code.
func statusCode(code string) int {
	if s, ok := codes[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorCode returns the ledger error code for an HTTP status.
func errorCode(status int) string {
	for code, s := range codes {
		if s == status {
			return code
		}
	}
	if status == http.StatusUnsupportedMediaType {
		return ledger.EINVALID
	}
	return ledger.EINTERNAL
}

// ContentTypeProblem is the media type of error bodies (RFC 9457).
const ContentTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem details body. Events is set when events
// in a POST /v1/events request were refused: one element per refused event.
type Problem struct {
	Type   string          `json:"type"`
	Title  string          `json:"title"`
	Status int             `json:"status"`
	Detail string          `json:"detail,omitempty"`
	Code   string          `json:"code"`
	Events []EventProblems `json:"events,omitempty"`
}

// EventProblems lists what is wrong with one event of a request.
type EventProblems struct {
	Index    int              `json:"index"`
	Source   string           `json:"source,omitempty"`
	ID       string           `json:"id,omitempty"`
	Problems []ledger.Problem `json:"problems"`
}

// Error implements error so that the client can return a *Problem.
func (p *Problem) Error() string {
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	return p.Code + ": " + msg
}

func newProblem(status int, code, detail string) *Problem {
	return &Problem{Type: "urn:sharelog:problem:" + code, Title: http.StatusText(status), Status: status, Detail: detail, Code: code}
}

// problemFor turns any error into a problem. Internal errors get a generic
// detail; the caller logs the real one.
func problemFor(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	code := ledger.ErrorCode(err)
	status := statusCode(code)
	var ie *ledger.InvalidError
	if errors.As(err, &ie) {
		if ie.Reason() == ledger.ReasonContentType {
			status = http.StatusUnsupportedMediaType
		}
		if ie.Reason() == ledger.ReasonOversize {
			status, code = http.StatusRequestEntityTooLarge, ledger.ETOOLARGE
		}
	}
	return newProblem(status, code, ledger.ErrorMessage(err))
}

func writeProblem(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", ContentTypeProblem)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// HeaderReason carries the justification for a request that reads a
// person's data (DESIGN.md, "Access"); it is recorded in the consultation log.
const HeaderReason = "Sharelog-Reason"
