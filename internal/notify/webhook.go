package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// maxResponseBody is how much of a webhook's response is read (and discarded).
const maxResponseBody = 64 << 10

// sendWebhook POSTs o's notice to rec's webhook and returns the record of the
// attempt, or nil if ctx ended it.
func (d *Dispatcher) sendWebhook(ctx context.Context, o *ledger.OutgoingNotice, rec *ledger.Recipient) *ledger.NoticeDelivery {
	secret, ok := d.cfg.Secrets.Secret(rec.ID)
	if !ok {
		return d.failed(o, "webhook", 0, "no webhook secret configured", 0)
	}
	if rec.Channel.URL == "" {
		return d.failed(o, "webhook", 0, "no webhook url in the registry", d.cfg.Backoff.Max)
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, rec.Channel.URL, bytes.NewReader(o.Event))
	if err != nil {
		return d.failed(o, "webhook", 0, "bad webhook url in the registry", d.cfg.Backoff.Max)
	}
	attempt := o.Obligation.Attempts + 1
	req.Header.Set("Content-Type", "application/cloudevents+json; charset=utf-8")
	req.Header.Set("User-Agent", "sharelog-notify/1")
	req.Header.Set(HeaderDelivery, strconv.Itoa(attempt))
	if o.Reminder {
		req.Header.Set(HeaderReminder, "true")
	}
	Sign(req.Header, secret, o.Event, d.cfg.Now())
	resp, err := d.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil // shutting down: not the recipient's failure
		}
		return d.failed(o, "webhook", 0, transportError(err), 0)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		r := d.record(o, "webhook", ledger.DeliveryDelivered)
		r.Status = resp.StatusCode
		return r
	}
	msg := "HTTP " + strconv.Itoa(resp.StatusCode)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg += " (redirects are not followed)"
	}
	return d.failed(o, "webhook", resp.StatusCode, msg, d.retryAfter(resp, attempt))
}

// retryAfter honours a Retry-After of seconds on 429 and 503, within the
// backoff's maximum; 0 means use the backoff.
func (d *Dispatcher) retryAfter(resp *http.Response, attempt int) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
		return 0
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs <= 0 {
		return 0
	}
	return min(max(time.Duration(secs)*time.Second, d.cfg.Backoff.Delay(attempt)), d.cfg.Backoff.Max)
}

// transportError describes a failed request in a few words, without the URL
// (which may carry a token) or anything from the notice.
func transportError(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable"
	case errors.As(err, &dnsErr):
		return "host not found"
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr):
		return "tls certificate not trusted"
	case errors.As(err, &recordErr):
		return "tls handshake failed"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server"
	}
	return "request failed"
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// errorsIs is errors.Is; a short name for switch cases.
func errorsIs(err, target error) bool { return errors.Is(err, target) }
