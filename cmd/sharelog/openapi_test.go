package main

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sharelog/sharelog/schemas"
)

// TestOpenAPIRoutes checks that every path and method the OpenAPI document
// describes is routed by the real server: none falls through to the
// catch-all "no such route" answer or 405.
func TestOpenAPIRoutes(t *testing.T) {
	raw, err := schemas.FS.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Paths) < 10 {
		t.Fatalf("openapi.yaml has %d paths", len(doc.Paths))
	}
	m := startMain(t, testConfig(t.TempDir()))
	param := regexp.MustCompile(`\{[^}]+\}`)
	checked := 0
	for path, ops := range doc.Paths {
		for method := range ops {
			method = strings.ToUpper(method)
			if method != http.MethodGet && method != http.MethodPost {
				continue // parameters, summaries
			}
			req, err := http.NewRequest(method, m.HTTP.URL()+param.ReplaceAllString(path, "x"), strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusMethodNotAllowed || strings.Contains(string(body), "no such route") {
				t.Errorf("%s %s is in openapi.yaml but not routed: %d %s", method, path, resp.StatusCode, body)
			}
			checked++
		}
	}
	t.Logf("%d operations routed", checked)
}
