package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestContentEncoding: a gzip body is decompressed before it is decoded, and
// bounded by the same limit after decompression; any other encoding is 415.
func TestContentEncoding(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Recipients = filepath.Join("..", "..", "deploy", "recipients.example.yaml")
	m := startMain(t, cfg)
	at := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	ev := mustJSON(t, disclosure("web", "gz-1", []ledger.Subject{{Scheme: "dbs-ref", ID: "A1"}}, "acro", []string{"user.name"}, at))
	// A structured event padded with spaces past 1 MiB compresses to a few KiB.
	bomb := append(append([]byte{}, ev[:len(ev)-1]...), append(bytes.Repeat([]byte(" "), 2<<20), '}')...)

	tests := []struct {
		name     string
		encoding string
		body     []byte
		status   int
		want     string
	}{
		{"gzip", "gzip", gzipped(t, ev), http.StatusAccepted, `"outcome":"recorded"`},
		{"gzip over the limit once decompressed", "gzip", gzipped(t, bomb), http.StatusRequestEntityTooLarge, "over the limit"},
		{"not gzip data", "gzip", ev, http.StatusBadRequest, "not gzip data"},
		{"br", "br", ev, http.StatusUnsupportedMediaType, `Content-Encoding \"br\" is not supported`},
		{"identity", "identity", mustJSON(t, disclosure("web", "gz-2", []ledger.Subject{{Scheme: "dbs-ref", ID: "A1"}}, "acro", []string{"user.name"}, at)), http.StatusAccepted, `"outcome":"recorded"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := postEvents(t, m.HTTP.URL(), "application/cloudevents+json", http.Header{"Content-Encoding": {tc.encoding}}, tc.body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Fatalf("status %d body %s; want %d with %q", resp.StatusCode, body, tc.status, tc.want)
			}
			if tc.status == http.StatusUnsupportedMediaType && resp.Header.Get("Accept-Encoding") != "gzip" {
				t.Errorf("Accept-Encoding %q, want gzip", resp.Header.Get("Accept-Encoding"))
			}
		})
	}
}

// TestMethodNotAllowed: a route called with the wrong method answers 405
// with Allow; an unknown path is still 404.
func TestMethodNotAllowed(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/v1/events", http.StatusMethodNotAllowed, "POST"},
		{http.MethodDelete, "/v1/recipients", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPost, "/v1/disclosures/x", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPut, "/v1/who", http.StatusMethodNotAllowed, "POST"},
		{http.MethodGet, "/v1/nothing", http.StatusNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, m.HTTP.URL()+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p slhttp.Problem
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Allow") != tc.allow || p.Status != tc.status {
				t.Fatalf("status %d Allow %q problem %+v; want %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"), p, tc.status, tc.allow)
			}
		})
	}
}
