package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/cloudevents"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/metrics"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
	"github.com/sharelog/sharelog/internal/vocab"
)

// stubLedger answers the registry and says nothing is applied yet. Other
// Ledger methods are not used by the notice routes (the embedded nil
// interface would panic).
type stubLedger struct {
	Ledger
	recipients map[string]ledger.Recipient
}

func (l *stubLedger) Recipient(ctx context.Context, id string) (*ledger.Recipient, error) {
	r, ok := l.recipients[id]
	if !ok {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no recipient %q", id)
	}
	return &r, nil
}

func (l *stubLedger) WaitApplied(ctx context.Context, seq uint64) error {
	return errors.New("not applied")
}

// stubNotices is a hand-written fake of Notices.
type stubNotices struct {
	secrets map[string][]byte
	obs     map[string]ledger.Obligation
	queue   []notify.ManualNotice
	sent    []string
}

func (n *stubNotices) WebhookSecret(r string) ([]byte, bool) { s, ok := n.secrets[r]; return s, ok }
func (n *stubNotices) Obligation(ctx context.Context, notice string) (*ledger.Obligation, error) {
	ob, ok := n.obs[notice]
	if !ok {
		return nil, ledger.Errorf(ledger.ENOTFOUND, "no notice")
	}
	return &ob, nil
}
func (n *stubNotices) ManualQueue(ctx context.Context) ([]notify.ManualNotice, error) {
	return n.queue, nil
}
func (n *stubNotices) MarkSent(ctx context.Context, notice, sentBy string) (*ledger.NoticeDelivery, error) {
	if notice != "n-manual" {
		return nil, ledger.Errorf(ledger.ECONFLICT, "not a manual notice")
	}
	n.sent = append(n.sent, sentBy)
	return &ledger.NoticeDelivery{Notice: notice, Attempt: 1, Channel: "manual", Outcome: ledger.DeliverySent, SentBy: sentBy}, nil
}

func ackEvent(notice, id string) []byte {
	return []byte(`{"specversion":"1.0","id":"` + id + `","source":"acro/erasure","type":"org.sharelog.notice.ack.v1",` +
		`"time":"2026-03-02T10:00:00Z","datacontenttype":"application/json","data":{"notice":"` + notice + `","outcome":"done"}}`)
}

