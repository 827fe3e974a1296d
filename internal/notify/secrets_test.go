package notify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dxc.secret"), []byte("file-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SHARELOG_TEST_SECRET", "env-secret-0123456789")
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", `recipients:
  dxc-technology: {secretFile: dxc.secret}
  acro: {secretEnv: SHARELOG_TEST_SECRET}
  cgi: {secret: "inline-secret-0123456789"}
`, 0o600)
	s, err := LoadSecrets(good)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"dxc-technology": "file-secret-0123456789", "acro": "env-secret-0123456789", "cgi": "inline-secret-0123456789"} {
		if got, ok := s.Secret(id); !ok || string(got) != want {
			t.Errorf("Secret(%s) = %q, %v; want %q", id, got, ok, want)
		}
	}
	if _, ok := s.Secret("nobody"); ok {
		t.Errorf("Secret(nobody) found")
	}
	if got := strings.Join(s.Recipients(), ","); got != "acro,cgi,dxc-technology" {
		t.Errorf("Recipients = %s", got)
	}

	tests := []struct {
		name, body string
		mode       os.FileMode
		want       string
	}{
		{"inline and world readable", "recipients:\n  cgi: {secret: \"inline-secret-0123456789\"}\n", 0o644, "readable by group or others"},
		{"too short", "recipients:\n  cgi: {secret: \"short\"}\n", 0o600, "recipients.cgi: the secret is shorter than 16 bytes"},
		{"two kinds", "recipients:\n  cgi: {secret: \"inline-secret-0123456789\", secretEnv: X}\n", 0o600, "exactly one of"},
		{"none", "recipients:\n  cgi: {}\n", 0o600, "exactly one of"},
		{"env unset", "recipients:\n  cgi: {secretEnv: SHARELOG_TEST_UNSET_VAR}\n", 0o600, "SHARELOG_TEST_UNSET_VAR is not set"},
		{"missing file", "recipients:\n  cgi: {secretFile: nope.secret}\n", 0o600, "recipients.cgi.secretFile"},
		{"bad id", "recipients:\n  Big_Co: {secretEnv: SHARELOG_TEST_SECRET}\n", 0o600, "not a recipient id"},
		{"unknown field", "recipients:\n  cgi: {password: \"inline-secret-0123456789\"}\n", 0o600, "password"},
		{"wrong type", "recipients:\n  cgi: {secret: [\"inline-secret-0123456789\"]}\n", 0o600, "wrong type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tt.name, " ", "-")+".yaml", tt.body, tt.mode)
			_, err := LoadSecrets(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadSecrets = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "inline-secret") {
				t.Errorf("error quotes the secret: %v", err)
			}
		})
	}
	// Secrets held in other files do not make the secrets file sensitive.
	if _, err := LoadSecrets(write("refs.yaml", "recipients:\n  acro: {secretEnv: SHARELOG_TEST_SECRET}\n", 0o644)); err != nil {
		t.Errorf("world-readable file without inline secrets: %v", err)
	}
}
