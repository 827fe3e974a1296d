package http

import (
	"net/http"
	"strconv"

	"github.com/sharelog/sharelog/internal/ledger"
)

// obligationRoutes adds the propagation endpoints to mux: the status of one
// request, obligations across requests, and the report for a data subject.
// Request ids and recipient ids are not personal data and may go in URLs;
// the subject of a report goes in the request body.
func (s *Server) obligationRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/requests/{id}", s.handleRequestStatus)
	mux.HandleFunc("GET /v1/obligations", s.handleObligations)
	mux.HandleFunc("POST /v1/reports/subject", subjectHandler(s, s.Ledger.SubjectReport))
}

func (s *Server) handleRequestStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.Ledger.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleObligations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f ledger.ObligationFilter
	for k := range q {
		switch k {
		case "overdue", "recipient", "state", "limit":
		case "subject":
			s.fail(w, r, ledger.Errorf(ledger.EINVALID, "a data subject never goes in a URL: POST it to /v1/reports/subject"))
			return
		default:
			s.fail(w, r, ledger.Errorf(ledger.EINVALID, "unknown query parameter %q", k))
			return
		}
	}
	f.Recipient, f.State = q.Get("recipient"), q.Get("state")
	if v := q.Get("overdue"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.fail(w, r, ledger.Errorf(ledger.EINVALID, "overdue must be true or false"))
			return
		}
		f.Overdue = b
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > ledger.MaxLimit {
			s.fail(w, r, ledger.Errorf(ledger.EINVALID, "limit must be between 1 and %d", ledger.MaxLimit))
			return
		}
		f.Limit = n
	}
	list, err := s.Ledger.Obligations(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}
