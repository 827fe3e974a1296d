package main

import "fmt"

// maxStreamReplicas is the most replicas JetStream gives a stream.
const maxStreamReplicas = 5

// checkStreamReplicas refuses a --stream-replicas that cannot be had: out of
// JetStream's 1 to 5, or above 1 without --nats (the embedded NATS server is
// one server, so it keeps one copy).
func (c Config) checkStreamReplicas() error {
	switch n := c.StreamReplicas; {
	case n < 0 || n > maxStreamReplicas:
		return fmt.Errorf("--stream-replicas %d: JetStream keeps 1 to %d copies of a stream", n, maxStreamReplicas)
	case n > 1 && c.NATS == "":
		return fmt.Errorf("--stream-replicas %d needs --nats, the URLs of a NATS cluster with at least %d JetStream servers: the embedded NATS server is one server and keeps one copy", n, n)
	}
	return nil
}

// streamReplicas is the replication of sharelog's streams (SHARELOG_IN,
// SHARELOG_REJECTED, SHARELOG_NOTICES) and buckets (SHARELOG_CHECKPOINTS,
// and those other components add): --stream-replicas, 1 when unset.
// Whatever else sharelog keeps in JetStream is created with it too.
func (c Config) streamReplicas() int {
	return max(c.StreamReplicas, 1)
}
