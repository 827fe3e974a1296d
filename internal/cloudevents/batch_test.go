package cloudevents

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// endless is a batch body that never ends: "[" then "{}," forever. It
// counts the bytes read from it.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		switch {
		case e.n == 0:
			p[i] = '['
		case e.n%3 == 1:
			p[i] = '{'
		case e.n%3 == 2:
			p[i] = '}'
		default:
			p[i] = ','
		}
		e.n++
	}
	return len(p), nil
}

func TestBatchEventLimit(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	d.MaxBatchEvents = 3
	valid := string(fixtureBody(t, "valid/disclosure-uk-gdpr.json"))
	for _, tc := range []struct {
		name   string
		events int
		code   string
	}{
		{"at the limit: decoded", 3, ""},
		{"one over the limit: refused as too large", 4, ledger.ETOOLARGE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := "[" + strings.TrimSuffix(strings.Repeat(valid+",", tc.events), ",") + "]"
			got, err := d.DecodeBatch([]byte(body))
			if code := ledger.ErrorCode(err); code != tc.code {
				t.Fatalf("DecodeBatch: error %v (code %q), want code %q", err, code, tc.code)
			}
			if tc.code == "" && len(got) != tc.events {
				t.Fatalf("got %d results, want %d", len(got), tc.events)
			}
		})
	}
}

// TestBatchCountedWhileRead: a batch over the event limit is refused after
// reading little more than the limit's worth of it, not its whole body.
func TestBatchCountedWhileRead(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	d.MaxBatchEvents = 1000
	body := &endless{}
	r := httptest.NewRequest(http.MethodPost, "/v1/events", io.NopCloser(body))
	r.Header.Set("Content-Type", MediaTypeBatch)
	_, err := d.DecodeHTTP(r)
	if code := ledger.ErrorCode(err); code != ledger.ETOOLARGE {
		t.Fatalf("DecodeHTTP: error %v, want code %s", err, ledger.ETOOLARGE)
	}
	if !strings.Contains(err.Error(), "at most 1000 events") {
		t.Errorf("error %q does not name the limit", err)
	}
	if body.n > 1<<20 {
		t.Errorf("read %d bytes of the body before refusing it, want under 1 MiB", body.n)
	}
}

// TestBatchBodyLimit: a body over MaxBatchSize is still refused as too
// large, and a truncated array as malformed.
func TestBatchBodyLimit(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	big := `["` + strings.Repeat("x", MaxBatchSize) + `"]`
	for _, tc := range []struct {
		name string
		body string
		code string
	}{
		{"over MaxBatchSize", big, ledger.ETOOLARGE},
		{"not an array", `{"specversion":"1.0"}`, ledger.EINVALID},
		{"truncated", `[{}, {`, ledger.EINVALID},
		{"trailing data", `[{}] []`, ledger.EINVALID},
		{"empty body", ``, ledger.EINVALID},
		{"empty batch", `[]`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader([]byte(tc.body)))
			r.Header.Set("Content-Type", MediaTypeBatch)
			_, err := d.DecodeHTTP(r)
			if code := ledger.ErrorCode(err); code != tc.code {
				t.Fatalf("DecodeHTTP: error %v (code %q), want code %q", err, code, tc.code)
			}
		})
	}
}
