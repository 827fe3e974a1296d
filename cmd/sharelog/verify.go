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
	"github.com/sharelog/sharelog/internal/policy"
	"github.com/sharelog/sharelog/internal/store"
)

// startCheckpoints loads (or creates) the checkpoint signing key in the data
// directory and starts the Checkpointer's loop; Close signs a last checkpoint.
func (m *Main) startCheckpoints() error {
	keyPath := filepath.Join(m.Config.Data, checkpoint.KeyFileName)
	pubPath := filepath.Join(m.Config.Data, checkpoint.PubFileName)
	signer, vkey, created, err := checkpoint.LoadOrCreateKey(keyPath, pubPath, checkpoint.DefaultName())
	if err != nil {
		return err
	}
	if created {
		m.Logger.Info("created checkpoint signing key", "path", keyPath, "public", vkey)
	}
	m.Checkpointer = checkpoint.NewCheckpointer(m.Store, signer, m.Logger)
	m.goLoop(loopCheckpoint, m.Checkpointer.Run)
	return nil
}

// KeyFlags name the checkpoint public key an auditor holds.
type KeyFlags struct {
	Key string `help:"The checkpoint public key (NAME+HASH+KEY, as printed by 'sharelog checkpoint-key'), or a file holding it." env:"SHARELOG_CHECKPOINT_KEY"`
}

func (f KeyFlags) verifier(fallback string, env *Env) (note.Verifier, error) {
	key := f.Key
	if key == "" {
		if fallback == "" {
			return nil, errors.New("--key is required: the checkpoint public key you hold ('sharelog checkpoint-key' on the server prints it)")
		}
		fmt.Fprintf(env.Stderr, "warning: no --key given; using %s from the data directory itself. An auditor should pass the public key held apart from it.\n", fallback)
		key = fallback
	}
	return checkpoint.LoadVerifier(key)
}

// VerifyCmd checks a data directory offline.
type VerifyCmd struct {
	Data string `help:"Data directory to verify: a copy, or the server's own with the server stopped (it is opened read-only)." default:"./data" env:"SHARELOG_DATA" type:"path"`
	KeyFlags
	Checkpoint []string `help:"Signed checkpoint files held apart from the ledger (saved from GET /v1/checkpoint), checked too." type:"path"`
	Every      int64    `help:"Report progress on stderr every N entries." default:"100000"`
	// A ledger kept with --encrypt-at-rest opens only with its master key.
	EncryptAtRest bool   `help:"The ledger was kept with --encrypt-at-rest: open it with the key derived from the master key." env:"SHARELOG_ENCRYPT_AT_REST" name:"encrypt-at-rest"`
	MasterKeyFile string `help:"Master key file of an --encrypt-at-rest ledger (default DATA/master.key)." env:"SHARELOG_MASTER_KEY_FILE" name:"master-key-file" type:"path"`
	// The replay computes the obligations' due dates with the policy the
	// server ran with.
	Policy   string `help:"The YAML policy file the server ran with (serve --policy): the replay of the entries computes notices' due dates with it." env:"SHARELOG_POLICY" type:"path"`
	TreeOnly bool   `help:"Check only the entries, the tree and the checkpoints, not the state derived from the entries (indexes, registry, requests, obligations, holds, dedupe records)." name:"tree-only"`
}

