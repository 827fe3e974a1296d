package store

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"
)

// TestMacer: the writer's reused HMAC gives crypto/hmac's sums for keys of
// every length (longer than a block too) and messages in parts, one key
// after another; the subject's key is crypto/hkdf's and its keyed hash
// crypto/hmac's, so that entries sealed before and after open alike.
func TestMacer(t *testing.T) {
	m := newMacer()
	for _, keyLen := range []int{0, 1, 16, 32, 63, 64, 65, 200} {
		for _, parts := range [][]string{nil, {""}, {"a"}, {"dbs-ref", "\x00", "DBS000000001"}, {string(make([]byte, 1000))}} {
			key := make([]byte, keyLen)
			rand.Read(key)
			want := hmac.New(sha256.New, key)
			var msg [][]byte
			for _, p := range parts {
				want.Write([]byte(p))
				msg = append(msg, []byte(p))
			}
			if got := m.mac(key, msg...); !bytes.Equal(got, want.Sum(nil)) {
				t.Errorf("key of %d bytes, message %q: %x, want %x", keyLen, parts, got, want.Sum(nil))
			}
		}
	}

	master := make([]byte, MasterKeyLen)
	rand.Read(master)
	kr, err := newKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	h := newSubjectHasher(master)
	for i := range 5 {
		salt := make([]byte, saltLen)
		rand.Read(salt)
		want, err := hkdf.Key(sha256.New, master, salt, "sharelog subject key", dataKeyLen)
		if err != nil {
			t.Fatal(err)
		}
		if got := kr.subjectKey(h.macer(), salt); !bytes.Equal(got, want) {
			t.Errorf("subject key %x, want HKDF's %x", got, want)
		}
		if got := kr.subjectKey(nil, salt); !bytes.Equal(got, want) {
			t.Errorf("subject key with a macer of its own %x, want HKDF's %x", got, want)
		}
		s := subj(fmt.Sprint("DBS", i))
		mac := hmac.New(sha256.New, salt)
		mac.Write([]byte(s.Scheme + "\x00" + s.ID))
		first := h.salted(salt, s)
		if want := mac.Sum(nil)[:subjectHashLen]; !bytes.Equal(first, want) {
			t.Errorf("keyed hash %x, want %x", first, want)
		}
		h.salted(salt, subj("another")) // a result is not overwritten by the next
		if want := mac.Sum(nil)[:subjectHashLen]; !bytes.Equal(first, want) {
			t.Errorf("keyed hash changed by the next to %x, want %x", first, want)
		}
	}
}
