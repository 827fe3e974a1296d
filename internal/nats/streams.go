package nats

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Stream names and subjects of the public contract (DESIGN.md).
const (
	StreamIn      = "SHARELOG_IN"
	SubjectIn     = "sharelog.in.>"
	SubjectInHTTP = "sharelog.in.http"
	// SubjectInNotify is where sharelog records its own notice deliveries.
	// Deny producers publish permission on it.
	SubjectInNotify = "sharelog.in.notify"
	// SubjectInService is where the NATS service (service.go) stores the
	// events it accepts.
	SubjectInService = "sharelog.in.service"
	StreamRejected   = "SHARELOG_REJECTED"
	// SubjectRejectedPrefix is followed by a ledger.Reason and a source
	// token: see RejectedSubject.
	SubjectRejectedPrefix = "sharelog.rejected."
	// SourceUnknown is the source token of a rejection whose source could
	// not be read, or may hold a data-subject identifier (the event was
	// refused for an identifier in its attributes or headers). No source
	// encodes to it.
	SourceUnknown = "~"
)

// maxSourceToken bounds a source token; a longer one is filed under
// SourceUnknown.
const maxSourceToken = 256

// RejectedSubject returns the subject a refused message is filed under in
// SHARELOG_REJECTED: sharelog.rejected.<reason>.<source token>. A consumer
// takes every rejection for one reason with sharelog.rejected.<reason>.>,
// and a producer its own with sharelog.rejected.*.<SourceToken(its source)>.
func RejectedSubject(reason ledger.Reason, source string) string {
	return SubjectRejectedPrefix + string(reason) + "." + SourceToken(source)
}

// SourceToken encodes a CloudEvents source as one NATS subject token, one
// to one: letters, digits, "-" and "_" stay as they are, and every other
// byte becomes %XX, as url.QueryEscape writes it, with "." and "~" escaped
// too and a space as %20 ("/systems/case-management" becomes
// "%2Fsystems%2Fcase-management"). An empty source, or one whose token
// would be longer than 256 bytes, gives SourceUnknown.
func SourceToken(source string) string {
	if source == "" {
		return SourceUnknown
	}
	t := strings.NewReplacer(".", "%2E", "~", "%7E", "+", "%20").Replace(url.QueryEscape(source))
	if len(t) > maxSourceToken {
		return SourceUnknown
	}
	return t
}

// Headers sharelog sets on messages it republishes to SHARELOG_REJECTED.
// None carries personal data: the detail is written without identifiers.
const (
	HeaderReason    = "Sharelog-Reason"
	HeaderDetail    = "Sharelog-Detail"
	HeaderStreamSeq = "Sharelog-Stream-Seq"
	HeaderSubject   = "Sharelog-Subject"
)

// StreamConfig tunes the streams sharelog creates.
type StreamConfig struct {
	// Duplicates is JetStream's Nats-Msg-Id window on SHARELOG_IN (default
	// 10s). sharelog dedupes on (source, id) forever regardless; the window
	// only saves work, and each message in it is an object in the heap
	// that the garbage collector marks on every cycle: at 20,000 events/s
	// a window of 30s held 600,000.
	// SHARELOG_REJECTED keeps its own, RejectedDuplicates.
	Duplicates time.Duration
	// Replicas of each stream on a NATS cluster (default 1; --stream-replicas).
	// An existing stream is moved to it.
	Replicas int
	// RejectedMaxAge is how long SHARELOG_REJECTED keeps a refused message
	// (default DefaultRejectedMaxAge): a refused event may name a person,
	// and nothing in the ledger answers for it.
	RejectedMaxAge time.Duration
}

// DefaultRejectedMaxAge is SHARELOG_REJECTED's default MaxAge: 30 days.
const DefaultRejectedMaxAge = 720 * time.Hour

// RejectedDuplicates is SHARELOG_REJECTED's Nats-Msg-Id window: a batch
// replayed after a crash files its rejections again under the same ids, and
// the window drops them if the restart took less. Refusals are rare, so a
// long window costs little memory.
const RejectedDuplicates = 2 * time.Minute

// EnsureStreams creates SHARELOG_IN and SHARELOG_REJECTED, or updates them to
// the configuration sharelog needs. Safe to call from every start. It reports
// whether SHARELOG_IN takes atomic batches (NATS Server 2.12 and later).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (atomic bool, err error) {
	if cfg.Duplicates == 0 {
		cfg.Duplicates = 10 * time.Second
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.RejectedMaxAge <= 0 {
		cfg.RejectedMaxAge = DefaultRejectedMaxAge
	}
	streams := []jetstream.StreamConfig{{
		Name:        StreamIn,
		Description: "sharelog input: every event, in ledger order",
		Subjects:    []string{SubjectIn},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  cfg.Duplicates,
		Replicas:    cfg.Replicas,
		Discard:     jetstream.DiscardOld,
		// Atomic batches let the HTTP API and sharelog publish store a
		// batch all or nothing with one acknowledgement and one sync.
		AllowAtomicPublish: true,
	}, {
		Name:        StreamRejected,
		Description: "sharelog input that was refused: original bytes, with the reason",
		Subjects:    []string{SubjectRejectedPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      cfg.RejectedMaxAge,
		Duplicates:  RejectedDuplicates,
		Replicas:    cfg.Replicas,
	}}
	for _, sc := range streams {
		s, err := ensureStream(ctx, js, sc)
		if err != nil {
			return false, err
		}
		if sc.Name == StreamIn {
			atomic = s.CachedInfo().Config.AllowAtomicPublish
		}
	}
	return atomic, nil
}

// LastSeq returns the last sequence stored in SHARELOG_IN.
func LastSeq(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := inState(ctx, js)
	return st.LastSeq, err
}

// FirstSeq returns the first sequence SHARELOG_IN holds; for an empty stream,
// the one after its last.
func FirstSeq(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := inState(ctx, js)
	return st.FirstSeq, err
}

// inState returns SHARELOG_IN's state.
func inState(ctx context.Context, js jetstream.JetStream) (jetstream.StreamState, error) {
	s, err := js.Stream(ctx, StreamIn)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("stream %s: %w", StreamIn, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return jetstream.StreamState{}, fmt.Errorf("stream %s: %w", StreamIn, err)
	}
	return info.State, nil
}
