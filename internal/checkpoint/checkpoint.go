package checkpoint

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a tree head: the tree's origin (the log's name), its size
// and its root hash.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// String returns the checkpoint's note body in the C2SP format: origin,
// size and base64 root hash, each on its own line.
func (c Checkpoint) String() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// Parse parses a checkpoint note body. Extension lines after the root are
// allowed and ignored.
func Parse(text string) (Checkpoint, error) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 4 {
		return Checkpoint{}, errors.New("checkpoint: fewer than three lines")
	}
	var c Checkpoint
	for i := range 3 {
		if !strings.HasSuffix(lines[i], "\n") {
			return Checkpoint{}, errors.New("checkpoint: unterminated line")
		}
		lines[i] = strings.TrimSuffix(lines[i], "\n")
	}
	c.Origin = lines[0]
	if c.Origin == "" {
		return Checkpoint{}, errors.New("checkpoint: empty origin")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, errors.New("checkpoint: malformed tree size")
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return Checkpoint{}, errors.New("checkpoint: malformed root hash")
	}
	copy(c.Root[:], root)
	return c, nil
}

// Sign returns the signed note of c, signed by s. c.Origin must be the
// signer's name.
func Sign(c Checkpoint, s note.Signer) ([]byte, error) {
	if c.Origin != s.Name() {
		return nil, fmt.Errorf("checkpoint: origin %q is not the signing key's name %q", c.Origin, s.Name())
	}
	msg, err := note.Sign(&note.Note{Text: c.String()}, s)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: sign: %w", err)
	}
	return msg, nil
}

// Open checks the signed checkpoint msg against the verifier v and returns
// it. It fails unless msg carries a valid signature by v and its origin is
// v's name. Signatures by other keys (witnesses) are ignored.
func Open(msg []byte, v note.Verifier) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return Checkpoint{}, fmt.Errorf("checkpoint: not signed by key %s", v.Name())
		}
		return Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	c, err := Parse(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("checkpoint: origin %q is not the key's name %q", c.Origin, v.Name())
	}
	return c, nil
}

// ParseUnverified returns the checkpoint in the signed note msg without
// checking any signature. It is for messages and diagnostics only.
func ParseUnverified(msg []byte) (Checkpoint, error) {
	text, _, ok := bytes.Cut(msg, []byte("\n\n"))
	if !ok {
		return Checkpoint{}, errors.New("checkpoint: not a signed note")
	}
	return Parse(string(text) + "\n")
}

// Signers returns the keys whose signature lines the signed note msg
// carries, each as its name and key hash ("name+1a2b3c4d", as a verifier
// key begins), without checking any signature. It is for messages only:
// saying which key signed a checkpoint the expected key did not.
func Signers(msg []byte) []string {
	_, sigs, ok := bytes.Cut(msg, []byte("\n\n"))
	if !ok {
		return nil
	}
	var keys []string
	for _, line := range strings.Split(string(sigs), "\n") {
		rest, ok := strings.CutPrefix(line, "\u2014 ")
		if !ok {
			continue
		}
		name, sig, _ := strings.Cut(rest, " ")
		if b, err := base64.StdEncoding.DecodeString(sig); err == nil && len(b) >= 4 {
			name += fmt.Sprintf("+%08x", binary.BigEndian.Uint32(b))
		}
		keys = append(keys, name)
	}
	return keys
}

// KeyID returns v's name and key hash, as Signers gives them.
func KeyID(v note.Verifier) string { return fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash()) }
