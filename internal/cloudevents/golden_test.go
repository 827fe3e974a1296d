package cloudevents

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sharelog/sharelog/internal/ledger"
)

// goldenFile records what the decoder made of a wide set of inputs: for an
// accepted event its Raw bytes (in full for the fixtures, as a SHA-256
// otherwise), for a refusal every problem and the Source and ID reported.
// It was written by the decoder as it was before the duplicate-key check
// (internal/cloudevents as last committed, in 25f51aa, run with these test
// files and a stub rawDuplicate), so that the decode path is held to
// byte-identical Raw and identical refusals. Inputs with duplicate keys or
// with text that is not UTF-8 (now refused, and accepted before) are
// deliberately not part of it. After a deliberate change of outcome,
// rewrite it with go test -run TestGoldenOutcomes -update-golden.
//
// It was rewritten once since, when event data came to be decoded in one
// pass into the Go types and checked by their validate tags alone, with no
// JSON Schema at run time: every outcome, Raw, Source, ID and every problem's
// reason and field stayed the same; 53 refusals' details changed, each to
// the Go rule's wording (a slug, scheme, country, URL or hash rule named
// instead of a regular expression or "not one of the allowed values", and
// "required when Regime is dpa-part3 (DPA 2018 s.62 logging)" or "required
// when Type is webhook" instead of "required" or "must not be empty").
const goldenFile = "testdata/golden/outcomes.txt"

// addedAfterGolden are the invalid fixtures added with the duplicate-key
// check, after goldenFile was written; the old decoder accepted most of them.
var addedAfterGolden = map[string]bool{
	"disclosure-duplicate-key.json":         true,
	"disclosure-duplicate-key-nested.json":  true,
	"disclosure-duplicate-key-escaped.json": true,
	"duplicate-attribute.json":              true,
	"duplicate-attribute-case.json":         true,
	"disclosure-key-case.json":              true,
}

var updateGolden = flag.Bool("update-golden", false, "rewrite "+goldenFile)

// goldenCase is one input to the decoder and how to send it.
type goldenCase struct {
	name   string
	full   bool   // record Raw in full rather than as a hash
	body   []byte // the event in structured mode, or nil
	decode func(d *Decoder) (*ledger.Event, string, string, error)
}

func structuredCase(name string, full bool, body []byte) goldenCase {
	return goldenCase{name: name, full: full, body: body, decode: func(d *Decoder) (*ledger.Event, string, string, error) {
		ev, src, id, err := d.decodeStructured(body, nil)
		return ev, src, id, err
	}}
}

func natsBinaryCase(name string, full bool, attrs map[string]string, data []byte) goldenCase {
	return goldenCase{name: name, full: full, decode: func(d *Decoder) (*ledger.Event, string, string, error) {
		h := natsBinary(attrs)
		ev, src, id, err := d.decodeBinary(h, data, true, headerAttrs(h))
		return ev, src, id, err
	}}
}

func httpBinaryCase(name string, full bool, attrs map[string]string, data []byte) goldenCase {
	return goldenCase{name: name, full: full, decode: func(d *Decoder) (*ledger.Event, string, string, error) {
		r := httpBinary(attrs, data)
		ev, src, id, err := d.decodeBinary(r.Header, data, false, nil)
		return ev, src, id, err
	}}
}

// goldenCases lists the inputs: every fixture in every mode it can be sent
// in, generated disclosures, layout and escaping variants, and mutations of
// every member of every valid fixture's data.
func goldenCases(tb testing.TB) []goldenCase {
	var cases []goldenCase
	addModes := func(prefix string, full bool, body []byte) {
		cases = append(cases, structuredCase(prefix+"/structured", full, body))
		if attrs, data, ok := binaryForm(body); ok {
			cases = append(cases, natsBinaryCase(prefix+"/nats-binary", full, attrs, data))
			cases = append(cases, httpBinaryCase(prefix+"/http-binary", full, attrs, data))
		}
	}
	valid := validFixtures(tb)
	for _, f := range valid {
		addModes("valid/"+f.File, true, f.body)
	}
	for _, f := range invalidFixtures(tb) {
		if !addedAfterGolden[f.File] {
			addModes("invalid/"+f.File, false, f.body)
		}
	}
	for i, b := range genDisclosuresSorted(1, 0, 64, 200_000) {
		addModes(fmt.Sprintf("generated/%d", i), i < 2, b)
	}
	for i, b := range genDisclosures(1, 0, 64, 200_000) {
		addModes(fmt.Sprintf("generated-ordered/%d", i), i < 2, b)
	}

	// Layout and escaping: the data's whitespace and escapes, structured and
	// binary.
	for _, f := range valid {
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(f.body, &ev); err != nil {
			tb.Fatal(err)
		}
		compact := mustCompact(tb, ev["data"])
		var indented bytes.Buffer
		if err := json.Indent(&indented, compact, "", "\t"); err != nil {
			tb.Fatal(err)
		}
		crlf := bytes.ReplaceAll(indented.Bytes(), []byte("\n"), []byte("\r\n"))
		for name, data := range map[string][]byte{
			"compact":  compact,
			"indented": indented.Bytes(),
			"crlf":     crlf,
			"padded":   append(append([]byte(" \n\t"), compact...), " \r\n"...),
		} {
			ev["data"] = data
			body, err := json.Marshal(ev)
			if err != nil {
				tb.Fatal(err)
			}
			// json.Marshal compacts RawMessage; put the layout back by
			// splicing the data in as it is.
			body = spliceData(tb, body, data)
			addModes("layout/"+name+"/"+f.File, false, body)
		}
	}
	escapes := []string{
		`"PC 1234 \"J.\" Smith \\ \/ \u00e9 \u2028 <b>&amp;</b> é 日本 \ud83d\ude00"`,
		`"tab\there, new\nline, \u0000 nul"`,
		`"  leading and trailing  "`,
	}
	base := fixtureBody(tb, "valid/disclosure-dpa-part3.json")
	for i, s := range escapes {
		body := bytes.Replace(base, []byte(`"PC 1234 J. Smith"`), []byte(s), 1)
		addModes(fmt.Sprintf("escapes/%d", i), true, body)
	}

	// Mutations of every member of every valid fixture's data, structured.
	for _, f := range valid {
		var ev map[string]any
		dec := json.NewDecoder(bytes.NewReader(f.body))
		dec.UseNumber()
		if err := dec.Decode(&ev); err != nil {
			tb.Fatal(err)
		}
		for _, m := range mutations(ev["data"], "") {
			ev2 := cloneJSON(tb, ev)
			ev2["data"] = m.apply(cloneJSON(tb, ev)["data"])
			body, err := json.Marshal(ev2)
			if err != nil {
				tb.Fatal(err)
			}
			cases = append(cases, structuredCase("mutation/"+f.File+"/"+m.name, false, body))
		}
	}
	return cases
}

