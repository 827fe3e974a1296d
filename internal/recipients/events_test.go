package recipients

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

var acro = ledger.Recipient{
	ID: "acro", Name: "ACRO Criminal Records Office", Role: ledger.RoleCompetentAuthority, Country: "GB",
	Regime: ledger.RegimeDPAPart3, Channel: ledger.Channel{Type: "nats"}, Contact: "dpo@acro.example", SLADays: 30,
}

var dc = ledger.Recipient{
	ID: "devon-and-cornwall", Name: "Devon & Cornwall Police", Role: ledger.RoleCompetentAuthority,
	Channel: ledger.Channel{Type: "nats"},
}

func decodeEvent(t *testing.T, b []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("event is not a JSON object: %v\n%s", err, b)
	}
	return m
}

func TestEvents(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 30, 0, 5, time.FixedZone("BST", 3600))
	evs, err := Events([]ledger.Recipient{acro, dc}, "sharelog/admin", now)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(evs) != 2 {
		t.Fatalf("Events: got %d events, want 2", len(evs))
	}
	canon := `{"id":"acro","name":"ACRO Criminal Records Office","role":"competent-authority","country":"GB","regime":"dpa-part3","channel":{"type":"nats"},"contact":"dpo@acro.example","slaDays":30}`
	sum := sha256.Sum256([]byte(canon))
	wantID := "recipient-acro-" + hex.EncodeToString(sum[:8])

	m := decodeEvent(t, evs[0])
	want := map[string]string{
		"specversion":     `"1.0"`,
		"type":            `"org.sharelog.recipient.v1"`,
		"source":          `"sharelog/admin"`,
		"id":              `"` + wantID + `"`,
		"time":            `"2026-03-01T11:30:00.000000005Z"`,
		"datacontenttype": `"application/json"`,
		"data":            canon,
	}
	if len(m) != len(want) {
		t.Errorf("event attributes: got %d, want %d: %s", len(m), len(want), evs[0])
	}
	for k, v := range want {
		if got := string(m[k]); got != v {
			t.Errorf("event %s: got %s, want %s", k, got, v)
		}
	}

	// The data round-trips to the recipient, and "&" is not HTML-escaped.
	if !strings.Contains(string(evs[1]), `"name":"Devon & Cornwall Police"`) {
		t.Errorf("event 1: want the name unescaped, got %s", evs[1])
	}
	var got ledger.Recipient
	if err := json.Unmarshal(decodeEvent(t, evs[1])["data"], &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, dc) {
		t.Errorf("event 1 data: got %+v, want %+v", got, dc)
	}
	if id, _ := EventID(dc); string(decodeEvent(t, evs[1])["id"]) != `"`+id+`"` {
		t.Errorf("event 1 id: got %s, want EventID %q", decodeEvent(t, evs[1])["id"], id)
	}
}

func TestEventsDeterministic(t *testing.T) {
	t.Parallel()
	rs := []ledger.Recipient{acro, dc}
	a, err := Events(rs, "admin", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Events(rs, "admin", time.Unix(1e9, 0))
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		ma, mb := decodeEvent(t, a[i]), decodeEvent(t, b[i])
		if string(ma["id"]) != string(mb["id"]) {
			t.Errorf("event %d id: got %s then %s, want equal ids for an unchanged recipient", i, ma["id"], mb["id"])
		}
		if string(ma["data"]) != string(mb["data"]) {
			t.Errorf("event %d data: got %s then %s, want equal", i, ma["data"], mb["data"])
		}
	}
}

func TestEventIDChangesWithEveryField(t *testing.T) {
	t.Parallel()
	base, err := EventID(acro)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(base, "recipient-acro-") || len(base) != len("recipient-acro-")+16 {
		t.Errorf("EventID: got %q, want recipient-acro- and 16 hex digits", base)
	}
	changes := map[string]func(*ledger.Recipient){
		"name":             func(r *ledger.Recipient) { r.Name = "ACRO" },
		"role":             func(r *ledger.Recipient) { r.Role = ledger.RoleController },
		"country":          func(r *ledger.Recipient) { r.Country = "JE" },
		"regime":           func(r *ledger.Recipient) { r.Regime = ledger.RegimeUKGDPR },
		"channel.type":     func(r *ledger.Recipient) { r.Channel.Type = "manual" },
		"channel.url":      func(r *ledger.Recipient) { r.Channel = ledger.Channel{Type: "webhook", URL: "https://a.example"} },
		"contact":          func(r *ledger.Recipient) { r.Contact = "" },
		"slaDays":          func(r *ledger.Recipient) { r.SLADays = 31 },
		"inquiryAuthority": func(r *ledger.Recipient) { r.InquiryAuthority = true },
	}
	seen := map[string]string{base: "unchanged"}
	for field, change := range changes {
		r := acro
		change(&r)
		id, err := EventID(r)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[id]; dup {
			t.Errorf("changing %s: got id %q, the same as %s", field, id, prev)
		}
		seen[id] = field
	}
}

func TestEventsErrors(t *testing.T) {
	t.Parallel()
	bad := acro
	bad.Country = "gb"
	tests := []struct {
		name   string
		rs     []ledger.Recipient
		source string
		wantIn string
	}{
		{"no source", []ledger.Recipient{acro}, "", "need a source"},
		{"bad source", []ledger.Recipient{acro}, "%zz", "not a URI reference"},
		{"invalid recipient", []ledger.Recipient{acro, dc, bad}, "admin", "recipients[2].country"},
		{"duplicate id", []ledger.Recipient{acro, acro}, "admin", `duplicate id "acro"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Events(tt.rs, tt.source, time.Now())
			if err == nil {
				t.Fatalf("Events: got %d events, want an error", len(evs))
			}
			if ledger.ErrorCode(err) != ledger.EINVALID || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("Events: got %v (code %s), want an invalid error containing %q", err, ledger.ErrorCode(err), tt.wantIn)
			}
		})
	}
}

func TestExampleFileEvents(t *testing.T) {
	t.Parallel()
	rs, err := Load(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := Events(rs, "sharelog/recipients", time.Now())
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	ids := make(map[string]bool, len(evs))
	for _, e := range evs {
		ids[string(decodeEvent(t, e)["id"])] = true
	}
	if len(ids) != len(rs) {
		t.Errorf("distinct event ids: got %d, want %d", len(ids), len(rs))
	}
}

func ExampleEvents() {
	rs, err := Parse(strings.NewReader(`
recipients:
  - id: acro
    name: ACRO Criminal Records Office
    role: competent-authority
    country: GB
    regime: dpa-part3
    channel: {type: nats}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	evs, err := Events(rs, "sharelog/recipients", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(evs[0]))
	// Output:
	// {"specversion":"1.0","type":"org.sharelog.recipient.v1","source":"sharelog/recipients","id":"recipient-acro-d11070bde0cc90ed","time":"2026-01-02T03:04:05Z","datacontenttype":"application/json","data":{"id":"acro","name":"ACRO Criminal Records Office","role":"competent-authority","country":"GB","regime":"dpa-part3","channel":{"type":"nats"}}}
}
