package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a signed webhook request: the notices sharelog POSTs to a
// recipient, and the acks a recipient POSTs back.
const (
	// HeaderTimestamp is the time of signing, in Unix seconds.
	HeaderTimestamp = "Sharelog-Timestamp"
	// HeaderSignature is "v1=" followed by the lowercase hex
	// HMAC-SHA256(secret, timestamp + "." + body). It may hold several
	// comma-separated signatures (during a change of secret); one valid
	// signature is enough.
	HeaderSignature = "Sharelog-Signature"
	// HeaderDelivery is the attempt number of a notice delivery, from 1.
	HeaderDelivery = "Sharelog-Delivery"
	// HeaderReminder is "true" when the delivery is a reminder of an overdue
	// notice delivered before.
	HeaderReminder = "Sharelog-Reminder"
)

// DefaultTolerance is how far a signature's timestamp may be from the
// verifier's clock, either way, before Verify refuses it as a possible replay.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify. None says more than which check failed.
var (
	ErrNoSignature  = errors.New("notify: missing Sharelog-Timestamp or Sharelog-Signature header")
	ErrBadTimestamp = errors.New("notify: Sharelog-Timestamp is not a Unix time in seconds")
	ErrStale        = errors.New("notify: Sharelog-Timestamp is outside the tolerance (replayed or clock skew)")
	ErrBadSignature = errors.New("notify: signature does not match")
)

// Signature returns the value of the Sharelog-Signature header for body
// signed at timestamp (Unix seconds) with secret:
// "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
func Signature(secret []byte, timestamp int64, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp, 10), body))
}

// Sign sets the Sharelog-Timestamp and Sharelog-Signature headers of h for
// body, signed now with secret.
func Sign(h http.Header, secret []byte, body []byte, now time.Time) {
	ts := now.Unix()
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, Signature(secret, ts, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks that body was signed with secret, as carried by the
// Sharelog-Timestamp and Sharelog-Signature headers of header, and that the
// timestamp is within tolerance of now (either way; DefaultTolerance when
// tolerance is 0). It compares in constant time. It returns nil, or one of
// ErrNoSignature, ErrBadTimestamp, ErrStale and ErrBadSignature.
//
// Recipients may copy this function: it needs only the standard library.
// Verify the raw body bytes as received, before parsing them.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	tsv, sigv := header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if tsv == "" || sigv == "" {
		return ErrNoSignature
	}
	ts, err := strconv.ParseInt(tsv, 10, 64)
	if err != nil || ts <= 0 {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := mac(secret, tsv, body)
	ok := false
	for _, s := range strings.Split(sigv, ",") {
		hexsig, found := strings.CutPrefix(strings.TrimSpace(s), "v1=")
		if !found {
			continue
		}
		got, err := hex.DecodeString(hexsig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}
