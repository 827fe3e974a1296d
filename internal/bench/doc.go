// Package bench measures sharelog against the raw limits of its own stack,
// on identical events: raw JetStream async publish to a stream configured
// like SHARELOG_IN, the raw Badger write set of the ledger in ingest-sized
// batches, and the full ingest path of a running sharelog, counted when
// each event is committed and queryable; then query latency on the ledger
// that built, publish-to-queryable latency at half the measured rate,
// bytes on disk per event and memory. Every phase keeps its stores
// encrypted at rest, as serve does, unless Config.Unencrypted keeps them
// all in clear.
//
// Those are three phases (PhaseRawJetStream, PhaseRawBadger, PhaseFull; the
// queries and latency belong to the full one, on its ledger). Run runs a
// chosen set of them through a Runner: ChildProcess runs each in a new
// process, so each phase's RSS samples and peak are its own, and InProcess
// runs them one after another in the calling process. RunPhase is what a
// child runs.
//
// `sharelog bench` runs it and prints a table and a JSON file; a smoke mode
// runs in CI to show the benchmark works (it asserts nothing about speed).
package bench
