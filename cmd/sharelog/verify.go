package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sharelog/sharelog/internal/checkpoint"
	slhttp "github.com/sharelog/sharelog/internal/http"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/policy"
	"github.com/sharelog/sharelog/internal/store"
)

// KeyFlags name the checkpoint public key an auditor holds.
type KeyFlags struct {
	Key string `help:"The checkpoint public key (NAME+HASH+KEY, as printed by 'sharelog checkpoint-key'), or a file holding it (as written by 'sharelog checkpoint-key --out FILE')." env:"SHARELOG_CHECKPOINT_KEY"`
}

// verifier loads the key the caller holds. An empty --key is refused, not
// read as "no key": "$(cat FILE)" of a missing file must not verify against
// whatever key is nearest.
func (f KeyFlags) verifier() (note.Verifier, error) {
	if f.Key == "" {
		return nil, usagef("--key is required and must not be empty: the checkpoint public key you hold, or a file holding it ('sharelog checkpoint-key --out FILE' on the server writes it)")
	}
	v, err := checkpoint.LoadVerifier(f.Key)
	if err != nil {
		return nil, usagef("--key: %v", err)
	}
	return v, nil
}

// VerifyCmd checks a data directory offline.
type VerifyCmd struct {
	Data string `help:"Data directory to verify: a copy, or the server's own with the server stopped (it is opened read-only)." default:"./data" env:"SHARELOG_DATA" type:"path"`
	KeyFlags
	Checkpoint []string `help:"Signed checkpoint files kept apart from the ledger ('sharelog checkpoints --save FILE', GET /v1/checkpoint): the ledger must extend each, and a truncated, rolled back or rewritten, or re-signed ledger is named (verify_checkpoint.go)." type:"path"`
	Every      int64    `help:"Report progress on stderr every N entries." default:"100000"`
	// The latest checkpoint kept in NATS (--nats), checked as a --checkpoint is.
	KeptFlags
	// A ledger kept with --encrypt-at-rest opens only with its master key.
	EncryptAtRest bool   `help:"The ledger was kept with --encrypt-at-rest: open it with the key derived from the master key." env:"SHARELOG_ENCRYPT_AT_REST" name:"encrypt-at-rest"`
	MasterKeyFile string `help:"Master key file of an --encrypt-at-rest ledger (default DATA/master.key)." env:"SHARELOG_MASTER_KEY_FILE" name:"master-key-file" type:"path"`
	// The replay computes the obligations' due dates with the policy the
	// server ran with.
	Policy string `help:"The YAML policy file the server ran with (serve --policy): the replay of the entries computes notices' due dates with it." env:"SHARELOG_POLICY" type:"path"`
	// The key inside the data directory vouches for nothing an attacker who
	// rewrote the directory could not also rewrite: it is used only when asked by name.
	KeyInData bool `help:"Check the checkpoints with the public key stored in the data directory itself instead of --key. It proves only that the directory agrees with itself: an auditor passes the key held apart." name:"key-in-data"`
	JSON      bool `help:"Print the result as JSON (a tampered ledger too, with exit status 6)." name:"json"`
	TreeOnly  bool `help:"Check only the entries, the tree and the checkpoints, not the state derived from the entries (indexes, registry, requests, obligations, holds, dedupe records)." name:"tree-only"`
}

