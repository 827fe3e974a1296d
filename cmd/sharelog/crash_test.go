package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/clustertest"
	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(clustertest.FreePort(t)))
}

// process is `sharelog serve` running as a real child process.
type process struct {
	cmd      *exec.Cmd
	httpURL  string
	natsURL  string
	stderr   string
	finished chan error
}

func startProcess(t *testing.T, bin, dir, httpAddr, natsAddr string, n int) *process {
	t.Helper()
	stderr := filepath.Join(t.TempDir(), fmt.Sprintf("serve-%d.log", n))
	f, err := os.Create(stderr)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--data", dir, "--http", httpAddr, "--nats-listen", natsAddr)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, httpURL: "http://" + httpAddr, natsURL: "nats://" + natsAddr, stderr: stderr, finished: make(chan error, 1)}
	go func() { p.finished <- cmd.Wait(); f.Close() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	checkFor(t, 60*time.Second, func() error {
		select {
		case err := <-p.finished:
			p.finished <- err
			log, _ := os.ReadFile(stderr)
			t.Fatalf("serve exited: %v\n%s", err, log)
		default:
		}
		resp, err := http.Get(p.httpURL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	return p
}

var entriesMetric = regexp.MustCompile(`(?m)^sharelog_ledger_entries (\S+)$`)

func ledgerEntries(url string) int {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := entriesMetric.FindSubmatch(b)
	if m == nil {
		return 0
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return int(f)
}

// TestKillMidIngest builds the real binary, publishes a stream of disclosures
// over NATS, kills serve with SIGKILL while it is applying them, restarts it,
// and checks that every event JetStream acknowledged is in the ledger exactly
// once. It ends with a SIGTERM, which must shut down cleanly.
func TestKillMidIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "sharelog")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	p := startProcess(t, bin, dir, httpAddr, natsAddr, 1)
	client := slhttp.NewClient(p.httpURL)
	rec := mustJSON(t, map[string]any{
		"specversion": "1.0", "id": "recipient-crash", "source": "admin", "type": ledger.TypeRecipient,
		"time": "2026-01-01T00:00:00Z", "datacontenttype": "application/json",
		"data": map[string]any{"id": "crash", "name": "Crash Test Force", "role": "competent-authority", "channel": map[string]any{"type": "nats"}},
	})
	if _, err := client.Publish(context.Background(), []byte("["+string(rec)+"]")); err != nil {
		t.Fatal(err)
	}

	nc, err := natsio.Connect(p.natsURL, natsio.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2000))
	if err != nil {
		t.Fatal(err)
	}
	const total = 60000
	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for i := 0; i < total; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("k-%06d", i)
			ev := disclosure("crash-test", id, []ledger.Subject{{Scheme: "dbs-ref", ID: fmt.Sprintf("P%04d", i%500)}}, "crash", []string{"user.criminal_history"}, at.Add(time.Duration(i)*time.Second))
			f, err := js.PublishAsync("sharelog.in.crash", mustJSON(t, ev))
			if err != nil {
				return
			}
			go func() {
				select {
				case <-f.Ok():
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				case <-f.Err():
				}
			}()
		}
	}()

	// Kill once ingest is well under way.
	checkFor(t, 60*time.Second, func() error {
		if n := ledgerEntries(p.httpURL); n < 5000 {
			return fmt.Errorf("ledger at %d entries", n)
		}
		return nil
	})
	atKill := ledgerEntries(p.httpURL)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.finished
	close(stop)
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // let ack goroutines see the closed connection
	mu.Lock()
	nAcked := len(acked)
	mu.Unlock()
	t.Logf("killed with %d entries applied and %d events acknowledged by JetStream", atKill, nAcked)
	if nAcked == 0 {
		t.Fatal("no event was acknowledged")
	}

	p2 := startProcess(t, bin, dir, httpAddr, natsAddr, 2)
	client = slhttp.NewClient(p2.httpURL)
	var ids map[string]int
	checkFor(t, 60*time.Second, func() error {
		ids = map[string]int{}
		f := ledger.DisclosureFilter{Recipient: "crash", Limit: ledger.MaxLimit}
		for {
			page, err := client.Disclosures(context.Background(), f)
			if err != nil {
				return err
			}
			for _, d := range page.Disclosures {
				ids[d.ID]++
			}
			if page.Next == "" {
				break
			}
			f.After = page.Next
		}
		if len(ids) < nAcked {
			return fmt.Errorf("%d distinct disclosures, %d acknowledged", len(ids), nAcked)
		}
		return nil
	})
	mu.Lock()
	for id := range acked {
		if ids[id] != 1 {
			t.Errorf("acknowledged event %s recorded %d times, want 1", id, ids[id])
		}
	}
	mu.Unlock()
	for id, n := range ids {
		if n != 1 {
			t.Errorf("event %s recorded %d times", id, n)
		}
	}
	t.Logf("after restart: %d distinct disclosures (%d acknowledged before the kill)", len(ids), nAcked)

	// SIGTERM: a clean shutdown with exit status 0.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p2.finished:
		if err != nil {
			log, _ := os.ReadFile(p2.stderr)
			t.Errorf("after SIGTERM: %v\n%s", err, log)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of SIGTERM")
	}
}
