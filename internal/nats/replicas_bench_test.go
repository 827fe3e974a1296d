package nats_test

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/clustertest"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// BenchmarkPublishReplicas is the extra cost of replication: sharelog's
// Publisher stores batches of 100 disclosure-sized events in a stream
// configured as SHARELOG_IN, at one replica and at three, on the same
// in-process three-node cluster, R1 and R3 alternating, three rounds. An op is one
// batch, acknowledged by JetStream. It reports events a second and the CPU
// time of the whole process (the three servers and the client) per event.
// async publishes each event on its own (as producers over NATS and the
// consultation log do); atomic stores each batch all or nothing (as POST
// /v1/events does). sync runs the nodes with sync_interval always, as
// deploy/nats-cluster/nats.conf does.
//
//	go test -run '^$' -bench BenchmarkPublishReplicas -benchtime 100x ./internal/nats/
func BenchmarkPublishReplicas(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run("sync="+strconv.FormatBool(sync), func(b *testing.B) {
			c := clustertest.StartFrom(b, 3, func(int) *server.Options { return &server.Options{SyncAlways: sync} })
			_, js := c.Connect()
			ctx := context.Background()
			for _, r := range []int{1, 3} {
				_, err := js.CreateStream(ctx, jetstream.StreamConfig{
					Name: "BENCH_R" + strconv.Itoa(r), Subjects: []string{"bench.r" + strconv.Itoa(r)},
					Storage: jetstream.FileStorage, Replicas: r, Duplicates: 2 * time.Minute, AllowAtomicPublish: true,
				})
				if err != nil {
					b.Fatal(err)
				}
				c.WaitStream(js, "BENCH_R"+strconv.Itoa(r), r)
			}
			raw := make([]byte, 600) // about a disclosure event's size
			for i := range raw {
				raw[i] = 'x'
			}
			n := 0
			for round := range 3 {
				for _, atomic := range []bool{false, true} {
					p := nats.NewPublisher(js, atomic)
					for _, r := range []int{1, 3} {
						name := fmt.Sprintf("atomic=%v/R%d/round=%d", atomic, r, round+1)
						b.Run(name, func(b *testing.B) {
							cpu0 := cpuTime(b)
							start := time.Now()
							for b.Loop() {
								events := make([]*ledger.Event, 100)
								for i := range events {
									n++
									events[i] = &ledger.Event{Source: "bench", ID: strconv.Itoa(n), Raw: raw}
								}
								acks, err := p.Publish(ctx, "bench.r"+strconv.Itoa(r), events)
								if err != nil || len(acks) != len(events) {
									b.Fatalf("%d acks: %v", len(acks), err)
								}
							}
							events := float64(b.N * 100)
							b.ReportMetric(events/time.Since(start).Seconds(), "events/s")
							b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/events, "cpu-µs/event")
						})
					}
				}
			}
		})
	}
}

// cpuTime returns the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
