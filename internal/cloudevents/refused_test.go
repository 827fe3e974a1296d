package cloudevents

import (
	"slices"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

func TestNamedSubjects(t *testing.T) {
	tests := []struct {
		name   string
		header map[string][]string
		body   string
		want   []ledger.Subject
	}{
		{"structured disclosure, refused for its data", nil,
			`{"specversion":"1.0","data":{"subjects":[{"scheme":"dbs-ref","id":"A1"},{"scheme":"email","id":"b@x"}],"categories":"not-an-array"}}`,
			[]ledger.Subject{{Scheme: "dbs-ref", ID: "A1"}, {Scheme: "email", ID: "b@x"}}},
		{"binary request", map[string][]string{"ce-specversion": {"1.0"}}, `{"request":"R","subject":{"scheme":"case","id":"C9"}}`,
			[]ledger.Subject{{Scheme: "case", ID: "C9"}}},
		{"hold by subject, with a key twice", nil, `{"data":{"scope":{"subject":{"scheme":"case","id":"H1"}},"scope":{"subject":{"scheme":"case","id":"H1"}}}}`,
			[]ledger.Subject{{Scheme: "case", ID: "H1"}}},
		{"not JSON", nil, `{"data":`, nil},
		{"a subject without a scheme", nil, `{"data":{"subject":{"id":"X"}}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NamedSubjects(tt.header, []byte(tt.body)); !slices.Equal(got, tt.want) {
				t.Errorf("NamedSubjects = %v, want %v", got, tt.want)
			}
		})
	}
}