// Run implements the verify command.
func (c *VerifyCmd) Run(env *Env) error {
	dir := filepath.Join(c.Data, "ledger")
	if _, err := os.Stat(dir); err != nil {
		return ledger.Errorf(ledger.ENOTFOUND, "no ledger in %s: %v", c.Data, err)
	}
	var v note.Verifier
	var err error
	switch {
	case c.KeyInData && c.Key != "":
		return usagef("give --key or --key-in-data, not both")
	case c.KeyInData:
		pub := filepath.Join(c.Data, checkpoint.PubFileName)
		if v, err = checkpoint.LoadVerifier(pub); err != nil {
			return fmt.Errorf("--key-in-data: %w", err)
		}
		fmt.Fprintf(env.Stderr, "warning: checking checkpoints with %s, the key inside the data directory: this shows the directory agrees with itself, not that it is the ledger your key vouches for\n", pub)
	default:
		if v, err = c.verifier(); err != nil {
			return err
		}
	}
	var kept []keptCheckpoint
	for _, f := range c.Checkpoint {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		kept = append(kept, keptCheckpoint{from: f, signed: b})
	}
	if c.NATS != "" {
		b, err := c.latestKept(env.Ctx)
		if err != nil {
			return err
		}
		kept = append(kept, keptCheckpoint{from: "bucket SHARELOG_CHECKPOINTS at " + c.NATS, signed: b})
	}
	var external [][]byte
	for _, k := range kept {
		external = append(external, k.signed)
	}
	var atRest []byte
	if c.EncryptAtRest {
		master, err := os.ReadFile(masterKeyFile(Config{Data: c.Data, MasterKeyFile: c.MasterKeyFile}))
		if err != nil {
			return fmt.Errorf("master key: %w", err)
		}
		atRest = store.AtRestKey(master)
	}
	pol, err := policy.Load(c.Policy)
	if err != nil {
		return err
	}
	deadlines, err := pol.LedgerDeadlines()
	if err != nil {
		return err
	}
	for _, k := range kept {
		err := checkKept(env.Ctx, store.VerifyConfig{Dir: dir, EncryptionKey: atRest}, k, v, c.KeyInData)
		var ke *keptError
		if errors.As(err, &ke) {
			if c.JSON {
				printJSON(env.Stdout, map[string]any{"intact": false, "problem": ke.Error(), "kind": ke.kind()})
			} else {
				fmt.Fprintln(env.Stdout, ke)
			}
			return tampered(fmt.Errorf("ledger is not intact: %w", ke))
		}
		if err != nil {
			return err
		}
	}
	start := time.Now()
	res, err := store.Verify(env.Ctx, store.VerifyConfig{
		Dir:           dir,
		Deadlines:     deadlines,
		TreeOnly:      c.TreeOnly,
		EncryptionKey: atRest,
		Verifier:      v,
		Checkpoints:   external,
		ProgressEvery: c.Every,
		Progress: func(done, total int64) {
			pct := 100.0
			if total > 0 {
				pct = 100 * float64(done) / float64(total)
			}
			fmt.Fprintf(env.Stderr, "verified %d of %d entries (%.0f%%) in %s\n", done, total, pct, time.Since(start).Round(time.Millisecond))
		},
	})
	var te *store.TamperError
	if errors.As(err, &te) && te.Kind == store.TamperBadSignature && len(kept) > 0 {
		// Against a kept checkpoint, a checkpoint of the ledger's own that
		// the key did not sign was signed again by another.
		ke := &keptError{keptResigned, te.Error()}
		if c.JSON {
			printJSON(env.Stdout, map[string]any{"intact": false, "problem": ke.Error(), "kind": ke.kind(), "seq": te.Seq})
		} else {
			fmt.Fprintln(env.Stdout, ke)
		}
		return tampered(fmt.Errorf("ledger is not intact: %w", ke))
	}
	if errors.As(err, &te) {
		if c.JSON {
			printJSON(env.Stdout, map[string]any{"intact": false, "problem": te.Error(), "kind": te.Kind, "seq": te.Seq})
		} else {
			fmt.Fprintf(env.Stdout, "TAMPERED: %s\n", te)
		}
		return fmt.Errorf("ledger is not intact: %w", te)
	}
	var se *store.StateError
	if errors.As(err, &se) {
		if c.JSON {
			printJSON(env.Stdout, map[string]any{"intact": false, "problem": fmt.Sprintf("%d derived records do not match the entries", se.Total), "differences": se.Differences})
		} else {
			fmt.Fprintf(env.Stdout, "TAMPERED: %s\n", se)
		}
		return tampered(fmt.Errorf("ledger is not intact: %d derived records do not match the entries", se.Total))
	}
	if err != nil {
		return err
	}
	if res.Recovered {
		fmt.Fprintln(env.Stderr, "note: the ledger's write-ahead log needed recovery (copied while the server ran, or after a crash); it was recovered in a scratch directory holding copies of the log files alone, and the directory itself was not written")
	}
	if c.JSON {
		out := map[string]any{
			"intact": true, "size": res.Size, "root": b64(res.Root[:]), "key": v.Name(),
			"checkpoints": res.Checkpoints, "latestCheckpoint": res.Latest, "recovered": res.Recovered,
		}
		if !c.TreeOnly {
			out["records"], out["unchecked"] = res.Records, res.Unchecked
		}
		return printJSON(env.Stdout, out)
	}
	fmt.Fprintln(env.Stdout, res)
	if !c.TreeOnly {
		fmt.Fprintf(env.Stdout, "derived state: %d records match the replay of the entries", res.Records)
		if res.Unchecked > 0 {
			fmt.Fprintf(env.Stdout, " (%d entries naming several people, one of them forgotten before this version kept their links, not compared)", res.Unchecked)
		}
		fmt.Fprintln(env.Stdout)
	}
	if res.Checkpoints == 0 {
		fmt.Fprintln(env.Stdout, "no signed checkpoint was found: the tree is consistent, but nothing signed vouches for it")
	} else {
		fmt.Fprintf(env.Stdout, "%s by %s checked; latest checkpoint size %d\n", plural(res.Checkpoints, "checkpoint signature"), v.Name(), res.Latest)
	}
	return nil
}

