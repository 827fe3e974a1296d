package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
	"github.com/sharelog/sharelog/internal/store"
)

// Source is the CloudEvents source of the forgettings the job publishes.
const Source = "sharelog/retention"

// Store is what the job needs of the ledger; *store.Store implements it.
type Store interface {
	ForgetCandidates(ctx context.Context, now time.Time, p ledger.ForgetPolicy) ([]ledger.ForgetCandidate, error)
	WaitApplied(ctx context.Context, streamSeq uint64) error
	PendingScrubs(ctx context.Context) ([]store.Scrub, error)
	ScrubDone(seq uint64) error
	Compact(ctx context.Context) (store.CompactStats, error)
}

// Publisher puts events on SHARELOG_IN; *nats.Publisher implements it.
type Publisher interface {
	Publish(ctx context.Context, subject string, events []*ledger.Event) ([]nats.Ack, error)
}

// Config configures a Job.
type Config struct {
	Policy ledger.ForgetPolicy
	// Every is the time between rounds in Run (default one hour): the bound
	// on the time from a subject becoming forgettable to its physical
	// erasure, plus the round's duration.
	Every time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// NoticeStream is the stream of nats-channel notices to scrub (default
	// SHARELOG_NOTICES); notice messages carry the notice id as
	// Nats-Msg-Id.
	NoticeStream string
	// Leader, if set, says whether this replica is the one that does the
	// side effects (package cluster): a round publishes forgettings and
	// scrubs JetStream only while it is true. Every replica compacts its
	// own ledger (localRound). Nil: always the leader.
	Leader func() bool
}

// Job is the forgetting job.
type Job struct {
	st  Store
	pub Publisher
	js  jetstream.JetStream
	cfg Config
	log *slog.Logger
	// compacted is the newest forgetting whose scrub a round compacted
	// the ledger for while not the leader (localRound).
	compacted uint64
}

