package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/bench"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/notify"
)

// getReady returns /readyz's status and body.
func getReady(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// failedLoop returns the loop named at the start of err ("ingest: ...").
func failedLoop(err error) string {
	name, _, _ := strings.Cut(err.Error(), ":")
	return name
}

// TestLoopFailureFailsReadyAndRun deletes SHARELOG_IN under a running
// sharelog, as an operator's `nats stream rm` would: the ingest loop cannot go
// on without skipping input, so it fails; /readyz then answers 503 naming the
// loop, and Main.Run returns the cause.
func TestLoopFailureFailsReadyAndRun(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	// Ready once the ingest loop consumes, which may be just after Open.
	checkFor(t, 10*time.Second, func() error {
		if code, body := getReady(t, m.HTTP.URL()); code != http.StatusOK {
			return fmt.Errorf("readyz before = %d %s, want 200", code, body)
		}
		return nil
	})
	_, js := m.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, nats.StreamIn); err != nil {
		t.Fatal(err)
	}

	err := m.Run(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Run = %v (ctx %v), want the loop's error\n%s", err, ctx.Err(), m.logs)
	}
	// The ingest loop sees the stream go; the notice dispatcher would too if
	// it were still catching up. Either way the cause is the deleted stream.
	loop := failedLoop(err)
	if loop != loopIngest && loop != loopNotify {
		t.Errorf("Run = %q, want an error from the ingest or notify loop", err)
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) || !strings.Contains(err.Error(), nats.StreamIn) {
		t.Errorf("Run = %q, want stream %s not found", err, nats.StreamIn)
	}
	code, body := getReady(t, m.HTTP.URL())
	if code != http.StatusServiceUnavailable || !strings.Contains(body, loop+" failed") {
		t.Errorf("readyz after = %d %s, want 503 naming %q", code, body, loop+" failed")
	}
	if strings.Contains(body, "not found") {
		t.Errorf("readyz body %s gives the error's text; want the loop's name only", body)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
}

// TestServeExitsWhenALoopFails runs `sharelog serve` as a process (this
// test binary standing in for it, see TestMain), deletes SHARELOG_IN under it,
// and wants it to exit with status 1 and the cause on stderr.
func TestServeExitsWhenALoopFails(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	stderr := &syncBuffer{}
	cmd := exec.Command(exe, "serve", "--data", t.TempDir(), "--http", httpAddr, "--nats-listen", natsAddr, "--log-level", "info")
	cmd.Env = append(os.Environ(), bench.ChildEnv+"=1")
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	base := "http://" + httpAddr
	checkFor(t, 60*time.Second, func() error {
		select {
		case err := <-exited:
			t.Fatalf("serve exited early: %v\n%s", err, stderr)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})

	nc, err := natsio.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, nats.StreamIn); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("serve exited with %v, want exit status 1\n%s", err, stderr)
		}
	case <-ctx.Done():
		t.Fatalf("serve still running 30s after its stream was deleted\n%s", stderr)
	}
	out := stderr.String()
	last := out[strings.LastIndex(strings.TrimRight(out, "\n"), "\n")+1:]
	if !strings.HasPrefix(last, "sharelog: ingest: ") && !strings.HasPrefix(last, "sharelog: notify: ") || !strings.Contains(last, nats.StreamIn) {
		t.Errorf("last line of stderr = %q, want the failed loop and the cause (stream %s)\n%s", last, nats.StreamIn, out)
	}
	t.Logf("serve: %s", last)
}

// TestNoticesStreamDeletedFailsReady: with SHARELOG_NOTICES deleted under
// a running sharelog, a notice due on the NATS channel finds no stream;
// /readyz says so (503) instead of ready, and the notice stays pending.
func TestNoticesStreamDeletedFailsReady(t *testing.T) {
	m := startMain(t, testConfig(t.TempDir()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := ledger.Subject{Scheme: "dbs-ref", ID: "NS-1"}
	publishAll(t, m,
		recipientEvent("police", map[string]any{"type": "nats"}),
		ukDisclosure("d-1", p, "police", []string{"user.contact.address"}, time.Date(2025, 1, 2, 9, 0, 0, 0, time.UTC)),
	)
	checkFor(t, 10*time.Second, func() error {
		if code, body := getReady(t, m.HTTP.URL()); code != http.StatusOK {
			return fmt.Errorf("readyz before = %d %s, want 200", code, body)
		}
		return nil
	})
	_, js := m.connect(t)
	if err := js.DeleteStream(ctx, notify.StreamNotices); err != nil {
		t.Fatal(err)
	}
	publishAll(t, m, ce("dpo", "erase-1", ledger.TypeErasure, map[string]any{
		"request": "E-1", "subject": p, "ground": "art17-1-a", "decidedAt": "2025-02-02T10:00:00Z",
	}))
	m.Notifier.Wake()
	checkFor(t, 20*time.Second, func() error {
		code, body := getReady(t, m.HTTP.URL())
		if code != http.StatusServiceUnavailable || !strings.Contains(body, notify.StreamNotices) {
			return fmt.Errorf("readyz after the stream went = %d %s, want 503 naming %s", code, body, notify.StreamNotices)
		}
		return nil
	})
	st, err := m.Store.Status(ctx, "E-1")
	if err != nil || len(st.Obligations) != 1 || st.Obligations[0].State != ledger.StatePending {
		t.Fatalf("status E-1 = %+v, %v; want its one notice still pending", st, err)
	}
}
