package notify

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef-secret")
	body := []byte(`{"specversion":"1.0","id":"n-1"}`)
	now := time.Unix(1_770_000_000, 0)
	signed := func(at time.Time) http.Header {
		h := http.Header{}
		Sign(h, secret, body, at)
		return h
	}
	tests := []struct {
		name   string
		secret []byte
		header http.Header
		body   []byte
		want   error
	}{
		{"valid", secret, signed(now), body, nil},
		{"valid a little in the past", secret, signed(now.Add(-4 * time.Minute)), body, nil},
		{"valid a little in the future", secret, signed(now.Add(4 * time.Minute)), body, nil},
		{"tampered body", secret, signed(now), []byte(`{"specversion":"1.0","id":"n-2"}`), ErrBadSignature},
		{"wrong secret", []byte("another-secret-of-16"), signed(now), body, ErrBadSignature},
		{"stale", secret, signed(now.Add(-6 * time.Minute)), body, ErrStale},
		{"from the future", secret, signed(now.Add(6 * time.Minute)), body, ErrStale},
		{"no headers", secret, http.Header{}, body, ErrNoSignature},
		{"no signature", secret, http.Header{HeaderTimestamp: {strconv.FormatInt(now.Unix(), 10)}}, body, ErrNoSignature},
		{"bad timestamp", secret, http.Header{HeaderTimestamp: {"yesterday"}, HeaderSignature: {"v1=00"}}, body, ErrBadTimestamp},
		{"timestamp changed", secret, func() http.Header {
			h := signed(now)
			h.Set(HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return h
		}(), body, ErrBadSignature},
		{"unknown scheme", secret, func() http.Header {
			h := signed(now)
			h.Set(HeaderSignature, "v2="+h.Get(HeaderSignature)[3:])
			return h
		}(), body, ErrBadSignature},
		{"not hex", secret, http.Header{HeaderTimestamp: {strconv.FormatInt(now.Unix(), 10)}, HeaderSignature: {"v1=zz"}}, body, ErrBadSignature},
		{"one of several signatures", secret, func() http.Header {
			h := signed(now)
			h.Set(HeaderSignature, "v1=deadbeef, "+h.Get(HeaderSignature))
			return h
		}(), body, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Verify(tt.secret, tt.header, tt.body, now, 5*time.Minute)
			if !errors.Is(got, tt.want) {
				t.Errorf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSignatureKnownAnswer pins the scheme that deploy/WEBHOOKS.md documents,
// so that recipients' verifiers keep working:
//
//	printf '%s' '1770000000.{"id":"n-1"}' | openssl dgst -sha256 -hmac 'whsec-0123456789abcdef'
func TestSignatureKnownAnswer(t *testing.T) {
	got := Signature([]byte("whsec-0123456789abcdef"), 1770000000, []byte(`{"id":"n-1"}`))
	want := "v1=7d0a74b779bc5a54a8c4d3a6a7c4a407ec6ab491041b6403043944f6d2d9febd" // from the openssl command above
	if got != want {
		t.Errorf("Signature = %s, want %s", got, want)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: time.Second, Max: time.Minute}
	for n := 1; n <= 20; n++ {
		ceiling := min(time.Second<<(n-1), time.Minute)
		if n > 10 {
			ceiling = time.Minute
		}
		lo, hi := ceiling, time.Duration(0)
		for range 50 {
			d := b.Delay(n)
			if d < 0 || d > ceiling {
				t.Fatalf("Delay(%d) = %v, want in [0, %v]", n, d, ceiling)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		// Full jitter: 50 delays spread below and above half the ceiling.
		if lo >= ceiling/2 || hi <= ceiling/2 {
			t.Errorf("Delay(%d) over 50 draws in [%v, %v], want spread across [0, %v]", n, lo, hi, ceiling)
		}
	}
}
