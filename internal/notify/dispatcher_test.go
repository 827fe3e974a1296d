package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/ledger"
)

var testSecret = []byte("test-secret-0123456789")

// hookServer is a recipient's webhook endpoint: it verifies each request's
// signature and records the notice ids it received, per recipient (the last
// path element). fail decides, per request, the status to answer instead of
// 200 (0: answer 200).
type hookServer struct {
	*httptest.Server
	t    testing.TB
	fail func(n int) int

	mu       sync.Mutex
	n        int
	received map[string][]string // recipient -> notice ids in order
	attempts map[string][]string // recipient -> Sharelog-Delivery headers
}

func newHookServer(t testing.TB, fail func(n int) int) *hookServer {
	h := &hookServer{t: t, fail: fail, received: map[string][]string{}, attempts: map[string][]string{}}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := Verify(testSecret, r.Header, body, time.Now(), 0); err != nil {
		h.t.Errorf("webhook signature: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
		h.t.Errorf("Content-Type %q", ct)
	}
	var ev struct {
		ID   string        `json:"id"`
		Type string        `json:"type"`
		Data ledger.Notice `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type != ledger.TypeNotice || ev.ID != ev.Data.Notice {
		h.t.Errorf("webhook body is not a structured notice (err %v, type %q)", err, ev.Type)
	}
	recipient := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	h.mu.Lock()
	h.n++
	n := h.n
	h.received[recipient] = append(h.received[recipient], ev.ID)
	h.attempts[recipient] = append(h.attempts[recipient], r.Header.Get(HeaderDelivery))
	h.mu.Unlock()
	if h.fail != nil {
		if status := h.fail(n); status != 0 {
			w.WriteHeader(status)
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

func (h *hookServer) got(recipient string) (ids, attempts []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.received[recipient]...), append([]string(nil), h.attempts[recipient]...)
}

func webhookRecipient(id, base string) ledger.Recipient {
	return ledger.Recipient{ID: id, Name: "Recipient " + id, Role: ledger.RoleProcessor, Channel: ledger.Channel{Type: "webhook", URL: base + "/hook/" + id}}
}

func natsRecipient(id string) ledger.Recipient {
	return ledger.Recipient{ID: id, Name: "Recipient " + id, Role: ledger.RoleCompetentAuthority, Channel: ledger.Channel{Type: "nats"}}
}

// TestWebhookDownThenUp: the endpoint answers 503 three times, then 202.
// Every attempt is recorded, with increasing times, and the notice ends
// delivered; every request carried the same notice id.
func TestWebhookDownThenUp(t *testing.T) {
	const down = 3
	hook := newHookServer(t, func(n int) int {
		if n <= down {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	f := newFakeLedger(t)
	f.addRecipient(webhookRecipient("dxc-technology", hook.URL))
	notice := f.open("dxc-technology", "webhook", time.Now().Add(30*24*time.Hour))
	logs := &syncBuffer{}
	d := New(f, f, nil, fastConfig(NewSecrets(map[string][]byte{"dxc-technology": testSecret})), slog.New(slog.NewTextHandler(logs, nil)))
	runDispatcher(t, d)

	checkFor(t, 10*time.Second, func() error {
		if s := f.state(notice); s != ledger.StateDelivered {
			return fmt.Errorf("state %s, want delivered", s)
		}
		return nil
	})
	recs := f.records(notice)
	if len(recs) != down+1 {
		t.Fatalf("%d delivery records, want %d: %+v", len(recs), down+1, recs)
	}
	for i, r := range recs {
		if r.Attempt != i+1 || r.Channel != "webhook" {
			t.Errorf("record %d: attempt %d channel %s, want attempt %d over webhook", i, r.Attempt, r.Channel, i+1)
		}
		if i < down {
			if r.Outcome != ledger.DeliveryFailed || r.Status != 503 || r.Error != "HTTP 503" || r.NextAttemptAt == nil {
				t.Errorf("record %d: %+v, want failed with HTTP 503 and a next attempt", i, r)
			}
			if r.NextAttemptAt != nil && r.NextAttemptAt.Before(r.At) {
				t.Errorf("record %d: next attempt %v before the attempt %v", i, r.NextAttemptAt, r.At)
			}
			if next := recs[i+1]; r.NextAttemptAt != nil && next.At.Before(*r.NextAttemptAt) {
				t.Errorf("attempt %d at %v, before the time scheduled by attempt %d: %v", next.Attempt, next.At, r.Attempt, r.NextAttemptAt)
			}
		} else if r.Outcome != ledger.DeliveryDelivered || r.Status != 202 || r.NextAttemptAt != nil {
			t.Errorf("last record: %+v, want delivered with 202", r)
		}
		if i > 0 && r.At.Before(recs[i-1].At) {
			t.Errorf("record %d at %v, before record %d at %v", i, r.At, i-1, recs[i-1].At)
		}
	}
	ids, attempts := hook.got("dxc-technology")
	if got, want := strings.Join(attempts, ","), "1,2,3,4"; got != want {
		t.Errorf("Sharelog-Delivery headers %s, want %s", got, want)
	}
	for _, id := range ids {
		if id != notice {
			t.Errorf("webhook received notice id %s, want %s", id, notice)
		}
	}
	if strings.Contains(logs.String(), secretID) {
		t.Errorf("logs contain the data subject's identifier:\n%s", logs)
	}
}

// TestWebhookFailures: attempts that cannot succeed are recorded as failed,
// with an error that names no personal data.
func TestWebhookFailures(t *testing.T) {
	redirect := httptest.NewServer(http.RedirectHandler("http://example.invalid/", http.StatusFound))
	defer redirect.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	hook := newHookServer(t, nil)

	f := newFakeLedger(t)
	f.addRecipient(ledger.Recipient{ID: "redirects", Name: "R", Role: ledger.RoleProcessor, Channel: ledger.Channel{Type: "webhook", URL: redirect.URL}})
	f.addRecipient(ledger.Recipient{ID: "refuses", Name: "R", Role: ledger.RoleProcessor, Channel: ledger.Channel{Type: "webhook", URL: closedURL}})
	f.addRecipient(webhookRecipient("no-secret", hook.URL))
	due := time.Now().Add(time.Hour)
	nRedirect := f.open("redirects", "webhook", due)
	nRefused := f.open("refuses", "webhook", due)
	nNoSecret := f.open("no-secret", "webhook", due)
	nUnknown := f.open("unregistered", "webhook", due)
	cfg := fastConfig(NewSecrets(map[string][]byte{"redirects": testSecret, "refuses": testSecret}))
	cfg.Backoff = Backoff{Base: time.Hour, Max: 2 * time.Hour} // one attempt each
	d := New(f, f, nil, cfg, nil)
	if n, err := d.Round(context.Background()); err != nil || n != 4 {
		t.Fatalf("Round = %d, %v; want 4 notices", n, err)
	}
	for _, tt := range []struct{ notice, want string }{
		{nRedirect, "HTTP 302 (redirects are not followed)"},
		{nRefused, "connection refused"},
		{nNoSecret, "no webhook secret configured"},
		{nUnknown, "recipient not registered"},
	} {
		recs := f.records(tt.notice)
		if len(recs) != 1 || recs[0].Outcome != ledger.DeliveryFailed || recs[0].Error != tt.want || recs[0].NextAttemptAt == nil {
			t.Errorf("notice %s: records %+v, want one failed with %q", tt.notice, recs, tt.want)
		}
	}
	if ids, _ := hook.got("no-secret"); len(ids) != 0 {
		t.Errorf("a webhook without a secret was called %d times", len(ids))
	}
	// Nothing more is due until the backoff ends.
	if n, err := d.Round(context.Background()); err != nil || n != 0 {
		t.Errorf("second Round = %d, %v; want 0", n, err)
	}
}

// TestNATSChannel: a nats-channel notice lands on sharelog.notice.<recipient>
// in SHARELOG_NOTICES with the notice id as Nats-Msg-Id; a reminder of an
// overdue notice is published again with its own message id.
func TestNATSChannel(t *testing.T) {
	_, js := startNATS(t)
	f := newFakeLedger(t)
	f.addRecipient(natsRecipient("acro"))
	notice := f.open("acro", "nats", time.Now().Add(-time.Hour)) // already overdue
	cfg := fastConfig(nil)
	cfg.RemindEvery = time.Nanosecond
	d := New(f, f, js, cfg, nil)
	ctx := context.Background()

	if n, err := d.Round(ctx); err != nil || n != 1 {
		t.Fatalf("Round = %d, %v; want 1", n, err)
	}
	if recs := f.records(notice); len(recs) != 1 || recs[0].Outcome != ledger.DeliveryDelivered || recs[0].Channel != "nats" || recs[0].Reminder {
		t.Fatalf("records %+v, want one delivered over nats", recs)
	}
	// The notice is delivered and overdue: the next round is a reminder.
	if n, err := d.Round(ctx); err != nil || n != 1 {
		t.Fatalf("reminder Round = %d, %v; want 1", n, err)
	}
	if recs := f.records(notice); len(recs) != 2 || !recs[1].Reminder || recs[1].Attempt != 2 {
		t.Fatalf("records %+v, want a second, reminder, attempt", recs)
	}

	cons, err := js.OrderedConsumer(ctx, StreamNotices, jetstream.OrderedConsumerConfig{FilterSubjects: []string{SubjectNoticePrefix + "acro"}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	var msgIDs []string
	f.mu.Lock()
	want := string(f.events[notice])
	f.mu.Unlock()
	for m := range batch.Messages() {
		msgIDs = append(msgIDs, m.Headers().Get("Nats-Msg-Id"))
		if ct := m.Headers().Get("Content-Type"); ct != "application/cloudevents+json" {
			t.Errorf("Content-Type %q", ct)
		}
		if string(m.Data()) != want {
			t.Errorf("message body is not the notice event:\n%s", m.Data())
		}
		for k, v := range m.Headers() {
			if strings.Contains(strings.Join(v, " "), secretID) {
				t.Errorf("header %s carries the data subject's identifier", k)
			}
		}
	}
	if got, want := strings.Join(msgIDs, ","), notice+","+notice+"-r2"; got != want {
		t.Errorf("Nats-Msg-Ids %s, want %s", got, want)
	}
}

// TestNATSNoStream: without SHARELOG_NOTICES, the attempt fails and is
// retried; once the stream exists the notice is delivered.
func TestNATSNoStream(t *testing.T) {
	_, js := startNATS(t)
	ctx := context.Background()
	if err := js.DeleteStream(ctx, StreamNotices); err != nil {
		t.Fatal(err)
	}
	f := newFakeLedger(t)
	f.addRecipient(natsRecipient("acro"))
	notice := f.open("acro", "nats", time.Now().Add(time.Hour))
	d := New(f, f, js, fastConfig(nil), nil)
	if _, err := d.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if recs := f.records(notice); len(recs) != 1 || recs[0].Outcome != ledger.DeliveryFailed || recs[0].NextAttemptAt == nil {
		t.Fatalf("records %+v, want one failed", recs)
	}
	deliveredOnceStreamIsBack(t, js, d, f, notice)
}

// TestNATSAckLost: a notice whose acknowledgement never comes (on a cluster,
// the stream's leader stored it and died before it answered) is recorded as
// a failed attempt and sent again, with the same message id: the round does
// not wait for the acknowledgement for ever. Here the subject has a listener
// that never answers, and no stream.
func TestNATSAckLost(t *testing.T) {
	nc, js := startNATS(t, jetstream.WithPublishAsyncTimeout(200*time.Millisecond))
	ctx := context.Background()
	if err := js.DeleteStream(ctx, StreamNotices); err != nil {
		t.Fatal(err)
	}
	silent, err := nc.SubscribeSync(SubjectNoticePrefix + ">")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()
	f := newFakeLedger(t)
	f.addRecipient(natsRecipient("acro"))
	notice := f.open("acro", "nats", time.Now().Add(time.Hour))
	d := New(f, f, js, fastConfig(nil), nil)

	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := d.Round(rctx); err != nil {
		t.Fatalf("Round: %v", err)
	}
	recs := f.records(notice)
	if len(recs) != 1 || recs[0].Outcome != ledger.DeliveryFailed || recs[0].Error != "nats publish timed out" || recs[0].NextAttemptAt == nil {
		t.Fatalf("records %+v, want one failed with \"nats publish timed out\" and a next attempt", recs)
	}
	sent, err := silent.NextMsg(time.Second)
	if err != nil {
		t.Fatalf("the notice was not published: %v", err)
	}
	if id := sent.Header.Get(jetstream.MsgIDHeader); id != notice {
		t.Errorf("first attempt's Nats-Msg-Id %q, want the notice id %s", id, notice)
	}

	// Once the stream is back, the next attempt is acknowledged, with the
	// same message id.
	silent.Unsubscribe()
	deliveredOnceStreamIsBack(t, js, d, f, notice)
	stream, err := js.Stream(ctx, StreamNotices)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := stream.GetLastMsgForSubject(ctx, SubjectNoticePrefix+"acro")
	if err != nil {
		t.Fatal(err)
	}
	if id := stored.Header.Get(jetstream.MsgIDHeader); id != notice {
		t.Errorf("stored notice's Nats-Msg-Id %q, want the notice id %s", id, notice)
	}
}

// deliveredOnceStreamIsBack makes SHARELOG_NOTICES again, runs d and waits
// until notice is delivered.
func deliveredOnceStreamIsBack(t *testing.T, js jetstream.JetStream, d *Dispatcher, f *fakeLedger, notice string) {
	t.Helper()
	if err := EnsureStream(context.Background(), js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	checkFor(t, 10*time.Second, func() error {
		if s := f.state(notice); s != ledger.StateDelivered {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})
}

// TestRestartMidFanOut: the dispatcher dies in the middle of fanning one
// erasure out (some notices sent, their records lost); a new dispatcher
// finishes. Every recipient receives its own notice id and no other, at least
// once, and every obligation ends delivered.
func TestRestartMidFanOut(t *testing.T) {
	_, js := startNATS(t)
	f := newFakeLedger(t)
	var crashed atomic.Bool
	var crash func()
	hook := newHookServer(t, func(n int) int {
		if n == 5 {
			crash()
		}
		if crashed.Load() && n <= 8 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	secrets := map[string][]byte{}
	notices := map[string]string{}
	due := time.Now().Add(30 * 24 * time.Hour)
	for i := range 30 {
		id := fmt.Sprintf("r%02d", i)
		if i%2 == 0 {
			f.addRecipient(webhookRecipient(id, hook.URL))
			secrets[id] = testSecret
			notices[id] = f.open(id, "webhook", due)
		} else {
			f.addRecipient(natsRecipient(id))
			notices[id] = f.open(id, "nats", due)
		}
	}
	cfg := fastConfig(NewSecrets(secrets))
	cfg.Concurrency = 2

	d1 := New(f, f, js, cfg, nil)
	ctx1, cancel1 := context.WithCancel(context.Background())
	crash = func() {
		if crashed.CompareAndSwap(false, true) {
			f.down.Store(true) // records cannot be stored: lost with the process
			cancel1()
		}
	}
	if err := d1.Run(ctx1); err != nil {
		t.Fatalf("first Run = %v", err)
	}
	sentBefore := 0
	for id := range notices {
		ids, _ := hook.got(id)
		sentBefore += len(ids)
	}
	if sentBefore == 0 || sentBefore >= 15 {
		t.Fatalf("%d webhooks sent before the crash; the test wants a crash in the middle", sentBefore)
	}
	f.down.Store(false)

	d2 := New(f, f, js, cfg, nil)
	runDispatcher(t, d2)
	checkFor(t, 20*time.Second, func() error {
		for id, n := range notices {
			if s := f.state(n); s != ledger.StateDelivered {
				return fmt.Errorf("%s: state %s", id, s)
			}
		}
		return nil
	})

	// What each nats recipient received.
	cons, err := js.OrderedConsumer(context.Background(), StreamNotices, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.FetchNoWait(1000)
	if err != nil {
		t.Fatal(err)
	}
	natsGot := map[string][]string{}
	for m := range batch.Messages() {
		var ev struct{ ID string }
		json.Unmarshal(m.Data(), &ev)
		r := strings.TrimPrefix(m.Subject(), SubjectNoticePrefix)
		natsGot[r] = append(natsGot[r], ev.ID)
	}
	distinct := map[string]string{}
	for id, want := range notices {
		got, _ := hook.got(id)
		if i, _ := strconv.Atoi(id[1:]); i%2 == 1 {
			got = natsGot[id]
		}
		if len(got) == 0 {
			t.Errorf("%s received nothing", id)
		}
		for _, n := range got {
			if n != want {
				t.Errorf("%s received notice %s, want only %s", id, n, want)
			}
		}
		if other, dup := distinct[want]; dup {
			t.Errorf("%s and %s share notice id %s", id, other, want)
		}
		distinct[want] = id
		// The ledger's record: attempts numbered 1, 2, ... with no gap.
		for i, r := range f.records(want) {
			if r.Attempt != i+1 {
				t.Errorf("%s: record %d is attempt %d", id, i, r.Attempt)
			}
		}
	}
	if len(distinct) != 30 {
		t.Errorf("%d distinct notice ids, want 30", len(distinct))
	}
}

// TestManual: the manual queue exports what to send to whom, and marking a
// notice sent records it once; other notices cannot be marked sent.
func TestManual(t *testing.T) {
	f := newFakeLedger(t)
	f.addRecipient(ledger.Recipient{ID: "charity-post", Name: "=Charity Post", Role: ledger.RoleController, Channel: ledger.Channel{Type: "manual"}, Contact: "dpo@charity.example"})
	f.addRecipient(natsRecipient("acro"))
	due := time.Date(2099, 4, 1, 0, 0, 0, 0, time.UTC)
	manual := f.open("charity-post", "manual", due)
	auto := f.open("acro", "nats", due)
	d := New(f, f, nil, fastConfig(nil), nil)
	ctx := context.Background()

	if n, err := d.Round(ctx); err != nil || n != 0 {
		// acro is due but there is no NATS here: the fake returns it; manual is never returned.
		if n != 1 {
			t.Fatalf("Round = %d, %v", n, err)
		}
	}
	if recs := f.records(manual); len(recs) != 0 {
		t.Fatalf("manual notice was attempted: %+v", recs)
	}

	q, err := d.ManualQueue(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 1 || q[0].Notice != manual || q[0].Contact != "dpo@charity.example" || q[0].Subject.ID != secretID || q[0].Action != ledger.ActionErase || !q[0].Due.Equal(due) {
		t.Fatalf("queue %+v", q)
	}
	var csv strings.Builder
	if err := WriteManualCSV(&csv, q); err != nil {
		t.Fatal(err)
	}
	wantCSV := "recipient,name,contact,notice,action,request,subject_scheme,subject_id,categories,disclosures,changes,due,overdue\n" +
		"charity-post,'=Charity Post,dpo@charity.example," + manual + ",erase,req-1,dbs-ref," + secretID + ",user.contact.email,d-charity-post,,2099-04-01T00:00:00Z,false\n"
	if csv.String() != wantCSV {
		t.Errorf("CSV:\n%s\nwant:\n%s", csv.String(), wantCSV)
	}

	if _, err := d.MarkSent(ctx, manual, " "); ledger.ErrorCode(err) != ledger.EINVALID {
		t.Errorf("MarkSent without sentBy = %v, want EINVALID", err)
	}
	if _, err := d.MarkSent(ctx, "n-nope", "A. Clerk"); ledger.ErrorCode(err) != ledger.ENOTFOUND {
		t.Errorf("MarkSent of an unknown notice = %v, want ENOTFOUND", err)
	}
	if _, err := d.MarkSent(ctx, auto, "A. Clerk"); ledger.ErrorCode(err) != ledger.ECONFLICT {
		t.Errorf("MarkSent of a nats notice = %v, want ECONFLICT", err)
	}
	r, err := d.MarkSent(ctx, manual, "A. Clerk")
	if err != nil {
		t.Fatal(err)
	}
	if r.Outcome != ledger.DeliverySent || r.SentBy != "A. Clerk" || r.Attempt != 1 || r.Channel != "manual" {
		t.Errorf("record %+v", r)
	}
	if s := f.state(manual); s != ledger.StateDelivered {
		t.Errorf("state %s, want delivered", s)
	}
	if _, err := d.MarkSent(ctx, manual, "A. Clerk"); ledger.ErrorCode(err) != ledger.ECONFLICT {
		t.Errorf("second MarkSent = %v, want ECONFLICT", err)
	}
	if q, _ := d.ManualQueue(ctx); len(q) != 0 {
		t.Errorf("queue after sending: %+v", q)
	}
}
