package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, doc string
		want      ledger.Deadlines
		err       string
	}{
		{name: "empty", doc: ""},
		{name: "default and regimes", doc: "deadlines:\n  default: {months: 1}\n  regimes:\n    dpa-part3: {days: 14}\n    eu-gdpr: {months: 1, days: 3}\n",
			want: ledger.Deadlines{Default: ledger.Deadline{Months: 1}, Regimes: map[string]ledger.Deadline{"dpa-part3": {Days: 14}, "eu-gdpr": {Months: 1, Days: 3}}}},
		{name: "misspelt field", doc: "deadlines:\n  defualt: {months: 1}\n", err: "field defualt not found"},
		{name: "unknown regime", doc: "deadlines:\n  regimes:\n    ccpa: {days: 3}\n", err: `unknown regime "ccpa"`},
		{name: "negative", doc: "deadlines:\n  default: {days: -1}\n", err: "must not be negative"},
		{name: "not yaml", doc: "deadlines: [", err: "yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Deadlines, tt.want) {
				t.Errorf("deadlines = %+v, want %+v", p.Deadlines, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte("deadlines:\n  regimes:\n    dpa-part3: {days: 7}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Deadlines.Regimes["dpa-part3"]; got != (ledger.Deadline{Days: 7}) {
		t.Errorf("dpa-part3 = %+v", got)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.HasPrefix(err.Error(), "policy: ") {
		t.Errorf("missing file error = %v", err)
	}
}

func TestRetentionSection(t *testing.T) {
	p, err := Parse([]byte(`
retention:
  erasureAfter: 2160h
  rules:
    - {purpose: essential.service, regime: uk-gdpr, months: 3}
`))
	if err != nil {
		t.Fatal(err)
	}
	fp := p.Retention.ForgetPolicy()
	if fp.ErasureAfter != 2160*time.Hour || len(fp.Retention) != 1 || fp.Retention[0].Purpose != "essential.service" || fp.Retention[0].Months != 3 {
		t.Errorf("ForgetPolicy = %+v", fp)
	}
	for _, bad := range []string{"retention: {rules: [{purpose: x}]}", "retention: {rules: [{months: 3}]}", "retention: {erasureAfter: -1h}"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestLoadEmptyPath: no --policy is the default policy, as an empty file is.
func TestLoadEmptyPath(t *testing.T) {
	p, err := Load("")
	if err != nil {
		t.Fatalf("Load(\"\"): %v", err)
	}
	empty, err := Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, empty) {
		t.Errorf("Load(\"\") = %+v, want the empty document's %+v", p, empty)
	}
}
