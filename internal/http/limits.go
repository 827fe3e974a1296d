package http

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"
	"golang.org/x/time/rate"

	"github.com/sharelog/sharelog/internal/ledger"
)

// Limits bounds what clients can make the server spend. A zero field means
// its default. The number of events in one batch is bounded by the
// decoder (cloudevents.Decoder.MaxBatchEvents), and the time to read a
// request's headers by the server (10s).
type Limits struct {
	// MaxConns is the most connections served at once
	// (netutil.LimitListener): further ones wait to be accepted until one
	// closes. Default DefaultMaxConns.
	MaxConns int
	// ReadTimeout bounds the time to read one request, headers and body
	// (http.Server.ReadTimeout): a body still arriving then is refused and
	// its connection closed, so that slow bodies cannot hold connections.
	// Default DefaultReadTimeout.
	ReadTimeout time.Duration
	// LookupRate is how many lookups (requests that read a person's data,
	// lookupRoutes) each principal may make per second, on average; each
	// principal has its own token bucket, and requests without a principal
	// one per remote address. LookupBurst is the bucket's size: how many
	// lookups may come at once. Defaults DefaultLookupRate and
	// DefaultLookupBurst; a negative LookupRate turns the limit off.
	LookupRate  float64
	LookupBurst int
}

// Defaults of Limits.
const (
	DefaultMaxConns    = 1024
	DefaultReadTimeout = 30 * time.Second
	DefaultLookupRate  = 5
	DefaultLookupBurst = 50
)

// maxStreams bounds the requests served at once on one HTTP/2 connection
// (with TLS), so that Limits.MaxConns bounds requests too.
const maxStreams = 32

// listen listens on s.Addr with at most MaxConns connections served at once.
func (s *Server) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return nil, fmt.Errorf("http listen %q (--http): %w", s.Addr, err)
	}
	return netutil.LimitListener(ln, cmp.Or(s.Limits.MaxConns, DefaultMaxConns)), nil
}

// readTimeout is s.Limits.ReadTimeout or its default.
func (s *Server) readTimeout() time.Duration {
	return cmp.Or(s.Limits.ReadTimeout, DefaultReadTimeout)
}

// tooMany answers 429 to a lookup over its principal's (or address's)
// rate, with Retry-After; authorize calls it, before the request is
// authorised or recorded as a consultation.
func (l *lookupLimiter) tooMany(w http.ResponseWriter, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeProblem(w, problemFor(ledger.Errorf(ledger.ETOOMANY,
		"too many lookups of people's data: over %g a second; try again in %d s", float64(l.rate), secs)))
}

// lookupLimiter returns the server's lookup limiter, its metric
// registered, or nil when the limit is off. The API (authorize) and the
// console (console.go) take lookups from the same buckets.
func (s *Server) lookupLimiter() *lookupLimiter {
	l := newLookupLimiter(s.Limits, s.Logger)
	if l == nil {
		return nil
	}
	if err := s.Metrics.Registry.Register(l.limited); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			l.limited = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return l
}

// consult returns consult limited by l: a principal over its lookup rate
// is refused (ETOOMANY) before the lookup is recorded or made. The console
// signs its people in itself, so its lookups are limited here, by the
// principal the consultation names.
func (l *lookupLimiter) consult(consult func(context.Context, ledger.Consultation) error) func(context.Context, ledger.Consultation) error {
	if l == nil {
		return consult
	}
	return func(ctx context.Context, c ledger.Consultation) error {
		if wait := l.take(&ledger.Principal{Name: c.Principal}, ""); wait > 0 {
			return ledger.Errorf(ledger.ETOOMANY, "too many lookups of people's data: over %g a second; try again in %d s",
				float64(l.rate), int(math.Ceil(wait.Seconds())))
		}
		return consult(ctx, c)
	}
}

// maxLimiters bounds the token buckets a lookupLimiter keeps for remote
// addresses: past it, buckets that are full (as good as new) are dropped,
// and if none is, new addresses share one bucket.
const maxLimiters = 4096

// lookupLimiter keeps one token bucket per principal (or remote address).
type lookupLimiter struct {
	rate   rate.Limit
	burst  int
	logger *slog.Logger
	// limited is sharelog_lookups_limited_total{principal}: the name of a
	// principal of the access file, or "anonymous", a closed set.
	limited *prometheus.CounterVec

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	*rate.Limiter
	warned time.Time // the last warning logged for this bucket
}

// newLookupLimiter returns nil when lims turns the lookup limit off.
func newLookupLimiter(lims Limits, logger *slog.Logger) *lookupLimiter {
	if lims.LookupRate < 0 {
		return nil
	}
	return &lookupLimiter{
		rate:   rate.Limit(cmp.Or(lims.LookupRate, DefaultLookupRate)),
		burst:  cmp.Or(lims.LookupBurst, DefaultLookupBurst),
		logger: logger,
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sharelog_lookups_limited_total",
			Help: "Lookups of people's data refused (429) because the principal was over its lookup rate, by principal (\"anonymous\" without one).",
		}, []string{"principal"}),
		buckets: map[string]*bucket{},
	}
}

// allow takes a lookup by p (nil: not authenticated) from its bucket, or
// from r's remote address's, and returns 0, or how long until it may look
// up again.
func (l *lookupLimiter) allow(r *http.Request, p *ledger.Principal) time.Duration {
	remote := ""
	if p == nil {
		remote, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	return l.take(p, remote)
}

// take takes a lookup by p from its bucket, or, with p nil, from the
// bucket of the remote address remote.
func (l *lookupLimiter) take(p *ledger.Principal, remote string) time.Duration {
	principal, key := Anonymous, "address "+remote
	if p != nil {
		principal, key = p.Name, "principal "+p.Name
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, p == nil, now)
	res := b.ReserveN(now, 1)
	wait := res.DelayFrom(now)
	if res.OK() && wait == 0 {
		return 0
	}
	res.CancelAt(now)
	if !res.OK() {
		wait = time.Second
	}
	l.limited.WithLabelValues(principal).Inc()
	if now.Sub(b.warned) >= time.Minute {
		b.warned = now
		args := []any{"principal", principal, "rate", float64(l.rate), "burst", l.burst}
		if remote != "" {
			args = append(args, "remote", remote)
		}
		l.logger.Warn("principal over its lookup rate", args...)
	}
	return max(wait, time.Millisecond)
}

// bucket returns key's bucket, making it if need be; buckets of remote
// addresses (anonymous) are bounded by maxLimiters, those of principals by
// the access file. l.mu is held.
func (l *lookupLimiter) bucket(key string, anonymous bool, now time.Time) *bucket {
	if b, ok := l.buckets[key]; ok {
		return b
	}
	if anonymous && len(l.buckets) >= maxLimiters {
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, k)
			}
		}
		if len(l.buckets) >= maxLimiters {
			key = "overflow"
			if b, ok := l.buckets[key]; ok {
				return b
			}
		}
	}
	b := &bucket{Limiter: rate.NewLimiter(l.rate, l.burst)}
	l.buckets[key] = b
	return b
}
