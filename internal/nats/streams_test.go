package nats

import (
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

func TestSourceToken(t *testing.T) {
	t.Parallel()
	tests := []struct{ source, want string }{
		{"casework", "casework"},
		{"/systems/case-management", "%2Fsystems%2Fcase-management"},
		{"https://web.example/a.b", "https%3A%2F%2Fweb%2Eexample%2Fa%2Eb"},
		{"a b", "a%20b"},
		{"a+b", "a%2Bb"},
		{"~", "%7E"},
		{"*", "%2A"},
		{">", "%3E"},
		{"", SourceUnknown},
		{strings.Repeat("x", 300), SourceUnknown},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := SourceToken(tt.source)
		if got != tt.want {
			t.Errorf("SourceToken(%q) = %q, want %q", tt.source, got, tt.want)
		}
		if strings.ContainsAny(got, ".*> \t\r\n") {
			t.Errorf("SourceToken(%q) = %q is not one subject token", tt.source, got)
		}
		if prev, ok := seen[got]; ok && got != SourceUnknown {
			t.Errorf("%q and %q share the token %q", prev, tt.source, got)
		}
		seen[got] = tt.source
	}
	if got, want := RejectedSubject(ledger.ReasonUnknownType, "/s"), "sharelog.rejected.unknown-type.%2Fs"; got != want {
		t.Errorf("RejectedSubject = %q, want %q", got, want)
	}
}

func FuzzSourceToken(f *testing.F) {
	f.Add("/systems/case-management", "/systems/case.management")
	f.Add("a b", "a+b")
	f.Fuzz(func(t *testing.T, a, b string) {
		ta, tb := SourceToken(a), SourceToken(b)
		if a != b && ta == tb && ta != SourceUnknown {
			t.Errorf("%q and %q share the token %q", a, b, ta)
		}
		if strings.ContainsAny(ta, ".*> \t\r\n") || ta == "" {
			t.Errorf("SourceToken(%q) = %q is not one subject token", a, ta)
		}
	})
}
