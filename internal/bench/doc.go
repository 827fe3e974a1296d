// Package bench measures sharelog against the raw limits of its own stack,
// side by side in one run on identical events: raw JetStream async publish
// to a stream configured like SHARELOG_IN, the raw Badger write set of the
// ledger in ingest-sized batches, and the full ingest path of a running
// sharelog, counted when each event is committed and queryable; then query
// latency on the ledger that built, publish-to-queryable latency at half the
// measured rate, bytes on disk per event and memory.
//
// `sharelog bench` runs it and prints a table and a JSON file; a smoke mode
// runs in CI to show the benchmark works (it asserts nothing about speed).
package bench
