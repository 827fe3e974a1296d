package http

import (
	"context"
	"net/http"
	"strconv"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
)

// Tree serves the ledger's signed checkpoints and Merkle proofs. Package
// store's Store implements it.
type Tree interface {
	// Checkpoint returns the signed checkpoint of tree size size, or the
	// latest one when size is 0; ENOTFOUND if there is none.
	Checkpoint(ctx context.Context, size int64) ([]byte, error)
	// CheckpointSizes lists the sizes of the signed checkpoints held, in
	// increasing order after after, at most limit, and whether there are more.
	CheckpointSizes(ctx context.Context, after int64, limit int) ([]int64, bool, error)
	// InclusionProof proves entry seq in the tree of size size (0: the
	// current size).
	InclusionProof(ctx context.Context, seq, size int64) (*checkpoint.InclusionProof, error)
	// ConsistencyProof proves the tree of size from a prefix of the tree of
	// size to (0: the current size).
	ConsistencyProof(ctx context.Context, from, to int64) (*checkpoint.ConsistencyProof, error)
}

// ContentTypeCheckpoint is the media type of GET /v1/checkpoint: a C2SP
// signed note.
const ContentTypeCheckpoint = "text/plain; charset=utf-8"

// proofRoutes registers the checkpoint and proof endpoints.
func (s *Server) proofRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/checkpoint", s.handleCheckpoint)
	mux.HandleFunc("GET /v1/checkpoints", s.handleCheckpointSizes)
	mux.HandleFunc("GET /v1/proof/inclusion", s.handleInclusionProof)
	mux.HandleFunc("GET /v1/proof/consistency", s.handleConsistencyProof)
}

func (s *Server) handleCheckpoint(w http.ResponseWriter, r *http.Request) {
	q, err := sizeParams(r, "size")
	if err == nil && s.Tree == nil {
		err = ledger.Errorf(ledger.EUNAVAILABLE, "checkpoints are not served by this server")
	}
	var msg []byte
	if err == nil {
		msg, err = s.Tree.Checkpoint(r.Context(), q["size"])
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ContentTypeCheckpoint)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(msg)
}

// CheckpointSizes is the body of GET /v1/checkpoints.
type CheckpointSizes struct {
	// Sizes are the tree sizes with a signed checkpoint, in increasing
	// order: the sizes GET /v1/checkpoint?size= and the proofs can use.
	Sizes []int64 `json:"sizes"`
	// More says there are further sizes: ask again with after= the last.
	More bool `json:"more"`
}

// MaxCheckpointSizes bounds one page of GET /v1/checkpoints.
const MaxCheckpointSizes = 10000

func (s *Server) handleCheckpointSizes(w http.ResponseWriter, r *http.Request) {
	q, err := sizeParams(r, "after", "limit")
	if err == nil && s.Tree == nil {
		err = ledger.Errorf(ledger.EUNAVAILABLE, "checkpoints are not served by this server")
	}
	limit := int(q["limit"])
	if limit == 0 || limit > MaxCheckpointSizes {
		limit = MaxCheckpointSizes
	}
	var out CheckpointSizes
	if err == nil {
		out.Sizes, out.More, err = s.Tree.CheckpointSizes(r.Context(), q["after"], limit)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if out.Sizes == nil {
		out.Sizes = []int64{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleInclusionProof(w http.ResponseWriter, r *http.Request) {
	q, err := sizeParams(r, "seq", "size")
	if err == nil && q["seq"] == 0 {
		err = ledger.Errorf(ledger.EINVALID, "seq is required")
	}
	if err == nil && s.Tree == nil {
		err = ledger.Errorf(ledger.EUNAVAILABLE, "proofs are not served by this server")
	}
	var p *checkpoint.InclusionProof
	if err == nil {
		p, err = s.Tree.InclusionProof(r.Context(), q["seq"], q["size"])
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) handleConsistencyProof(w http.ResponseWriter, r *http.Request) {
	q, err := sizeParams(r, "from", "to")
	if err == nil && q["from"] == 0 {
		err = ledger.Errorf(ledger.EINVALID, "from is required")
	}
	if err == nil && s.Tree == nil {
		err = ledger.Errorf(ledger.EUNAVAILABLE, "proofs are not served by this server")
	}
	var p *checkpoint.ConsistencyProof
	if err == nil {
		p, err = s.Tree.ConsistencyProof(r.Context(), q["from"], q["to"])
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// sizeParams parses the named query parameters as positive whole numbers
// (absent: 0) and refuses any other parameter.
func sizeParams(r *http.Request, names ...string) (map[string]int64, error) {
	out := make(map[string]int64, len(names))
	q, err := queryParams(r, "", names...)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		v := q.Get(n)
		if v == "" {
			continue
		}
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil || i < 1 {
			return nil, ledger.Errorf(ledger.EINVALID, "%s must be a whole number of at least 1", n)
		}
		out[n] = i
	}
	return out, nil
}
