package http

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Read-your-writes across replicas. Every replica folds the same
// SHARELOG_IN into its own ledger, each at its own pace. A write's answer
// gives each event's stream sequence (AcceptedEvent.StreamSeq); a read sent
// with that sequence in the Sharelog-Applied header, to any replica, is
// answered only once that replica has applied the stream up to it, so it
// sees the write. The operations that take the header declare it in
// schemas/openapi.yaml (components/parameters/Applied).

// HeaderApplied carries the SHARELOG_IN sequence a read must see applied.
const HeaderApplied = "Sharelog-Applied"

// appliedParameter is the reference by which an operation in
// schemas/openapi.yaml declares that it takes HeaderApplied.
const appliedParameter = "#/components/parameters/Applied"

// DefaultAppliedWait bounds how long a read waits for HeaderApplied's
// sequence (Server.AppliedWait).
const DefaultAppliedWait = 5 * time.Second

// waitApplied waits, for a request with HeaderApplied, until the ledger has
// applied SHARELOG_IN up to the sequence it gives, at most s.AppliedWait.
// It refuses the header on an operation that does not declare it, or
// holding anything but a positive integer (400), and answers 503 with
// Retry-After when the wait runs out. It reports whether the request may
// go on; when not, it has answered it.
func (s *Server) waitApplied(w http.ResponseWriter, r *http.Request, op Operation) bool {
	h := r.Header.Get(HeaderApplied)
	if h == "" {
		return true
	}
	if !op.Applied {
		s.fail(w, r, ledger.Errorf(ledger.EINVALID, "%s does not take the %s header: only reads wait for a stream sequence", cmp.Or(op.ID, "this request"), HeaderApplied))
		return false
	}
	seq, err := strconv.ParseUint(strings.TrimSpace(h), 10, 64)
	if err != nil || seq == 0 {
		s.fail(w, r, ledger.Errorf(ledger.EINVALID, "the %s header must be a SHARELOG_IN stream sequence, a positive integer (the streamSeq of a write's answer)", HeaderApplied))
		return false
	}
	wait := s.AppliedWait
	if wait == 0 {
		wait = DefaultAppliedWait
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	err = s.Ledger.WaitApplied(ctx, seq)
	switch {
	case err == nil:
		return true
	case r.Context().Err() != nil:
		return false // the client went away
	case errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, ledger.Errorf(ledger.EUNAVAILABLE, "this replica has not applied SHARELOG_IN up to sequence %d within %s: try again, or ask the replica that answered the write", seq, wait))
	default:
		s.fail(w, r, err)
	}
	return false
}