func TestAcks(t *testing.T) {
	t.Parallel()
	ns, err := nats.StartServer(nats.ServerConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := natsio.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := nats.EnsureStreams(ctx, js, nats.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	voc, err := vocab.Load()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cloudevents.NewDecoder(voc)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("acro-secret-0123456789")
	notices := &stubNotices{
		secrets: map[string][]byte{"acro": secret, "cgi": []byte("cgi-secret-0123456789")},
		obs: map[string]ledger.Obligation{
			"n-acro": {Notice: "n-acro", Recipient: "acro", Channel: "nats"},
			"n-cgi":  {Notice: "n-cgi", Recipient: "cgi", Channel: "webhook"},
		},
	}
	s := &Server{
		Ledger: &stubLedger{recipients: map[string]ledger.Recipient{
			"acro": {ID: "acro"}, "cgi": {ID: "cgi"}, "nosecret": {ID: "nosecret"},
		}},
		Decoder: dec, Publisher: nats.NewPublisher(js, true), Metrics: metrics.New(),
		Logger: slog.New(slog.DiscardHandler), Notices: notices, ApplyWait: time.Millisecond,
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	post := func(recipient string, body []byte, sign func(h http.Header)) (int, Problem) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/recipients/"+recipient+"/acks", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		if sign != nil {
			sign(req.Header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var p Problem
		json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p
	}
	signWith := func(secret []byte, body []byte, at time.Time) func(http.Header) {
		return func(h http.Header) { notify.Sign(h, secret, body, at) }
	}
	good := ackEvent("n-acro", "ack-1")
	tests := []struct {
		name      string
		recipient string
		body      []byte
		sign      func(http.Header)
		want      int
		wantCode  string
	}{
		{"unsigned", "acro", good, nil, 401, "unauthorized"},
		{"wrong secret", "acro", good, signWith([]byte("cgi-secret-0123456789"), good, time.Now()), 401, "unauthorized"},
		{"stale", "acro", good, signWith(secret, good, time.Now().Add(-time.Hour)), 401, "unauthorized"},
		{"body changed after signing", "acro", ackEvent("n-acro", "ack-2"), signWith(secret, good, time.Now()), 401, "unauthorized"},
		{"no secret configured", "nosecret", good, signWith(secret, good, time.Now()), 401, "unauthorized"},
		{"unknown recipient", "nobody", good, signWith(secret, good, time.Now()), 404, ledger.ENOTFOUND},
		{"another recipient's notice", "acro", ackEvent("n-cgi", "ack-3"), signWith(secret, ackEvent("n-cgi", "ack-3"), time.Now()), 404, ledger.ENOTFOUND},
		{"unknown notice", "acro", ackEvent("n-nope", "ack-4"), signWith(secret, ackEvent("n-nope", "ack-4"), time.Now()), 404, ledger.ENOTFOUND},
		{"not an ack", "acro", []byte(`{"specversion":"1.0","id":"x","source":"acro","type":"org.sharelog.exemption.v1","time":"2026-03-02T10:00:00Z","datacontenttype":"application/json","data":{"notice":"n-acro","reason":"other","justification":"j","decidedBy":"me"}}`), nil, 400, ledger.EINVALID},
		{"signed ack", "acro", good, signWith(secret, good, time.Now()), 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sign := tt.sign
			if sign == nil && tt.want == 400 {
				sign = signWith(secret, tt.body, time.Now())
			}
			got, p := post(tt.recipient, tt.body, sign)
			if got != tt.want || p.Code != tt.wantCode {
				t.Errorf("status %d code %q (%s), want %d %q", got, p.Code, p.Detail, tt.want, tt.wantCode)
			}
		})
	}

	// Only the signed ack reached SHARELOG_IN, on the recipient's ack subject.
	str, err := js.Stream(ctx, nats.StreamIn)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := str.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("SHARELOG_IN holds %d messages, want 1", info.State.Msgs)
	}
	m, err := str.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "sharelog.in.ack.acro" {
		t.Errorf("ack published to %s, want sharelog.in.ack.acro", m.Subject)
	}
	ev, err := s.Decoder.DecodeStructured(m.Data)
	if err != nil || ev.ID != "ack-1" || ev.Data.(*ledger.NoticeAck).Notice != "n-acro" {
		t.Errorf("published %s (%v), want the ack ack-1", m.Data, err)
	}
}

func TestManualRoutes(t *testing.T) {
	t.Parallel()
	notices := &stubNotices{queue: []notify.ManualNotice{{Recipient: "charity-post", Name: "Charity", Notice: "n-manual",
		Action: "erase", Request: "req-1", Subject: ledger.Subject{Scheme: "dbs-ref", ID: "A1"}, Categories: []string{"user.contact"},
		Disclosures: []string{"d1"}, Due: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	s := &Server{Ledger: &stubLedger{}, Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler), Notices: notices}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c := NewClient(srv.URL)
	ctx := context.Background()

	q, err := c.Manual(ctx)
	if err != nil || len(q) != 1 || q[0].Notice != "n-manual" || q[0].Subject.ID != "A1" {
		t.Fatalf("Manual = %+v, %v", q, err)
	}
	csv, err := c.ManualCSV(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := "charity-post,Charity,,n-manual,erase,req-1,dbs-ref,A1,user.contact,d1,,2099-01-01T00:00:00Z,false\n"; !strings.HasSuffix(string(csv), want) {
		t.Errorf("CSV:\n%s\nwant a last line:\n%s", csv, want)
	}
	resp, err := http.Get(srv.URL + "/v1/manual?format=xml")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("format=xml: status %d, want 400", resp.StatusCode)
	}

	r, err := c.MarkSent(ctx, "n-manual", "A. Clerk")
	if err != nil || r.Outcome != ledger.DeliverySent || r.SentBy != "A. Clerk" {
		t.Errorf("MarkSent = %+v, %v", r, err)
	}
	if _, err := c.MarkSent(ctx, "n-acro", "A. Clerk"); problemCode(err) != ledger.ECONFLICT {
		t.Errorf("MarkSent of a nats notice = %v, want ECONFLICT", err)
	}

	s.Notices = nil
	if _, err := c.Manual(ctx); problemCode(err) != ledger.EUNAVAILABLE {
		t.Errorf("without notices: %v, want EUNAVAILABLE", err)
	}
}

// problemCode returns the code of the *Problem the client returned.
func problemCode(err error) string {
	var p *Problem
	if errors.As(err, &p) {
		return p.Code
	}
	return ledger.ErrorCode(err)
}
