package http

import (
	"context"
	"net/http"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/ledger"
)

// The consultation log (DPA 2018 s.62): POST /v1/accesses lists who
// consulted whose data, when and why, for the DPO and, without personal
// data, for the auditor (the Commissioner, s.62(6)).

// OperationAccesses is the operationId of POST /v1/accesses.
const OperationAccesses = "listAccesses"

// ConsultationLog is what POST /v1/accesses reads; *store.Store
// implements it. A Ledger that does not answers 503.
type ConsultationLog interface {
	Consultations(ctx context.Context, f ledger.ConsultationFilter) (*ledger.ConsultationPage, error)
}

func (s *Server) accessRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/accesses", s.handleAccesses)
}

func (s *Server) handleAccesses(w http.ResponseWriter, r *http.Request) {
	var f ledger.ConsultationFilter
	if err := decodeBody(r, &f); err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case f.Limit < 0 || f.Limit > ledger.MaxLimit:
		s.fail(w, r, ledger.Errorf(ledger.EINVALID, "limit must be between 1 and %d", ledger.MaxLimit))
		return
	case !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since):
		s.fail(w, r, ledger.Errorf(ledger.EINVALID, "until must be after since"))
		return
	case f.Subject != nil && (f.Subject.Scheme == "" || f.Subject.ID == ""):
		s.fail(w, r, ledger.Errorf(ledger.EINVALID, "subject.scheme and subject.id are required"))
		return
	}
	log, ok := s.Ledger.(ConsultationLog)
	if !ok {
		s.fail(w, r, ledger.Errorf(ledger.EUNAVAILABLE, "this server keeps no consultation log"))
		return
	}
	var p *ledger.Principal // nil without access control: everyone (on loopback) reads it all
	if s.Access != nil {
		if p = access.From(r.Context()); p == nil {
			s.fail(w, r, ledger.Errorf(ledger.EUNAUTHENTICATED, "a credential is required for %s", OperationAccesses))
			return
		}
	}
	personal, err := ledger.MayReadConsultations(p, f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Reading the log by person reads the person's data: it is a
	// consultation itself, recorded before the answer (auth.go).
	if f.Subject != nil && !s.consult(w, r, f.Subject, accessesQuery(f)) {
		return
	}
	page, err := log.Consultations(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !personal {
		page = page.WithoutPersonal()
	}
	writeJSON(w, http.StatusOK, page)
}

// accessesQuery describes a filter of the consultation log for the log
// itself, without its subject.
func accessesQuery(f ledger.ConsultationFilter) string {
	return pageValues("principal", f.Principal, f.Since, f.Until, f.After, f.Limit).Encode()
}

// Accesses lists one page of the consultation log (POST /v1/accesses).
func (c *Client) Accesses(ctx context.Context, f ledger.ConsultationFilter) (*ledger.ConsultationPage, error) {
	var out ledger.ConsultationPage
	return &out, c.doJSON(ctx, http.MethodPost, "/v1/accesses", f, &out)
}
