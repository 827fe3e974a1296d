package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// Error codes of the NATS server that say a stream cannot have the
// replicas asked for: a server outside a cluster
// (JSStreamReplicasNotSupportedErr), or a cluster with fewer JetStream
// servers able to hold it (JSClusterNoPeersErr, JSInsufficientResourcesErr).
var replicasUnavailable = []jetstream.ErrorCode{10074, 10005, 10023}

// ReplicasError explains err, the failure to create or update what (a
// stream or bucket) at want replicas when it had have (0: it did not
// exist): a change of replicas, or replicas the NATS deployment cannot give,
// is named with the flag that asks for them, --stream-replicas. Other
// errors are returned wrapped with what.
func ReplicasError(what string, have, want int, err error) error {
	if err == nil {
		return nil
	}
	var apiErr *jetstream.APIError
	unavailable := errors.As(err, &apiErr) && slices.Contains(replicasUnavailable, apiErr.ErrorCode)
	switch {
	case unavailable:
		return fmt.Errorf("%s at %d replicas (--stream-replicas %d): %w: the NATS deployment needs at least %d JetStream servers in one cluster (the embedded server is one; use --nats)", what, want, want, err, want)
	case have != 0 && have != want:
		return fmt.Errorf("%s: changing its replicas from %d to %d (--stream-replicas %d): %w", what, have, want, want, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ensureStream creates the stream sc, or updates it to sc, and explains a
// failure with ReplicasError. JetStream moves an existing stream to the
// replicas sc asks for.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) (jetstream.Stream, error) {
	have := 0
	if s, err := js.Stream(ctx, sc.Name); err == nil {
		have = s.CachedInfo().Config.Replicas
	}
	s, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return nil, ReplicasError("stream "+sc.Name, have, sc.Replicas, err)
	}
	return s, nil
}

// EnsureStream creates the stream sc, or updates it to sc (its replicas
// among the rest), for sharelog's streams outside this package.
func EnsureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) error {
	_, err := ensureStream(ctx, js, sc)
	return err
}
