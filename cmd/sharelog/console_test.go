package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/sharelog/sharelog/internal/access"
	"github.com/sharelog/sharelog/internal/ledger"
)

// axeDir holds axe-core, the accessibility engine the console test injects
// into each page: package.json and package-lock.json pin it, npm ci
// installs it (.ci/run does it; so does the test, when node_modules is
// absent).
const axeDir = "testdata/axe"

// underCI reports whether the tests run in CI, where a missing browser or
// tool fails a test rather than skipping it.
func underCI() bool { return os.Getenv("CI") != "" }

// chromiumPath finds a Chromium (Debian's chromium). Without one the test
// is skipped, except under CI, where .ci/run installs it and it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if underCI() {
		t.Fatal("chromium is not installed, and CI is set: .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the console's browser tests need it")
	return ""
}

// axeSource returns axe.min.js, installing it with npm ci when absent.
func axeSource(t *testing.T) string {
	t.Helper()
	path := filepath.Join(axeDir, "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if _, err := exec.LookPath("npm"); err != nil {
			if underCI() {
				t.Fatalf("npm is not installed, and CI is set: .ci/run installs it (%v)", err)
			}
			t.Skipf("npm is not installed, so axe-core cannot be: %v", err)
		}
		npm := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		npm.Dir = axeDir
		if out, err := npm.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", axeDir, err, out)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testBrowser is a headless Chromium on one console, recording every URL
// it requests and every download.
type testBrowser struct {
	t     *testing.T
	ctx   context.Context
	base  string
	axe   string
	dir   string // downloads
	shots string // where screenshots go, "" for none

	mu        sync.Mutex
	urls      []string
	cspErrors []string
	downloads chan string // GUIDs of finished downloads
}

func newTestBrowser(t *testing.T, base, axe string) *testBrowser {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &testBrowser{t: t, ctx: ctx, base: base, axe: axe, dir: t.TempDir(), downloads: make(chan string, 8)}
	if os.Getenv("SHARELOG_SCREENSHOTS") != "" {
		b.shots = filepath.Join("..", "..", "docs", "screenshots")
	}
	listen := func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.urls = append(b.urls, e.Request.URL)
		case *page.EventFrameNavigated:
			b.urls = append(b.urls, e.Frame.URL)
		case *cdplog.EventEntryAdded:
			if strings.Contains(e.Entry.Text, "Content Security Policy") {
				b.cspErrors = append(b.cspErrors, e.Entry.Text)
			}
		case *browser.EventDownloadProgress:
			if e.State == browser.DownloadProgressStateCompleted {
				select {
				case b.downloads <- e.GUID:
				default:
				}
			}
		}
	}
	if err := chromedp.Listen(ctx, listen); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if err := chromedp.ListenBrowser(ctx, listen); err != nil {
		t.Fatalf("browser: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	on := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: b.dir, EventsEnabled: &on,
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// do runs actions, failing the test on an error.
func (b *testBrowser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// open navigates to path.
func (b *testBrowser) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// evalTry returns the value of a JavaScript expression in the page, or an
// error (while a page loads, for one).
func evalTry[T any](b *testBrowser, expr string, opts ...chromedp.EvaluateOption) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
}

// eval returns the string value of a JavaScript expression in the page.
func (b *testBrowser) eval(expr string) string {
	b.t.Helper()
	s, err := evalTry[string](b, expr)
	if err != nil {
		b.t.Fatalf("browser: %s: %v", expr, err)
	}
	return s
}

// h1 is the page's heading, "" while there is none.
func (b *testBrowser) h1() string {
	s, _ := evalTry[string](b, `(document.querySelector("h1")||{}).textContent||""`)
	return strings.TrimSpace(s)
}

// submit fills a form's fields (CSS selector to value), presses its
// button and waits for the next page, whose heading contains wantH1.
func (b *testBrowser) submit(button string, fields map[string]string, wantH1 string) {
	b.t.Helper()
	var acts []chromedp.Action[chromedp.Void]
	for sel, v := range fields {
		acts = append(acts, chromedp.SetValue(chromedp.CSS(sel), v))
	}
	b.do(acts...)
	b.clickAndWait(button, wantH1)
}

// clickAndWait clicks sel and waits for a new page with the heading.
func (b *testBrowser) clickAndWait(sel, wantH1 string) {
	b.t.Helper()
	if _, err := evalTry[bool](b, `document.body.dataset.before = "1"; true`); err != nil {
		b.t.Fatal(err)
	}
	b.do(chromedp.Click(chromedp.CSS(sel)))
	deadline := time.Now().Add(15 * time.Second)
	for {
		fresh, err := evalTry[bool](b, `document.readyState === "complete" && !!document.body && !document.body.dataset.before`)
		if err == nil && fresh && strings.Contains(b.h1(), wantH1) {
			return
		}
		if time.Now().After(deadline) {
			text, _ := evalTry[string](b, `document.body.innerText`)
			b.t.Fatalf("waiting for a page with heading %q: on %q (new page: %v, %v)\n%s", wantH1, b.h1(), fresh, err, text)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// seen returns the URLs the browser requested or navigated to so far.
func (b *testBrowser) seen() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.urls)
}

// text is the page's visible text.
func (b *testBrowser) text() string { return b.eval(`document.body.innerText`) }

// screenshots are the pages check saves for the README.
var screenshots = map[string]bool{"sign-in": true, "home": true, "person-form-error": true, "person": true, "subject-report": true,
	"requests": true, "request-exempted": true, "overdue": true, "manual": true, "decisions-refused": true, "recipient": true, "evidence": true, "accesses": true}

// axeFinding is one violation axe-core reports.
type axeFinding struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// check runs axe-core on the page and fails on any serious or critical
// violation; it saves a screenshot as name.png when screenshots are asked
// for (SHARELOG_SCREENSHOTS=1, which writes docs/screenshots).
func (b *testBrowser) check(name string) {
	b.t.Helper()
	if _, err := evalTry[bool](b, b.axe+";true"); err != nil {
		b.t.Fatalf("inject axe-core: %v", err)
	}
	res, err := evalTry[[]axeFinding](b, `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))})))`,
		chromedp.EvalAwaitPromise)
	if err != nil {
		b.t.Fatalf("axe on %s: %v", name, err)
	}
	for _, v := range res {
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("page %s: accessibility violation %s (%s): %s at %v", name, v.ID, v.Impact, v.Help, v.Nodes)
		} else {
			b.t.Logf("page %s: minor accessibility finding %s (%s) at %v", name, v.ID, v.Impact, v.Nodes)
		}
	}
	if b.shots != "" && screenshots[name] {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

// download waits for the next finished download and returns its contents.
func (b *testBrowser) download() []byte {
	b.t.Helper()
	select {
	case guid := <-b.downloads:
		data, err := os.ReadFile(filepath.Join(b.dir, guid))
		if err != nil {
			b.t.Fatal(err)
		}
		return data
	case <-time.After(15 * time.Second):
		b.t.Fatal("no download finished")
		return nil
	}
}

// consoleData publishes the test's ledger: three manual recipients, a
// person's data disclosed to each, another person's to one, and an erasure
// of the first person's data five days ago.
func consoleData(t *testing.T, m *testMain, now time.Time) ledger.Subject {
	t.Helper()
	a1 := ledger.Subject{Scheme: "dbs-ref", ID: secretID}
	b2 := ledger.Subject{Scheme: "dbs-ref", ID: "B2-OTHER"}
	t0 := now.Add(-10 * 24 * time.Hour).Truncate(time.Hour)
	erasure := ce("dpo", "erasure-1", ledger.TypeErasure, map[string]any{
		"request": "E-1", "subject": a1, "categories": []string{"user.contact", "user.criminal_history"},
		"ground": "art17-1-a", "decidedAt": now.Add(-5 * 24 * time.Hour).Format(time.RFC3339), "decidedBy": "dpo@example.org",
	})
	outcomes := publishAll(t, m,
		manualRecipient("acro", "dpa-part3", 0), manualRecipient("btp", "", 0), manualRecipient("cgi", "", 2),
		ukDisclosure("d-1", a1, "acro", []string{"user.criminal_history"}, t0),
		ukDisclosure("d-2", a1, "btp", []string{"user.contact.address"}, t0.Add(time.Hour)),
		ukDisclosure("d-3", a1, "cgi", []string{"user.contact.email"}, t0.Add(2*time.Hour)),
		ukDisclosure("d-4", b2, "cgi", []string{"user.contact.email"}, t0.Add(3*time.Hour)),
		erasure,
	)
	if want := strings.Repeat("recorded ", 8); strings.Join(outcomes, " ")+" " != want {
		t.Fatalf("outcomes = %v, want all recorded", outcomes)
	}
	return a1
}

// TestConsole drives the web console in headless Chromium against the real
// serve code: without --access (everyone "anonymous", with a banner), then
// with an access file: a clerk who cannot search for a person but works the
// manual queue, a DPO who finds a person, records an exemption (and is
// refused one the law forbids), and downloads the record of disclosures as
// CSV. axe-core checks every page; no identifier is ever in a URL.
func TestConsole(t *testing.T) {
	chromiumPath(t)
	axe := axeSource(t)
	dir := t.TempDir()
	now := time.Now().UTC()

	// Without --access: everyone is anonymous, and told so. Without
	// sign-in and without a consultation log, lookups are answered (as the
	// API answers them).
	m := startMain(t, testConfig(dir))
	subject := consoleData(t, m, now)
	b := newTestBrowser(t, m.HTTP.URL(), axe)
	b.open("/ui/")
	if txt := b.text(); !strings.Contains(txt, "Nobody is authenticated") || !strings.Contains(txt, "anonymous") {
		t.Errorf("loopback console without the banner:\n%s", txt)
	}
	b.check("anonymous-home")

	// The manual queue: download a notice, mark it sent.
	btp, cgi, acro := ledger.NoticeID("E-1", "btp"), ledger.NoticeID("E-1", "cgi"), ledger.NoticeID("E-1", "acro")
	b.open("/ui/manual")
	if txt := b.text(); !strings.Contains(txt, btp) || !strings.Contains(txt, cgi) || !strings.Contains(txt, acro) {
		t.Fatalf("manual queue lacks E-1's notices:\n%s", txt)
	}
	b.check("manual")
	b.do(chromedp.Click(chromedp.CSS(`a[href="/ui/manual/` + btp + `"]`)))
	if notice := string(b.download()); !strings.Contains(notice, secretID) || !strings.Contains(notice, btp) {
		t.Errorf("downloaded notice lacks the person or the notice id:\n%s", notice)
	}
	b.submit(`form[action="/ui/manual/`+btp+`/sent"] button`, nil, "Manual queue")
	if txt := b.text(); !strings.Contains(txt, "Notice "+btp+" is marked as sent by anonymous") || strings.Contains(txt, "Download notice "+btp) {
		t.Errorf("after marking sent:\n%s", txt)
	}
	st, err := m.Store.Status(context.Background(), "E-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Obligations {
		if o.Recipient == "btp" && o.State != ledger.StateDelivered {
			t.Errorf("btp's notice after it was marked sent: %s, want delivered", o.State)
		}
	}

	// Find a person (a reason is required): their recipients, the
	// printable report.
	b.open("/ui/person")
	b.check("person-form")
	b.submit(`form[action="/ui/person"] button`, map[string]string{"#scheme": subject.Scheme, "#id": subject.ID}, "Find a person")
	if txt := b.text(); !strings.Contains(txt, "Enter why you are looking this person up") {
		t.Errorf("search without a reason: no error summary:\n%s", txt)
	}
	b.check("person-form-error")
	b.submit(`form[action="/ui/person"] button`, map[string]string{"#reason": "subject access request SAR-7"}, "Who received this person's data")
	rows := b.eval(`[...document.querySelectorAll("#recipients tbody th .hint")].map(e => e.textContent.split(",")[0]).join(" ")`)
	if rows != "acro btp cgi" {
		t.Errorf("recipients of the person: %q, want acro btp cgi", rows)
	}
	if txt := b.text(); !strings.Contains(txt, "3 recipients, 3 disclosures") || !strings.Contains(txt, "E-1") {
		t.Errorf("person page:\n%s", txt)
	}
	b.check("person")
	b.submit(`form[action="/ui/person/report"] button`, nil, "Who we shared your data with")
	b.check("subject-report")
	anonymousURLs := b.seen()
	m.Close()

	// With --access: a DPO and a clerk.
	dpoToken, dpoHash := access.NewToken()
	clerkToken, clerkHash := access.NewToken()
	auditorToken, auditorHash := access.NewToken()
	cfg := testConfig(dir)
	cfg.Access = filepath.Join(dir, "access.yaml")
	if err := os.WriteFile(cfg.Access, []byte(fmt.Sprintf("principals:\n"+
		"  - {name: jane.dpo, roles: [dpo], tokenSHA256: %s}\n"+
		"  - {name: ann.clerk, roles: [clerk], tokenSHA256: %s}\n"+
		"  - {name: al.auditor, roles: [auditor], tokenSHA256: %s}\n", dpoHash, clerkHash, auditorHash)), 0o600); err != nil {
		t.Fatal(err)
	}
	m = startMain(t, cfg)
	b = newTestBrowser(t, m.HTTP.URL(), axe)
	// A lookup is answered only once the consultation log has it; where
	// serve runs none yet, the console refuses lookups, as the API does.
	logged := m.HTTP.Consult != nil
	lookup := func(what, want string) {
		t.Helper()
		txt := b.text()
		switch {
		case logged && !strings.Contains(txt, want):
			t.Errorf("%s, with the consultation log running:\n%s", what, txt)
		case !logged && !strings.Contains(txt, "consultation log is not running"):
			t.Errorf("%s, without a consultation log: want it refused\n%s", what, txt)
		}
	}

	// Signed out, every page leads to the sign-in form; a wrong token gets
	// the error summary.
	b.open("/ui/requests")
	if h := b.h1(); h != "Sign in" {
		t.Fatalf("signed out, /ui/requests shows %q, want the sign-in page", h)
	}
	b.check("sign-in")
	b.submit(`form[action="/ui/sign-in"] button`, map[string]string{"#token": "not-a-token"}, "Sign in")
	if txt := b.text(); !strings.Contains(txt, "There is a problem") || !strings.Contains(txt, "Enter a valid access token") {
		t.Errorf("wrong token: no error summary:\n%s", txt)
	}
	b.check("sign-in-error")

	// The clerk: no person search; the manual queue.
	b.submit(`form[action="/ui/sign-in"] button`, map[string]string{"#token": clerkToken}, "What do you want to do?")
	if txt := b.text(); strings.Contains(txt, "Find a person") || !strings.Contains(txt, "Manual queue") {
		t.Errorf("clerk's start page: want the manual queue and no person search:\n%s", txt)
	}
	b.open("/ui/person")
	if h, txt := b.h1(), b.text(); h != "Forbidden" || !strings.Contains(txt, `"ann.clerk"`) {
		t.Errorf("clerk on /ui/person: %q\n%s", h, txt)
	}
	b.check("forbidden")
	b.open("/ui/manual")
	lookup("the clerk's manual queue", cgi)
	b.submit(`form[action="/ui/sign-out"] button`, nil, "Sign in")

	// The DPO.
	b.submit(`form[action="/ui/sign-in"] button`, map[string]string{"#token": dpoToken}, "What do you want to do?")
	b.check("home")
	b.open("/ui/person")
	b.submit(`form[action="/ui/person"] button`, map[string]string{"#scheme": subject.Scheme, "#id": subject.ID, "#reason": "SAR-7"}, "")
	lookup("the DPO's lookup", "3 recipients, 3 disclosures")
	if logged {
		page, err := m.Store.Consultations(context.Background(), ledger.ConsultationFilter{Principal: "jane.dpo"})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, c := range page.Consultations {
			found = found || (c.Operation == "who" && c.Reason == "SAR-7" && c.Subject != nil && *c.Subject == subject)
		}
		if !found {
			t.Errorf("the DPO's console lookup is not in the consultation log: %+v", page.Consultations)
		}
	}

	// Requests, overdue, recipients, evidence.
	b.open("/ui/requests?show=open")
	if txt := b.text(); !strings.Contains(txt, "E-1") {
		t.Errorf("open requests lack E-1:\n%s", txt)
	}
	b.check("requests")
	b.open("/ui/overdue")
	if txt := b.text(); !strings.Contains(txt, "Recipient cgi") {
		t.Errorf("overdue: cgi's 2-day notice is late:\n%s", txt)
	}
	b.check("overdue")
	b.open("/ui/recipients")
	b.check("recipients")
	b.open("/ui/recipients/cgi")
	if n := b.eval(`String([...document.querySelectorAll("#months tbody td.numeric")].reduce((s, e) => s + Number(e.textContent), 0))`); n != "2" {
		t.Errorf("disclosures to cgi in the last 12 months: %s, want 2", n)
	}
	b.check("recipient")

	// Decisions: an exemption the law forbids (Part 3 has no
	// disproportionate-effort exception) is refused with the rule's reason;
	// one it allows closes the obligation.
	b.open("/ui/requests/E-1")
	b.check("request")
	b.clickAndWait(`a[href="/ui/decisions?notice=`+acro+`#exemption"]`, "Record a decision")
	b.check("decisions")
	b.submit(`form[action="/ui/decisions/exemption"] button`, map[string]string{
		"#exemption-reason": "disproportionate-effort", "#exemption-justification": "an archive on tape",
	}, "Record a decision")
	if txt := b.text(); !strings.Contains(txt, "Not recorded") || !strings.Contains(txt, "s.48") {
		t.Errorf("a Part 3 exemption for disproportionate effort: want it refused with s.48:\n%s", txt)
	}
	b.check("decisions-refused")
	b.submit(`form[action="/ui/decisions/exemption"] button`, map[string]string{
		"#exemption-notice": cgi, "#exemption-reason": "impossible", "#exemption-justification": "the recipient has dissolved",
	}, "Request E-1")
	if txt := b.text(); !strings.Contains(txt, "The exemption was recorded") {
		t.Errorf("after the exemption:\n%s", txt)
	}
	b.check("request-exempted")
	state := b.eval(`[...document.querySelectorAll("#obligations tbody tr")].map(r => r.querySelector("th").firstChild.textContent.trim() + "=" + r.querySelector(".tag").textContent).join(" ")`)
	if want := "Recipient acro=Pending Recipient btp=Delivered Recipient cgi=Exempted"; state != want {
		t.Errorf("obligations of E-1: %q, want %q", state, want)
	}

	// An extension of the person's clock for a request that never said
	// when it was received: stored, then refused by the ledger's rules when
	// applied, and the console says so.
	b.clickAndWait(`a[href="/ui/decisions?request=E-1#extension"]`, "Record a decision")
	b.submit(`form[action="/ui/decisions/extension"] button`, map[string]string{
		"#extension-months": "2", "#extension-reason": "many recipients",
	}, "Record a decision")
	if txt := b.text(); !strings.Contains(txt, "Not recorded") || !strings.Contains(txt, "refused it when it was applied") {
		t.Errorf("an extension without a clock: want it refused when applied:\n%s", txt)
	}

	// A legal hold on the purpose of the person's disclosures covers them,
	// as their page says, until it is released.
	b.open("/ui/decisions")
	b.submit(`form[action="/ui/decisions/hold"] button`, map[string]string{
		"#hold-hold": "litigation-7", "#hold-purpose": "essential.service", "#hold-reason": "claim 7 in the county court",
	}, "Record a decision")
	if txt := b.text(); !strings.Contains(txt, "The hold was recorded") {
		t.Errorf("after placing a hold:\n%s", txt)
	}
	holds := func() []string {
		w, err := m.Store.Who(context.Background(), subject)
		if err != nil {
			t.Fatal(err)
		}
		return w.Holds
	}
	if h := holds(); !slices.Equal(h, []string{"litigation-7"}) {
		t.Errorf("holds covering the person: %v, want litigation-7", h)
	}
	b.submit(`form[action="/ui/decisions/release"] button`, map[string]string{
		"#release-hold": "litigation-7", "#release-reason": "claim settled",
	}, "Record a decision")
	if txt := b.text(); !strings.Contains(txt, "The release was recorded") {
		t.Errorf("after releasing the hold:\n%s", txt)
	}
	if h := holds(); len(h) != 0 {
		t.Errorf("holds after the release: %v, want none", h)
	}

	// Evidence: the checkpoint, and the disclosures of the period as CSV.
	b.open("/ui/evidence")
	b.check("evidence")
	b.do(chromedp.SetValue(chromedp.CSS("#since"), now.AddDate(0, 0, -30).Format(time.DateOnly)),
		chromedp.SetValue(chromedp.CSS("#until"), now.AddDate(0, 0, 1).Format(time.DateOnly)),
		chromedp.Click(chromedp.CSS(`form[action="/ui/evidence/disclosures.csv"] button`)))
	recs, err := csv.NewReader(strings.NewReader(string(b.download()))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || strings.Join(recs[0][:6], ",") != "seq,recorded_at,source,id,disclosed_at,recipient" {
		t.Fatalf("disclosures CSV: want a header and 4 rows:\n%v", recs)
	}
	var got []string
	for _, r := range recs[1:] {
		got = append(got, r[3]+"→"+r[5]+":"+r[10])
	}
	if want := "d-1→acro:1 d-2→btp:1 d-3→cgi:1 d-4→cgi:1"; strings.Join(got, " ") != want {
		t.Errorf("disclosures CSV rows: %v, want %s", got, want)
	}
	// The record of processing beside the ledger: btp is declared for the
	// purpose, acro and cgi are not (their role, controller, is not
	// declared either); "HMRC" is declared and never disclosed to.
	ropa := filepath.Join(t.TempDir(), "ropa.csv")
	if err := os.WriteFile(ropa, []byte("Controller,Acme\n\nBusiness function,Purpose of processing,Categories of recipients\n"+
		"Casework,essential.service,\"btp; HMRC\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.SetUploadFiles(chromedp.CSS("#ropa"), []string{ropa}),
		chromedp.Click(chromedp.CSS(`form[action="/ui/evidence/ropa.csv"] button`)))
	recs, err = csv.NewReader(strings.NewReader(string(b.download()))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, r := range recs[1:] {
		got = append(got, r[1]+":"+r[2]+r[3]+":"+r[5])
	}
	if want := "controller:noyes:1 btp:yesyes:1 controller:noyes:2 HMRC:yesno:0"; strings.Join(got, " ") != want {
		t.Errorf("RoPA comparison (category:declared observed:disclosures): %v, want %s\n%v", got, want, recs)
	}

	// The consultation log: the DPO's lookup with its reason, on screen and
	// as CSV by person (a lookup itself, with its own reason, in a POST).
	b.clickAndWait(`a[href="/ui/evidence/accesses"]`, "Consultation log")
	if txt := b.text(); logged && (!strings.Contains(txt, "SAR-7") || !strings.Contains(txt, subject.Scheme+":"+subject.ID)) {
		t.Errorf("the DPO's consultation log lacks the lookup:\n%s", txt)
	}
	b.check("accesses")
	b.do(chromedp.SetValue(chromedp.CSS("#principal"), "jane.dpo"), chromedp.SetValue(chromedp.CSS("#scheme"), subject.Scheme),
		chromedp.SetValue(chromedp.CSS("#id"), subject.ID), chromedp.SetValue(chromedp.CSS("#reason"), "complaint C-3"),
		chromedp.Click(chromedp.CSS("#accesses-csv")))
	recs, err = csv.NewReader(strings.NewReader(string(b.download()))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, r := range recs[1:] {
		got = append(got, r[1]+":"+r[2]+":"+r[3]+":"+r[4])
	}
	// The search of the person, then the selection of the log by person
	// (recorded before it is read, so it is in the export).
	if want := "jane.dpo:who:" + subject.String() + ":SAR-7 jane.dpo:listAccesses:" + subject.String() + ":complaint C-3"; logged &&
		(strings.Join(recs[0], ",") != "RECORDED,PRINCIPAL,OPERATION,SUBJECT,REASON,QUERY,SEQ" || strings.Join(got, " ") != want) {
		t.Errorf("consultation log CSV by person: %q, want %q\n%v", got, want, recs)
	}
	b.submit(`#accesses-show`, nil, "Consultation log")
	b.check("accesses-by-person")

	// The auditor: the log without people or reasons, and no person filter.
	b.submit(`form[action="/ui/sign-out"] button`, nil, "Sign in")
	b.submit(`form[action="/ui/sign-in"] button`, map[string]string{"#token": auditorToken}, "What do you want to do?")
	b.open("/ui/evidence/accesses")
	if txt := b.text(); logged && (strings.Contains(txt, secretID) || strings.Contains(txt, "SAR-7") || !strings.Contains(txt, "jane.dpo") ||
		!strings.Contains(txt, "(a person)")) {
		t.Errorf("the auditor's consultation log: want jane.dpo's lookups without the person or the reason:\n%s", txt)
	}
	if n := b.eval(`String(document.querySelectorAll("#scheme, #id").length)`); n != "0" {
		t.Errorf("the auditor is offered a person filter")
	}
	b.check("accesses-auditor")
	b.do(chromedp.Click(chromedp.CSS("#accesses-csv")))
	if audit := string(b.download()); logged && (strings.Contains(audit, secretID) || strings.Contains(audit, "SAR-7") || !strings.Contains(audit, "jane.dpo,who,(a person),,")) {
		t.Errorf("the auditor's consultation log CSV:\n%s", audit)
	}

	b.open("/ui/no-such-page")
	b.check("not-found")

	// No identifier in any URL the browser asked for; no CSP violation.
	urls := append(anonymousURLs, b.seen()...)
	if len(urls) < 40 {
		t.Errorf("only %d URLs seen: the listener is not working", len(urls))
	}
	for _, u := range urls {
		if strings.Contains(u, secretID) || strings.Contains(u, url.QueryEscape(secretID)) {
			t.Errorf("an identifier in a URL: %s", u)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.cspErrors) > 0 {
		t.Errorf("Content-Security-Policy violations: %v", b.cspErrors)
	}
	if strings.Contains(m.logs.String(), secretID) {
		t.Errorf("the identifier is in the server's log")
	}
}

// TestConsoleSessions checks the console's sign-in cookie, its CSRF
// protection and its headers over plain HTTP, against the real serve code.
func TestConsoleSessions(t *testing.T) {
	dir := t.TempDir()
	token, hash := access.NewToken()
	cfg := testConfig(dir)
	cfg.Access = filepath.Join(dir, "access.yaml")
	if err := os.WriteFile(cfg.Access, []byte("principals:\n  - {name: jane.dpo, roles: [dpo], tokenSHA256: "+hash+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)
	base := m.HTTP.URL()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values, header http.Header) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	resp := post("/ui/sign-in", url.Values{"token": {token}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %d", resp.StatusCode)
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].Path != "/ui/" || cookies[0].Secure {
		t.Errorf("session cookie over plain HTTP: %+v, want HttpOnly, SameSite=Strict, Path=/ui/, not Secure", cookies)
	}
	get, err := c.Get(base + "/ui/person")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(get.Body)
	get.Body.Close()
	if csp := get.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP = %q", csp)
	}
	if strings.Contains(string(body), "<script") || strings.Contains(string(body), "style=") {
		t.Errorf("inline script or style in the page")
	}
	_, rest, _ := strings.Cut(string(body), `name="csrf" value="`)
	csrfToken, _, _ := strings.Cut(rest, `"`)
	if len(csrfToken) < 40 {
		t.Fatalf("no CSRF token in the form")
	}
	search := url.Values{"scheme": {"dbs-ref"}, "id": {secretID}, "reason": {"test"}}
	answered := http.StatusOK
	if m.HTTP.Consult == nil {
		answered = http.StatusServiceUnavailable // no consultation log: refused, after the checks below
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		header http.Header
		want   int
	}{
		{"no CSRF token", search, nil, http.StatusForbidden},
		{"wrong CSRF token", withField(search, "csrf", other(csrfToken)), nil, http.StatusForbidden},
		{"from another site", withField(search, "csrf", csrfToken), http.Header{"Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"from another origin", withField(search, "csrf", csrfToken), http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"the console's own form", withField(search, "csrf", csrfToken), http.Header{"Sec-Fetch-Site": {"same-origin"}}, answered},
	} {
		if got := post("/ui/person", tc.form, tc.header).StatusCode; got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := post("/ui/sign-out", url.Values{"csrf": {csrfToken}}, nil).StatusCode; got != http.StatusSeeOther {
		t.Errorf("sign out: %d", got)
	}
	if got := post("/ui/person", withField(search, "csrf", csrfToken), nil); got.StatusCode != http.StatusSeeOther || got.Header.Get("Location") != "/ui/sign-in" {
		t.Errorf("after signing out: %d %s, want a redirect to sign in", got.StatusCode, got.Header.Get("Location"))
	}
	if strings.Contains(m.logs.String(), secretID) {
		t.Errorf("the identifier is in the server's log")
	}
}

func withField(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for kk, vv := range v {
		out[kk] = vv
	}
	out.Set(k, val)
	return out
}

// TestConsoleOIDC signs in to the console through a local OpenID Connect
// provider (mockoidc): the roles come from the groups claim; an account
// without a sharelog role is refused; a callback this browser did not start
// is refused.
func TestConsoleOIDC(t *testing.T) {
	chromiumPath(t)
	axe := axeSource(t)
	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Shutdown() })
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.OIDC = filepath.Join(dir, "oidc.yaml")
	ic := idp.Config()
	if err := os.WriteFile(cfg.OIDC, []byte(fmt.Sprintf("issuer: %s\nclientID: %s\nclientSecret: %s\nscopes: [openid, email, profile, groups]\nrolesClaim: groups\n",
		ic.Issuer, ic.ClientID, ic.ClientSecret)), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMain(t, cfg)

	idp.QueueUser(&mockoidc.MockUser{Subject: "u-1", Email: "jane@example.org", EmailVerified: true, Groups: []string{"staff", "dpo"}})
	b := newTestBrowser(t, m.HTTP.URL(), axe)
	b.open("/ui/requests")
	if h := b.h1(); h != "Sign in" {
		t.Fatalf("signed out: %q, want the sign-in page", h)
	}
	if txt := b.text(); strings.Contains(txt, "Access token") || strings.Contains(txt, "Nobody is authenticated") {
		t.Errorf("with --oidc only, the sign-in page offers a token or says nobody is authenticated:\n%s", txt)
	}
	b.check("sign-in-oidc")
	b.clickAndWait(`a[href="/ui/oidc/login"]`, "You are signed in")
	b.check("signed-in")
	b.clickAndWait(`a[href="/ui/"]`, "What do you want to do?")
	if txt := b.text(); !strings.Contains(txt, "Signed in as jane@example.org") || !strings.Contains(txt, "Find a person") {
		t.Errorf("after signing in through the provider:\n%s", txt)
	}

	idp.QueueUser(&mockoidc.MockUser{Subject: "u-2", Email: "bob@example.org", EmailVerified: true, Groups: []string{"staff"}})
	b = newTestBrowser(t, m.HTTP.URL(), axe)
	b.open("/ui/sign-in")
	b.clickAndWait(`a[href="/ui/oidc/login"]`, "Forbidden")
	if txt := b.text(); !strings.Contains(txt, `bob@example.org`) || !strings.Contains(txt, "no sharelog role") {
		t.Errorf("an account without a role:\n%s", txt)
	}
	b.open("/ui/")
	if h := b.h1(); h != "Sign in" {
		t.Errorf("after a refused sign-in, /ui/ shows %q, want the sign-in page", h)
	}

	resp, err := http.Get(m.HTTP.URL() + "/ui/oidc/callback?state=forged&code=x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a callback this browser did not start: %d, want 400", resp.StatusCode)
	}
}

// other returns tok with its first character changed.
func other(tok string) string {
	if tok[0] == 'x' {
		return "y" + tok[1:]
	}
	return "x" + tok[1:]
}