// Run implements the verify command.
func (c *VerifyCmd) Run(env *Env) error {
	dir := filepath.Join(c.Data, "ledger")
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no ledger in %s: %w", c.Data, err)
	}
	v, err := c.verifier(filepath.Join(c.Data, checkpoint.PubFileName), env)
	if err != nil {
		return err
	}
	var external [][]byte
	for _, f := range c.Checkpoint {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		external = append(external, b)
	}
	var atRest []byte
	if c.EncryptAtRest {
		master, err := os.ReadFile(masterKeyFile(Config{Data: c.Data, MasterKeyFile: c.MasterKeyFile}))
		if err != nil {
			return fmt.Errorf("master key: %w", err)
		}
		atRest = store.AtRestKey(master)
	}
	pol := &policy.Policy{}
	if c.Policy != "" {
		if pol, err = policy.Load(c.Policy); err != nil {
			return err
		}
	}
	deadlines, err := pol.LedgerDeadlines()
	if err != nil {
		return err
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
	if errors.As(err, &te) {
		fmt.Fprintf(env.Stdout, "TAMPERED: %s\n", te)
		return fmt.Errorf("ledger is not intact: %w", te)
	}
	var se *store.StateError
	if errors.As(err, &se) {
		fmt.Fprintf(env.Stdout, "TAMPERED: %s\n", se)
		return fmt.Errorf("ledger is not intact: %d derived records do not match the entries", se.Total)
	}
	if err != nil {
		return err
	}
	if res.Recovered {
		fmt.Fprintln(env.Stderr, "note: the ledger's write-ahead log needed recovery (copied while the server ran, or after a crash); a scratch copy was recovered and verified, the directory itself was not written")
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
		fmt.Fprintf(env.Stdout, "%d checkpoint signatures by %s checked; latest checkpoint size %d\n", res.Checkpoints, v.Name(), res.Latest)
	}
	return nil
}

// CheckpointKeyCmd prints the checkpoint public key.
type CheckpointKeyCmd struct {
	Data string `help:"Data directory of the server." default:"./data" env:"SHARELOG_DATA" type:"path"`
}

// Run implements the checkpoint-key command.
func (c *CheckpointKeyCmd) Run(env *Env) error {
	vkey, err := checkpoint.PublicKey(filepath.Join(c.Data, checkpoint.KeyFileName))
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
	v, err := c.verifier("", env)
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
		return err
	}
	p, err := cl.InclusionProof(env.Ctx, c.Seq, cp.Size)
	if err != nil {
		return err
	}
	if p.Seq != c.Seq {
		return fmt.Errorf("server answered a proof for entry %d, not %d", p.Seq, c.Seq)
	}
	if err := p.Verify(cp); err != nil {
		return err
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
	From int64  `arg:"" optional:"" help:"The earlier tree size (a checkpointed size); omit with --old."`
	To   int64  `arg:"" optional:"" help:"The later tree size (a checkpointed size); default the latest checkpoint."`
	Old  string `help:"A signed checkpoint you saved earlier, instead of FROM." type:"path"`
}

// Run implements the consistency command.
func (c *ConsistencyCmd) Run(env *Env) error {
	v, err := c.verifier("", env)
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
			return fmt.Errorf("checkpoint of size %d: %w", c.From, err)
		}
	default:
		return errors.New("give FROM (a checkpointed tree size) or --old FILE")
	}
	older, err := checkpoint.Open(oldMsg, v)
	if err != nil {
		return fmt.Errorf("earlier checkpoint: %w", err)
	}
	newMsg, err := cl.Checkpoint(env.Ctx, c.To)
	if err != nil {
		return fmt.Errorf("checkpoint of size %s: %w", sizeName(c.To), err)
	}
	newer, err := checkpoint.Open(newMsg, v)
	if err != nil {
		return fmt.Errorf("later checkpoint: %w", err)
	}
	if older.Size > newer.Size {
		return fmt.Errorf("tree rolled back: checkpoint size %d > server's checkpoint size %d", older.Size, newer.Size)
	}
	p, err := cl.ConsistencyProof(env.Ctx, older.Size, newer.Size)
	if err != nil {
		return err
	}
	if err := p.Verify(older, newer); err != nil {
		return err
	}
	if c.JSON {
		return printJSON(env.Stdout, map[string]any{"older": string(oldMsg), "newer": string(newMsg), "proof": p, "verified": true})
	}
	fmt.Fprintf(env.Stdout, "tree of size %d (root %s) extends tree of size %d (root %s), both signed by %s: consistent\n",
		newer.Size, b64(newer.Root[:]), older.Size, b64(older.Root[:]), v.Name())
	return nil
}

func sizeName(n int64) string {
	if n == 0 {
		return "latest"
	}
	return strconv.FormatInt(n, 10)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