func mustCompact(tb testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// spliceData replaces the compact data member of a compact event with data.
func spliceData(tb testing.TB, body, data []byte) []byte {
	compact := mustCompact(tb, data)
	i := bytes.Index(body, append([]byte(`"data":`), compact...))
	if i < 0 {
		tb.Fatalf("data not found in %s", body)
	}
	i += len(`"data":`)
	out := slices.Clone(body[:i])
	out = append(out, data...)
	return append(out, body[i+len(compact):]...)
}

func cloneJSON(tb testing.TB, v map[string]any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	var out map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		tb.Fatal(err)
	}
	return out
}

type mutation struct {
	name  string
	apply func(data any) any
}

// mutations returns, for every object member under v at any depth, the
// member removed, its name capitalised, and its value replaced by null, a
// number, a string, a boolean, an empty array and an empty object.
func mutations(v any, path string) []mutation {
	var out []mutation
	switch v := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(v) {
			p := path + "." + k
			key := k
			edit := func(name string, f func(obj map[string]any)) {
				out = append(out, mutation{name: p + ":" + name, apply: func(data any) any {
					f(lookup(data, path).(map[string]any))
					return data
				}})
			}
			edit("delete", func(obj map[string]any) { delete(obj, key) })
			edit("capitalise", func(obj map[string]any) {
				obj[strings.ToUpper(key[:1])+key[1:]] = obj[key]
				delete(obj, key)
			})
			for name, val := range map[string]any{"null": nil, "number": json.Number("17"), "string": "x",
				"bool": true, "array": []any{}, "object": map[string]any{}} {
				edit(name, func(obj map[string]any) { obj[key] = val })
			}
			out = append(out, mutations(v[k], p)...)
		}
	case []any:
		for i, e := range v {
			out = append(out, mutations(e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	slices.SortFunc(out, func(a, b mutation) int { return strings.Compare(a.name, b.name) })
	return out
}

// lookup follows a path made by mutations.
func lookup(v any, path string) any {
	for path != "" {
		if path[0] == '.' {
			path = path[1:]
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			v = v.(map[string]any)[path[:end]]
			path = path[end:]
			continue
		}
		end := strings.IndexByte(path, ']')
		var i int
		fmt.Sscanf(path[1:end], "%d", &i)
		v = v.([]any)[i]
		path = path[end+1:]
	}
	return v
}

// outcome renders the result of one decode on one line.
func outcome(c goldenCase, ev *ledger.Event, src, id string, err error) string {
	if err != nil {
		b, _ := json.Marshal(struct {
			Source, ID string
			Err        error
		}{src, id, err})
		return "refused " + string(b)
	}
	if c.full {
		return "raw " + string(ev.Raw)
	}
	sum := sha256.Sum256(ev.Raw)
	return fmt.Sprintf("raw sha256:%s len %d", hex.EncodeToString(sum[:]), len(ev.Raw))
}

// TestGoldenOutcomes checks that every input of goldenCases gives the same
// Raw bytes or the same problems as recorded in goldenFile.
func TestGoldenOutcomes(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	cases := goldenCases(t)
	got := make([]string, len(cases))
	seen := map[string]bool{}
	for i, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %s", c.name)
		}
		seen[c.name] = true
		ev, src, id, err := c.decode(d)
		got[i] = c.name + "\t" + outcome(c, ev, src, id, err)
		if ev != nil {
			if p := rawDuplicate(ev.Raw); p != "" {
				t.Errorf("%s: Raw has key %s twice", c.name, p)
			}
		}
	}
	if *updateGolden {
		if err := os.MkdirAll("testdata/golden", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenFile, []byte(strings.Join(got, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %d outcomes to %s", len(got), goldenFile)
		return
	}
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		name, out, _ := strings.Cut(sc.Text(), "\t")
		want[name] = out
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(got) {
		t.Errorf("%s has %d outcomes, the test makes %d", goldenFile, len(want), len(got))
	}
	bad := 0
	for _, line := range got {
		name, out, _ := strings.Cut(line, "\t")
		w, ok := want[name]
		switch {
		case !ok:
			t.Errorf("%s: not in %s", name, goldenFile)
		case out != w:
			bad++
			if bad <= 20 {
				t.Errorf("%s:\n got %s\nwant %s", name, out, w)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d outcomes differ", bad, len(got))
	}
}
