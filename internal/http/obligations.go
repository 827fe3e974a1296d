package http

import (
	"net/http"
	"net/url"
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
	if !s.consult(w, r, nil, url.Values{"request": {r.PathValue("id")}}.Encode()) {
		return
	}
	st, err := s.Ledger.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleObligations(w http.ResponseWriter, r *http.Request) {
	q, err := queryParams(r, "/v1/reports/subject", "overdue", "recipient", "state", "limit")
	var f ledger.ObligationFilter
	if err == nil {
		f.Recipient, f.State = q.Get("recipient"), q.Get("state")
		f.Limit, err = parseLimit(q.Get("limit"))
	}
	if v := q.Get("overdue"); err == nil && v != "" {
		if f.Overdue, err = strconv.ParseBool(v); err != nil {
			err = ledger.Errorf(ledger.EINVALID, "overdue must be true or false")
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.Ledger.Obligations(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}