// New returns a Job. js may be nil, which skips the JetStream scrub (a
// ledger without streams, as in tests of the store alone).
func New(st Store, pub Publisher, js jetstream.JetStream, cfg Config, logger *slog.Logger) *Job {
	if cfg.Every <= 0 {
		cfg.Every = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NoticeStream == "" {
		cfg.NoticeStream = "SHARELOG_NOTICES"
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Job{st: st, pub: pub, js: js, cfg: cfg, log: logger.With("system", "retention")}
}

// Report says what a round did. Subjects appear only as keyed hashes.
type Report struct {
	// Forgotten are the subjects the ledger forgot in this round.
	Forgotten []ledger.ForgetCandidate `json:"forgotten"`
	// Held are the candidates legal holds kept, with the holds.
	Held []ledger.ForgetCandidate `json:"held"`
	// Refused are candidates the ledger refused to forget when the job
	// asked (a hold placed in between, say); they come back next round.
	Refused []ledger.ForgetCandidate `json:"refused"`
	// ScrubbedMessages and ScrubbedNotices count the SHARELOG_IN and
	// SHARELOG_NOTICES messages overwritten.
	ScrubbedMessages int `json:"scrubbedMessages"`
	ScrubbedNotices  int `json:"scrubbedNotices"`
	// ScrubbedRejected counts the SHARELOG_REJECTED messages overwritten:
	// refused messages that named a forgotten subject.
	ScrubbedRejected int `json:"scrubbedRejected"`
	// Compacted says whether the ledger was compacted, and how long it took.
	Compacted   bool          `json:"compacted"`
	CompactTook time.Duration `json:"compactTook"`
}

// Run runs a round now and then every Config.Every until ctx ends, and then
// returns nil. A failed round is logged and retried at the next; Run has no
// fatal error.
func (j *Job) Run(ctx context.Context) error {
	t := time.NewTicker(j.cfg.Every)
	defer t.Stop()
	for {
		if _, err := j.Round(ctx); err != nil && ctx.Err() == nil {
			j.log.Error("retention round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Round forgets every candidate no hold covers, scrubs JetStream of what
// they left there, compacts the ledger, and reports (and logs) it.
//
// On a replica that is not the leader (Config.Leader) a round is a
// localRound. A round begun as leader runs to its end: what it publishes
// and scrubs is idempotent (forgettings have deterministic ids; a scrubbed
// message is not found again), so a new leader doing it again is harmless.
func (j *Job) Round(ctx context.Context) (*Report, error) {
	rep := &Report{Forgotten: []ledger.ForgetCandidate{}, Held: []ledger.ForgetCandidate{}, Refused: []ledger.ForgetCandidate{}}
	if j.cfg.Leader != nil && !j.cfg.Leader() {
		return j.localRound(ctx, rep)
	}
	now := j.cfg.Now().UTC()
	cands, err := j.st.ForgetCandidates(ctx, now, j.cfg.Policy)
	if err != nil {
		return nil, err
	}
	var events []*ledger.Event
	var asked []ledger.ForgetCandidate
	for _, c := range cands {
		if len(c.HeldBy) > 0 {
			rep.Held = append(rep.Held, c)
			j.log.Info("forgetting held", "subject", c.SubjectHash, "reason", c.Reason, "holds", strings.Join(c.HeldBy, ","))
			continue
		}
		ev, err := Event(c, now)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
		asked = append(asked, c)
	}
	if len(events) > 0 {
		acks, err := j.pub.Publish(ctx, nats.SubjectInNotify, events)
		if err != nil {
			return nil, fmt.Errorf("retention: publish forgettings: %w", err)
		}
		if err := j.st.WaitApplied(ctx, acks[len(acks)-1].Seq); err != nil {
			return nil, fmt.Errorf("retention: wait for the ledger: %w", err)
		}
		// A candidate the ledger forgot is no longer one.
		after, err := j.st.ForgetCandidates(ctx, now, j.cfg.Policy)
		if err != nil {
			return nil, err
		}
		still := map[string]bool{}
		for _, c := range after {
			still[c.SubjectHash] = true
		}
		for _, c := range asked {
			if still[c.SubjectHash] {
				rep.Refused = append(rep.Refused, c)
				j.log.Warn("ledger refused to forget", "subject", c.SubjectHash, "reason", c.Reason)
				continue
			}
			rep.Forgotten = append(rep.Forgotten, c)
			j.log.Info("subject forgotten", "subject", c.SubjectHash, "reason", c.Reason, "request", c.Request, "purpose", c.Purpose, "regime", c.Regime)
		}
	}
	scrubs, err := j.st.PendingScrubs(ctx)
	if err != nil {
		return nil, err
	}
	if len(scrubs) > 0 {
		if err := j.scrub(ctx, scrubs, rep); err != nil {
			return nil, err
		}
		st, err := j.st.Compact(ctx)
		if err != nil {
			return nil, err
		}
		rep.Compacted, rep.CompactTook = true, st.Took
		for _, s := range scrubs {
			if err := j.st.ScrubDone(s.Seq); err != nil {
				return nil, err
			}
		}
	}
	j.log.Info("retention round", "forgotten", len(rep.Forgotten), "held", len(rep.Held), "refused", len(rep.Refused),
		"scrubbedMessages", rep.ScrubbedMessages, "scrubbedNotices", rep.ScrubbedNotices, "scrubbedRejected", rep.ScrubbedRejected, "compacted", rep.Compacted, "compactTook", rep.CompactTook)
	return rep, nil
}

// localRound is the round of a replica that is not the leader. The leader
// forgets and scrubs JetStream; this replica applies the forgettings like
// any event, and compacts its own ledger once after new ones, so that its
// files no longer hold what they made it delete. It keeps the scrub
// records: should it lead, it scrubs again whatever the leader left.
func (j *Job) localRound(ctx context.Context, rep *Report) (*Report, error) {
	scrubs, err := j.st.PendingScrubs(ctx)
	if err != nil {
		return nil, err
	}
	if len(scrubs) == 0 || scrubs[len(scrubs)-1].Seq <= j.compacted {
		return rep, nil
	}
	st, err := j.st.Compact(ctx)
	if err != nil {
		return nil, err
	}
	j.compacted = scrubs[len(scrubs)-1].Seq
	rep.Compacted, rep.CompactTook = true, st.Took
	j.log.Info("retention round, not the leader: ledger compacted", "pendingScrubs", len(scrubs), "compactTook", rep.CompactTook)
	return rep, nil
}

// scrub overwrites the JetStream messages the forgettings name.
func (j *Job) scrub(ctx context.Context, scrubs []store.Scrub, rep *Report) error {
	if j.js == nil {
		return nil
	}
	in, err := j.js.Stream(ctx, nats.StreamIn)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	// A message before the stream's first was purged (serve --stream-keep:
	// the ledger had applied and checkpointed it): it is gone already, and
	// a delete of it fails with a generic error, so the first sequence is
	// read before the deletes, and again after a failed one (a purge may
	// have run meanwhile).
	first, err := firstSeq(ctx, in)
	if err != nil {
		return err
	}
	notices := map[string]bool{}
	for _, s := range scrubs {
		for _, seq := range s.StreamSeqs {
			if seq < first {
				continue
			}
			err := in.SecureDeleteMsg(ctx, seq)
			if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && !isNotFound(err) {
				if first, _ = firstSeq(ctx, in); seq < first {
					continue
				}
			}
			switch {
			case err == nil:
				rep.ScrubbedMessages++
			case errors.Is(err, jetstream.ErrMsgNotFound) || isNotFound(err):
				// Already gone (limits, or an earlier round).
			default:
				return fmt.Errorf("retention: scrub %s message %d: %w", nats.StreamIn, seq, err)
			}
		}
		for _, n := range s.Notices {
			notices[n] = true
		}
	}
	if err := j.scrubRejected(ctx, scrubs, rep); err != nil {
		return err
	}
	if len(notices) == 0 {
		return nil
	}
	ns, err := j.js.Stream(ctx, j.cfg.NoticeStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	info, err := ns.Info(ctx)
	if err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	// Walk the notices stream (bounded by its MaxAge) for the notice ids,
	// which are the messages' Nats-Msg-Id (plus "-r<n>" for reminders).
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := ns.GetMsg(ctx, seq)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) || isNotFound(err) {
				continue
			}
			return fmt.Errorf("retention: read %s message %d: %w", j.cfg.NoticeStream, seq, err)
		}
		id, _, _ := strings.Cut(m.Header.Get("Nats-Msg-Id"), "-r")
		if !notices[id] {
			continue
		}
		if err := ns.SecureDeleteMsg(ctx, seq); err != nil && !isNotFound(err) {
			return fmt.Errorf("retention: scrub %s message %d: %w", j.cfg.NoticeStream, seq, err)
		}
		rep.ScrubbedNotices++
	}
	return nil
}

// firstSeq returns the first sequence the stream s holds.
func firstSeq(ctx context.Context, s jetstream.Stream) (uint64, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("retention: %w", err)
	}
	return info.State.FirstSeq, nil
}

// scrubRejected overwrites the SHARELOG_REJECTED messages the forgettings
// name: refused messages that named the subject.
func (j *Job) scrubRejected(ctx context.Context, scrubs []store.Scrub, rep *Report) error {
	var rejected jetstream.Stream
	for _, s := range scrubs {
		for _, seq := range s.Rejected {
			if rejected == nil {
				var err error
				if rejected, err = j.js.Stream(ctx, nats.StreamRejected); err != nil {
					return fmt.Errorf("retention: %w", err)
				}
			}
			err := rejected.SecureDeleteMsg(ctx, seq)
			switch {
			case err == nil:
				rep.ScrubbedRejected++
			case errors.Is(err, jetstream.ErrMsgNotFound) || isNotFound(err):
				// Already gone (MaxAge, or an earlier round).
			default:
				return fmt.Errorf("retention: scrub %s message %d: %w", nats.StreamRejected, seq, err)
			}
		}
	}
	return nil
}

// errCodeSequenceNotFound is nats-server's JSSequenceNotFoundErrF, which a
// delete of a sequence already deleted returns (jetstream has no constant
// for it): a scrub retried after a failed round meets it.
const errCodeSequenceNotFound jetstream.ErrorCode = 10043

func isNotFound(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeMessageNotFound || apiErr.ErrorCode == errCodeSequenceNotFound)
}

// Event returns the org.sharelog.subject.forgotten.v1 event for c, with the
// deterministic id "forget-<subject hash>".
func Event(c ledger.ForgetCandidate, at time.Time) (*ledger.Event, error) {
	d := &ledger.SubjectForgotten{SubjectHash: c.SubjectHash, Reason: c.Reason, Request: c.Request, Purpose: c.Purpose, Regime: c.Regime, At: at.UTC()}
	id := "forget-" + c.SubjectHash
	raw, err := ledger.MarshalEvent(id, Source, ledger.TypeSubjectForgotten, at.UTC(), d)
	if err != nil {
		return nil, err
	}
	return &ledger.Event{Source: Source, ID: id, Type: ledger.TypeSubjectForgotten, Time: at.UTC(), Data: d, Raw: raw}, nil
}