// CheckpointKeyCmd prints the checkpoint public key.
type CheckpointKeyCmd struct {
	Data string `help:"Data directory of the server." default:"./data" env:"SHARELOG_DATA" type:"path"`
	Out  string `help:"Write the key to this file (mode 0644, replacing it) instead of printing it: keep it outside the data directory, and pass it to --key." type:"path"`
	// The signing key kept apart, as serve takes it.
	KeyFile string `help:"The server's checkpoint signing key file, if kept apart from the data directory (serve --checkpoint-key-file)." env:"SHARELOG_CHECKPOINT_KEY_FILE" name:"checkpoint-key-file" type:"path"`
}

// Run implements the checkpoint-key command.
func (c *CheckpointKeyCmd) Run(env *Env) error {
	vkey, err := checkpoint.PublicKey(checkpointKeyFile(Config{Data: c.Data, CheckpointKeyFile: c.KeyFile}))
	if err != nil {
		b, perr := os.ReadFile(filepath.Join(c.Data, checkpoint.PubFileName))
		if perr != nil {
			return fmt.Errorf("%w (start the server once to create the key)", err)
		}
		if _, perr := note.NewVerifier(string(trimNL(b))); perr != nil {
			return fmt.Errorf("%s: %w", checkpoint.PubFileName, perr)
		}
		vkey = string(trimNL(b))
	}
	if c.Out != "" {
		if err := os.WriteFile(c.Out, []byte(vkey+"\n"), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(env.Stderr, "checkpoint public key written to %s\n", c.Out)
		return nil
	}
	fmt.Fprintln(env.Stdout, vkey)
	return nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// ProveCmd proves an entry's inclusion in the server's latest signed
// checkpoint, checking everything with the public key the caller holds.
type ProveCmd struct {
	ClientFlags
	KeyFlags
	Seq  int64 `arg:"" help:"The entry's sequence number."`
	Size int64 `help:"Prove against the signed checkpoint of this tree size instead of the latest."`
}

// Run implements the prove command.
func (c *ProveCmd) Run(env *Env) error {
	v, err := c.verifier()
	if err != nil {
		return err
	}
	cl := c.client()
	msg, err := cl.Checkpoint(env.Ctx, c.Size)
	if err != nil {
		return err
	}
	cp, err := checkpoint.Open(msg, v)
	if err != nil {
		return tampered(err)
	}
	p, err := cl.InclusionProof(env.Ctx, c.Seq, cp.Size)
	if err != nil {
		return err
	}
	if p.Seq != c.Seq {
		return fmt.Errorf("server answered a proof for entry %d, not %d", p.Seq, c.Seq)
	}
	if err := p.Verify(cp); err != nil {
		return tampered(err)
	}
	if c.JSON {
		return printJSON(env.Stdout, map[string]any{"checkpoint": string(msg), "proof": p, "verified": true})
	}
	fmt.Fprintf(env.Stdout, "entry %d (leaf hash %s) is in the tree of size %d, root %s, signed by %s: proven\n",
		p.Seq, b64(p.LeafHash[:]), cp.Size, b64(cp.Root[:]), v.Name())
	return nil
}

// ConsistencyCmd proves that the ledger at one signed checkpoint extends the
// ledger at an earlier one.
type ConsistencyCmd struct {
	ClientFlags
	KeyFlags
	From int64  `arg:"" optional:"" help:"The earlier tree size: one the server signed a checkpoint of ('sharelog checkpoints' lists them); omit with --old."`
	To   int64  `arg:"" optional:"" help:"The later tree size, also a signed one; default the latest checkpoint."`
	Old  string `help:"A signed checkpoint you saved earlier (GET /v1/checkpoint), instead of FROM." type:"path"`
}

// Help explains which sizes consistency can prove.
func (c *ConsistencyCmd) Help() string {
	return `Both ends must be sizes the server signed a checkpoint of: the proof is
checked against the two signed roots, and checkpoints are signed at most once a
second while entries arrive, so most sizes have none. 'sharelog checkpoints'
lists the signed sizes; a checkpoint you saved earlier (--old FILE) proves that
the server's later tree extends the one you hold.

Examples:
  sharelog checkpoints
  sharelog consistency 3 --key checkpoint.pub
  sharelog consistency --old saved-checkpoint --key checkpoint.pub`
}

// Run implements the consistency command.
func (c *ConsistencyCmd) Run(env *Env) error {
	v, err := c.verifier()
	if err != nil {
		return err
	}
	cl := c.client()
	var oldMsg []byte
	switch {
	case c.Old != "":
		if oldMsg, err = os.ReadFile(c.Old); err != nil {
			return err
		}
	case c.From > 0:
		if oldMsg, err = cl.Checkpoint(env.Ctx, c.From); err != nil {
			return fmt.Errorf("checkpoint of size %d: %w%s", c.From, err, signedSizesHint(err))
		}
	default:
		return usagef("give FROM (a tree size the server signed: 'sharelog checkpoints' lists them) or --old FILE")
	}
	older, err := checkpoint.Open(oldMsg, v)
	if err != nil {
		return tampered(fmt.Errorf("earlier checkpoint: %w", err))
	}
	newMsg, err := cl.Checkpoint(env.Ctx, c.To)
	if err != nil {
		return fmt.Errorf("checkpoint of size %s: %w%s", sizeName(c.To), err, signedSizesHint(err))
	}
	newer, err := checkpoint.Open(newMsg, v)
	if err != nil {
		return tampered(fmt.Errorf("later checkpoint: %w", err))
	}
	if older.Size > newer.Size {
		return tampered(fmt.Errorf("tree rolled back: checkpoint size %d > server's checkpoint size %d", older.Size, newer.Size))
	}
	p, err := cl.ConsistencyProof(env.Ctx, older.Size, newer.Size)
	if err != nil {
		return err
	}
	if err := p.Verify(older, newer); err != nil {
		return tampered(err)
	}
	if c.JSON {
		return printJSON(env.Stdout, map[string]any{"older": string(oldMsg), "newer": string(newMsg), "proof": p, "verified": true})
	}
	fmt.Fprintf(env.Stdout, "tree of size %d (root %s) extends tree of size %d (root %s), both signed by %s: consistent\n",
		newer.Size, b64(newer.Root[:]), older.Size, b64(older.Root[:]), v.Name())
	return nil
}

// signedSizesHint explains a size with no checkpoint.
func signedSizesHint(err error) string {
	if exitCode(err) != ExitNotFound {
		return ""
	}
	return " (only sizes the server signed a checkpoint of can be proven consistent: 'sharelog checkpoints' lists them)"
}

// CheckpointsCmd lists the tree sizes with a signed checkpoint, or, with
// --nats, the checkpoints kept in NATS (kept.go).
type CheckpointsCmd struct {
	ClientFlags
	KeptFlags
	KeyFlags
	Save string `help:"Save the latest signed checkpoint to this file (the server's, or with --nats the latest kept): keep it apart from the ledger, for 'sharelog verify --checkpoint FILE'." type:"path"`
}

// Run implements the checkpoints command.
func (c *CheckpointsCmd) Run(env *Env) error {
	if c.NATS != "" {
		return c.keptCheckpoints(env)
	}
	sizes, err := c.client().CheckpointSizes(env.Ctx)
	if err != nil {
		return err
	}
	if c.Save != "" && len(sizes) == 0 {
		return ledger.Errorf(ledger.ENOTFOUND, "no checkpoint signed yet: nothing to save to %s", c.Save)
	}
	if c.Save != "" {
		latest, err := c.client().Checkpoint(env.Ctx, 0)
		if err != nil {
			return err
		}
		if c.Key != "" { // save only what the key the caller holds signed
			v, err := c.verifier()
			if err != nil {
				return err
			}
			if _, err := checkpoint.Open(latest, v); err != nil {
				return tampered(fmt.Errorf("the server's latest checkpoint: %w", err))
			}
		}
		if err := saveCheckpoint(env, c.Save, latest); err != nil {
			return err
		}
	}
	if c.JSON {
		return printJSON(env.Stdout, slhttp.CheckpointSizes{Sizes: sizes})
	}
	if len(sizes) == 0 {
		fmt.Fprintln(env.Stdout, "No checkpoint signed yet.")
		return nil
	}
	t := newTable(env.Stdout, "SIZE")
	for _, s := range sizes {
		t.row(strconv.FormatInt(s, 10))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\n%s; prove and consistency take these sizes.\n", plural(len(sizes), "signed checkpoint"))
	return nil
}

func sizeName(n int64) string {
	if n == 0 {
		return "latest"
	}
	return strconv.FormatInt(n, 10)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// Help gives examples.
func (c *VerifyCmd) Help() string {
	return `Examples:
  sharelog checkpoint-key --data ./data --out checkpoint.pub   # once, on the server; keep the file apart
  sharelog verify --data ./data-copy --key checkpoint.pub --policy deploy/policy.example.yaml`
}
