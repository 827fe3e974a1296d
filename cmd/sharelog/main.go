// Command sharelog is the sharelog server and its command-line client.
//
// `sharelog serve` runs everything in one process; the other commands are
// clients of a running server's HTTP API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	// The DPO's time zone (policy calendar.timeZone, Europe/London by
	// default) must load on a machine without a zoneinfo database.
	_ "time/tzdata"

	"github.com/alecthomas/kong"

	slhttp "github.com/sharelog/sharelog/internal/http"
)

// CLI is the command line. Every flag can also be set by an environment
// variable SHARELOG_<FLAG>.
type CLI struct {
	Serve       ServeCmd       `cmd:"" help:"Run sharelog: embedded NATS (or --nats), the ledger and the HTTP API."`
	Who         WhoCmd         `cmd:"" help:"List every recipient of a person's data (Art. 15(1)(c))."`
	Disclosures DisclosuresCmd `cmd:"" help:"List disclosures by subject, recipient and time."`
	Disclosure  DisclosureCmd  `cmd:"" help:"Show one disclosure by its event id."`
	Recipients  RecipientsCmd  `cmd:"" help:"List the recipient registry."`
	Publish     PublishCmd     `cmd:"" help:"Send events from JSON files (one event or an array of events per file; - for stdin)."`
	Status      StatusCmd      `cmd:"" help:"Show how a rectification, erasure or restriction reached each recipient."`
	Obligations ObligationsCmd `cmd:"" help:"List notices to recipients across requests (--overdue: what is late)."`
	Report      ReportCmd      `cmd:"" help:"Report to a data subject which recipients were told of each request, and when (Art. 19)."`
	Manual      ManualCmd      `cmd:"" help:"Export the manual queue: notices a person must send (table, csv or json)."`
	Sent        SentCmd        `cmd:"" help:"Mark a manual notice as sent."`
	Bench       BenchCmd       `cmd:"" help:"Measure sharelog against raw JetStream and raw Badger, side by side."`

	Verify        VerifyCmd        `cmd:"" help:"Check a data directory offline: recompute the Merkle tree, check every signed checkpoint."`
	CheckpointKey CheckpointKeyCmd `cmd:"" name:"checkpoint-key" help:"Print the public key that verifies this server's checkpoints."`
	Prove         ProveCmd         `cmd:"" help:"Prove an entry is in the server's latest signed checkpoint, using the public key you hold."`
	Consistency   ConsistencyCmd   `cmd:"" help:"Prove a later signed checkpoint extends an earlier one, using the public key you hold."`
}

// Env carries what every command's Run needs from the process.
type Env struct {
	Ctx    context.Context
	Stdout io.Writer
	Stderr io.Writer
}

// ClientFlags are shared by the client commands.
type ClientFlags struct {
	Server string `help:"URL of the sharelog server." default:"http://127.0.0.1:8080" env:"SHARELOG_SERVER"`
	JSON   bool   `help:"Print JSON instead of a table." name:"json"`
}

func (f ClientFlags) client() *slhttp.Client { return slhttp.NewClient(f.Server) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sharelog:", err)
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(int(exit))
		}
		os.Exit(1)
	}
}

// exitError ends the process with a status and no further message.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run parses args and runs the chosen command; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cli CLI
	exited := false
	parser, err := kong.New(&cli,
		kong.Name("sharelog"),
		kong.Description("An event-sourced ledger of who received each person's data."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(int) { exited = true }),
	)
	if err != nil {
		return err
	}
	kctx, err := parser.Parse(args)
	if exited {
		return nil
	}
	if err != nil {
		return err
	}
	return kctx.Run(&Env{Ctx: ctx, Stdout: stdout, Stderr: stderr})
}
