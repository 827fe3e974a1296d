package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestServeBusyPort: serve fails at once, naming the address and the cause,
// when the NATS or the HTTP port is taken.
func TestServeBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	tests := []struct {
		name string
		flag string
		want string
	}{
		{"nats", "--nats-listen", "embedded nats server on " + addr + " (--nats-listen): Error listening on port"},
		{"http", "--http", "http listen \"" + addr + "\" (--http)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"serve", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0", tc.flag, addr}
			var out, errb bytes.Buffer
			start := time.Now()
			err := run(context.Background(), args, &out, &errb)
			took := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("serve %s %s: %v, want an error with %q and the cause\n%s", tc.flag, addr, err, tc.want, errb.String())
			}
			if took > 5*time.Second {
				t.Errorf("serve took %v to report the busy port", took)
			}
			t.Logf("%v in %v", err, took.Round(time.Millisecond))
		})
	}
}
