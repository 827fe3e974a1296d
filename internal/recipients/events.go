package recipients

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// event is a CloudEvent in the structured JSON format.
type event struct {
	SpecVersion     string          `json:"specversion"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	ID              string          `json:"id"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// canonical returns the canonical JSON of r: ledger.Recipient's JSON encoding
// (fields in declaration order, empty optional fields omitted) without HTML
// escaping and without a trailing newline.
func canonical(r ledger.Recipient) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, fmt.Errorf("encode recipient: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// EventID returns the CloudEvent id of r's recipient event:
// "recipient-" + r.ID + "-" + the first 16 hex digits of the SHA-256 of r's
// canonical JSON. Equal definitions get equal ids and any change to a field
// gives a new id.
func EventID(r ledger.Recipient) (string, error) {
	b, err := canonical(r)
	if err != nil {
		return "", err
	}
	return eventID(r.ID, b), nil
}

func eventID(id string, canon []byte) string {
	sum := sha256.Sum256(canon)
	return "recipient-" + id + "-" + hex.EncodeToString(sum[:])[:16]
}

// Events returns one org.sharelog.recipient.v1 CloudEvent per recipient, in
// the structured JSON format (specversion 1.0, the given source, time now in
// UTC, datacontenttype application/json, data the recipient), in the order of
// rs. Each event's id is EventID of its recipient, so publishing the events of
// an unchanged registry again is a no-op under the ledger's (source, id)
// dedupe, while a changed definition yields a new event that replaces the old.
//
// The recipients are validated first (see Validate); an invalid recipient or
// an empty or unparsable source is an EINVALID error and no events are
// returned.
func Events(rs []ledger.Recipient, source string, now time.Time) ([][]byte, error) {
	if source == "" {
		return nil, ledger.Errorf(ledger.EINVALID, "recipient events need a source")
	}
	if _, err := url.Parse(source); err != nil {
		return nil, ledger.Errorf(ledger.EINVALID, "source %q is not a URI reference", source)
	}
	if err := Validate(rs); err != nil {
		return nil, err
	}
	ts := now.UTC().Format(time.RFC3339Nano)
	out := make([][]byte, 0, len(rs))
	for _, r := range rs {
		data, err := canonical(r)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(event{
			SpecVersion:     "1.0",
			Type:            ledger.TypeRecipient,
			Source:          source,
			ID:              eventID(r.ID, data),
			Time:            ts,
			DataContentType: "application/json",
			Data:            data,
		}); err != nil {
			return nil, fmt.Errorf("encode recipient event: %w", err)
		}
		out = append(out, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	return out, nil
}
