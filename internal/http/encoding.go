package http

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/ledger"
)

// decompress replaces r.Body with its decompressed stream when the request
// has Content-Encoding gzip; the decoder's limits (cloudevents.MaxEventSize,
// MaxBatchSize) then apply to the decompressed bytes, so a small compressed
// body that expands past them is refused as too large. The compressed body
// is bounded by the same limit. Any other encoding is refused with 415 and
// an Accept-Encoding header naming gzip (RFC 9110 section 15.5.16).
func decompress(w http.ResponseWriter, r *http.Request) error {
	var codings []string
	for _, v := range r.Header.Values("Content-Encoding") {
		for c := range strings.SplitSeq(v, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	switch {
	case len(codings) == 0:
		return nil
	case len(codings) == 1 && (codings[0] == "gzip" || codings[0] == "x-gzip"):
	default:
		w.Header().Set("Accept-Encoding", "gzip")
		return &Problem{Type: "urn:sharelog:problem:" + ledger.EINVALID, Title: http.StatusText(http.StatusUnsupportedMediaType),
			Status: http.StatusUnsupportedMediaType, Code: ledger.EINVALID,
			Detail: fmt.Sprintf("Content-Encoding %q is not supported: send gzip or no encoding", strings.Join(codings, ", "))}
	}
	zr, err := gzip.NewReader(http.MaxBytesReader(w, r.Body, cloudevents.MaxBatchSize))
	if err != nil {
		return ledger.Invalid(ledger.ReasonMalformed, "body", "Content-Encoding gzip: the body is not gzip data")
	}
	r.Body = zr
	r.Header.Del("Content-Encoding")
	r.ContentLength = -1
	return nil
}
