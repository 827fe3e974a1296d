package cloudevents

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/schemas"
)

// TestPlainAsSDK decodes every golden input, and variants of a valid
// event's attributes around what makes an event plain, in every mode, once
// as the Decoder does (plain events without sdk-go) and once with every
// event read by sdk-go: the outcomes are the same, Raw byte for byte, and
// the refusals' problems, source and id. It checks too that the plain way
// is taken where it is meant to be: for the generated disclosures in every
// mode. Each input is decoded twice the first way, with what the first read
// left in the Decoder's caches, to the same outcome.
func TestPlainAsSDK(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	sdk := newDecoder(t)
	sdk.sdkOnly = true

	cases := goldenCases(t)
	var ev map[string]json.RawMessage
	base := fixtureBody(t, "valid/disclosure-dpa-part3.json")
	if err := json.Unmarshal(base, &ev); err != nil {
		t.Fatal(err)
	}
	variants := map[string][]string{
		"id": {`"evt-1"`, `" evt-1"`, `"evt-1 "`, `"evt\t1"`, `"evt-\u00e9"`, `"evt-é"`, `"e\"v"`, `"e\\v"`, `"DBS-000123456"`, `"a/b?c"`, `"<&>"`},
		"source": {`"casework/disclosure-service"`, `"Casework:X"`, `"http://Example.COM/a%2Fb"`, `"a b"`, `"./x"`, `"a:b/c"`, `"%zz"`, `":x"`,
			`" /x"`, `"/x "`, `"//host"`, `"/x?q=DBS-000123456"`, `"urn:a:b"`, `"/é"`, `"/%C3%A9"`, `"http://[::1]:80/x"`},
		"time": {`"2025-03-05T09:00:00Z"`, `"2025-03-05T09:00:00+01:00"`, `"2025-03-05T09:00:00.123456789Z"`, `"2025-03-05T09:00:00.10Z"`,
			`"0001-01-01T00:00:00Z"`, `"2025-03-05"`, `"2025-03-05t09:00:00z"`, `" 2025-03-05T09:00:00Z"`, `null`},
		"dataschema":      {`"` + schemas.ID(ledger.TypeDisclosure) + `"`, `"` + schemas.ID(ledger.TypeErasure) + `"`, `"/schemas/x"`, `" ` + schemas.ID(ledger.TypeDisclosure) + `"`, `null`},
		"datacontenttype": {`"application/json"`, `"application/json; charset=utf-8"`, `"Application/JSON"`, `" application/json"`, `"text/plain"`, `null`},
		"type":            {`"org.sharelog.disclosure.v1"`, `"org.sharelog.erasure.v1"`, `"org.sharelog.nope.v1"`, `" org.sharelog.disclosure.v1"`},
		"specversion":     {`"1.0"`, `"0.3"`},
		"subject":         {`"x"`, `""`},
		"traceparent":     {`"00-abc"`, `"DBS-000123456"`, `1`, `true`},
		"data_base64":     {`"e30="`},
	}
	for _, name := range slices.Sorted(maps.Keys(variants)) {
		for i, v := range variants[name] {
			e := maps.Clone(ev)
			e[name] = json.RawMessage(v)
			body, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			label := fmt.Sprintf("attribute/%s/%d", name, i)
			cases = append(cases, structuredCase(label+"/structured", true, body))
			if attrs, data, ok := binaryForm(body); ok {
				cases = append(cases, natsBinaryCase(label+"/nats-binary", true, attrs, data))
				cases = append(cases, httpBinaryCase(label+"/http-binary", true, attrs, data))
			}
		}
	}

	same := 0
	for _, c := range cases {
		c.full = true
		ev, src, id, err := c.decode(d)
		got := outcome(c, ev, src, id, err)
		ev2, src2, id2, err2 := c.decode(sdk)
		want := outcome(c, ev2, src2, id2, err2)
		if got != want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, want)
			continue
		}
		// Again, with the sources and dataschemas the plain way found it
		// may keep (sourcesAsSDK, schemasAsSDK) as the first read left them.
		ev3, src3, id3, err3 := c.decode(d)
		if again := outcome(c, ev3, src3, id3, err3); again != got {
			t.Errorf("%s, read again:\n got %s\nwant %s", c.name, again, got)
			continue
		}
		if ev != nil && (ev.Source != ev2.Source || ev.ID != ev2.ID || ev.Type != ev2.Type || ev.DataSchema != ev2.DataSchema ||
			!ev.Time.Equal(ev2.Time) || ev.Time.Location() != ev2.Time.Location() || dataJSON(t, ev) != dataJSON(t, ev2)) {
			t.Errorf("%s: event %s %s %s %s %s %s, want %s %s %s %s %s %s", c.name, ev.Source, ev.ID, ev.Type, ev.DataSchema, ev.Time, dataJSON(t, ev),
				ev2.Source, ev2.ID, ev2.Type, ev2.DataSchema, ev2.Time, dataJSON(t, ev2))
		}
		same++
	}
	t.Logf("%d inputs, the same outcome both ways", same)

	// The plain way is taken for the generated disclosures.
	for i, body := range genDisclosures(1, 0, 64, 200_000) {
		bc := checkBody(body, d.decodeDataFrom)
		if _, ok := bc.plain.readAsSDK(); !ok || !bytes.Equal(bc.plainData, bc.dataText) {
			t.Fatalf("generated disclosure %d is not plain", i)
		}
		attrs, _, ok := binaryForm(body)
		h, _ := binaryHeader(natsBinary(attrs), true)
		if _, ok2 := plainHeader(h).readAsSDK(); !ok || !ok2 {
			t.Fatalf("generated disclosure %d is not plain in binary mode", i)
		}
	}
}

