package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"

	"github.com/sharelog/sharelog/internal/checkpoint"
	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/nats"
)

// KeptFlags name the NATS server where sharelog's signed checkpoints are
// kept (the key-value bucket SHARELOG_CHECKPOINTS, package nats), and the
// principal an auditor reads them as.
type KeptFlags struct {
	NATS         string `help:"Read the checkpoints kept in the key-value bucket SHARELOG_CHECKPOINTS of this NATS server (URL), where sharelog publishes each one." name:"nats" placeholder:"URL"`
	NATSUser     string `help:"NATS user for --nats: the auditor principal's name." env:"SHARELOG_NATS_USER" name:"nats-user"`
	NATSPassword string `help:"NATS password for --nats: the auditor principal's token (the same as its --token)." env:"SHARELOG_TOKEN" name:"nats-password"`
}

// jetStream connects to --nats. The caller closes the connection.
func (f KeptFlags) jetStream() (*natsio.Conn, jetstream.JetStream, error) {
	opts := []natsio.Option{natsio.Name("sharelog checkpoints")}
	if f.NATSUser != "" || f.NATSPassword != "" {
		// A principal gets replies only on its own inbox (permissions.go).
		opts = append(opts, natsio.UserInfo(f.NATSUser, f.NATSPassword), natsio.CustomInboxPrefix(nats.InboxPrefix(f.NATSUser)))
	}
	nc, err := natsio.Connect(f.NATS, opts...)
	if err != nil {
		return nil, nil, ledger.Errorf(ledger.EUNAVAILABLE, "nats %s: %v", f.NATS, err)
	}
	js, err := nats.NewJetStream(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// latestKept fetches the latest checkpoint kept in the bucket.
func (f KeptFlags) latestKept(ctx context.Context) ([]byte, error) {
	nc, js, err := f.jetStream()
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	return nats.LatestKeptCheckpoint(ctx, js)
}

// keptCheckpoints prints the checkpoints kept in the bucket, checking
// their signatures when the caller gives a key, and saves the latest.
func (c *CheckpointsCmd) keptCheckpoints(env *Env) error {
	var v note.Verifier
	if c.Key != "" {
		var err error
		if v, err = c.verifier(); err != nil {
			return err
		}
	}
	nc, js, err := c.jetStream()
	if err != nil {
		return err
	}
	defer nc.Close()
	kept, err := nats.KeptCheckpoints(env.Ctx, js)
	if err != nil {
		return err
	}
	type row struct {
		Revision   uint64 `json:"revision"`
		Origin     string `json:"origin"`
		Size       int64  `json:"size"`
		Root       string `json:"root"`
		Checkpoint string `json:"checkpoint"`
	}
	rows := make([]row, 0, len(kept))
	for _, k := range kept {
		var cp checkpoint.Checkpoint
		if v != nil {
			cp, err = checkpoint.Open(k.Signed, v)
		} else {
			cp, err = checkpoint.ParseUnverified(k.Signed)
		}
		if err != nil {
			return tampered(fmt.Errorf("bucket %s revision %d: %w", nats.BucketCheckpoints, k.Revision, err))
		}
		rows = append(rows, row{k.Revision, cp.Origin, cp.Size, b64(cp.Root[:]), string(k.Signed)})
	}
	if c.Save != "" {
		if err := saveCheckpoint(env, c.Save, kept[len(kept)-1].Signed); err != nil {
			return err
		}
	}
	if c.JSON {
		return printJSON(env.Stdout, rows)
	}
	t := newTable(env.Stdout, "REVISION", "SIZE", "ROOT", "ORIGIN")
	for _, r := range rows {
		t.row(strconv.FormatUint(r.Revision, 10), strconv.FormatInt(r.Size, 10), r.Root, r.Origin)
	}
	if err := t.flush(); err != nil {
		return err
	}
	checked := "signatures not checked: give --key"
	if v != nil {
		checked = "each signed by " + v.Name()
	}
	fmt.Fprintf(env.Stdout, "\n%s kept in %s (%s).\n", plural(len(rows), "checkpoint"), nats.BucketCheckpoints, checked)
	return nil
}

// saveCheckpoint writes a signed checkpoint to path (mode 0644).
func saveCheckpoint(env *Env, path string, signed []byte) error {
	if err := os.WriteFile(path, signed, 0o644); err != nil {
		return err
	}
	cp, _ := checkpoint.ParseUnverified(signed)
	fmt.Fprintf(env.Stderr, "checkpoint of size %d saved to %s\n", cp.Size, path)
	return nil
}