func dataJSON(t *testing.T, ev *ledger.Event) string {
	b, err := json.Marshal(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%T %s", ev.Data, b)
}

// TestIsCompact checks isCompact against jsontext's Compact on the data of
// every golden input and on values with whitespace, escapes and quotes in
// and out of strings: data is compact exactly when compacting it changes
// nothing.
func TestIsCompact(t *testing.T) {
	t.Parallel()
	texts := []string{
		`{}`, `{ }`, `{"a":"b c"}`, `{"a": "b"}`, `{"a":"\" "}`, `{"a":"\\" ,"b":1}`, `{"a":"\\\" "}`,
		`{"a":"\\\\"}`, "{\"a\":\"\\t\"}", "{\"a\":\n1}", "{\"a\":[1,\r2]}", "\t{}", "{}\n", `{"a":"é \u00e9"}`,
	}
	for _, c := range goldenCases(t) {
		if c.body != nil {
			var ev map[string]json.RawMessage
			if json.Unmarshal(c.body, &ev) == nil && len(ev["data"]) > 0 {
				texts = append(texts, string(ev["data"]))
			}
		}
	}
	checked := 0
	for _, s := range texts {
		v := jsontext.Value(s)
		if !v.IsValid() {
			continue
		}
		c := v.Clone()
		if err := c.Compact(); err != nil {
			t.Fatal(err)
		}
		if got, want := isCompact(v), bytes.Equal(c, v); got != want {
			t.Errorf("isCompact(%s) = %v, want %v", s, got, want)
		}
		checked++
	}
	if checked < 100 {
		t.Fatalf("only %d texts checked", checked)
	}
}

// TestNullFreeOptions checks that data without null decodes with
// nullFreeOptions as with dataOptions: the same value, or the same error,
// on the data of every golden input that has no null, for every type.
func TestNullFreeOptions(t *testing.T) {
	t.Parallel()
	checked := 0
	for _, c := range goldenCases(t) {
		var ev map[string]json.RawMessage
		if c.body == nil || json.Unmarshal(c.body, &ev) != nil || len(ev["data"]) == 0 || !nullFree(ev["data"]) {
			continue
		}
		for typ, newData := range ledger.Types {
			a, b := newData(), newData()
			errA := jsonv2.Unmarshal(ev["data"], a, dataOptions)
			errB := jsonv2.Unmarshal(ev["data"], b, nullFreeOptions)
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if fmt.Sprint(errA) != fmt.Sprint(errB) || !bytes.Equal(ja, jb) {
				t.Fatalf("%s as %s: %v %s, want %v %s", c.name, typ, errB, jb, errA, ja)
			}
			checked++
		}
	}
	if checked < 1000 {
		t.Fatalf("only %d decodes checked", checked)
	}
}
