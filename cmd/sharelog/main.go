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
	"github.com/willabides/kongplete"

	slhttp "github.com/sharelog/sharelog/internal/http"
)

// CLI is the command line. Every flag can also be set by an environment
// variable SHARELOG_<FLAG>.
type CLI struct {
	Version kong.VersionFlag `help:"Print the version and build information, and exit."`

	Serve      ServeCmd      `cmd:"" group:"server" help:"Run sharelog: embedded NATS (or --nats), the ledger and the HTTP API."`
	NATSConfig NATSConfigCmd `cmd:"" group:"server" name:"nats-config" help:"Print the NATS authorization block of an access file, for an existing NATS server or cluster (--nats)."`

	Who         WhoCmd         `cmd:"" group:"query" help:"List every recipient of a person's data (Art. 15(1)(c))."`
	Disclosures DisclosuresCmd `cmd:"" group:"query" help:"List disclosures by subject, recipient and time."`
	Disclosure  DisclosureCmd  `cmd:"" group:"query" help:"Show one disclosure by its event id."`
	Recipients  RecipientsCmd  `cmd:"" group:"query" help:"List the recipient registry."`
	Accesses    AccessesCmd    `cmd:"" group:"query" help:"List the consultation log: who looked up whose data, when and why (DPA 2018 s.62)."`
	Publish     PublishCmd     `cmd:"" group:"query" help:"Send events from JSON files (one event or an array of events per file; - for stdin)."`

	Status      StatusCmd      `cmd:"" group:"propagation" help:"Show how a rectification, erasure or restriction reached each recipient."`
	Obligations ObligationsCmd `cmd:"" group:"propagation" help:"List notices to recipients across requests (--overdue: what is late)."`
	Report      ReportCmd      `cmd:"" group:"propagation" help:"Report to a data subject which recipients were told of each request, and when (Art. 19)."`
	Manual      ManualCmd      `cmd:"" group:"propagation" help:"Export the manual queue: notices a person must send (table, csv or json)."`
	Sent        SentCmd        `cmd:"" group:"propagation" help:"Mark a manual notice as sent."`

	Verify        VerifyCmd        `cmd:"" group:"evidence" help:"Check a data directory offline: recompute the Merkle tree, check every signed checkpoint."`
	CheckpointKey CheckpointKeyCmd `cmd:"" group:"evidence" name:"checkpoint-key" help:"Print (or --out: write) the public key that verifies this server's checkpoints."`
	Checkpoints   CheckpointsCmd   `cmd:"" group:"evidence" help:"List the tree sizes the server holds signed checkpoints of: the sizes prove and consistency can use; with --nats, the checkpoints kept in NATS; --save keeps the latest."`
	Prove         ProveCmd         `cmd:"" group:"evidence" help:"Prove an entry is in the server's latest signed checkpoint, using the public key you hold."`
	Consistency   ConsistencyCmd   `cmd:"" group:"evidence" help:"Prove a later signed checkpoint extends an earlier one, using the public key you hold."`

	Token TokenCmd `cmd:"" group:"other" help:"Print a new bearer token and the tokenSHA256 to put in the --access file."`

	Completion kongplete.InstallCompletions `cmd:"" group:"other" help:"Print the shell completion script for your login shell (bash, zsh or fish); add it to the shell's start-up file."`
	Bench      BenchCmd                     `cmd:"" group:"other" help:"Measure sharelog against raw JetStream and raw Badger, side by side (a benchmark, not an everyday command)."`
}

// groups title the command groups of --help, in this order.
var groups = []kong.Group{
	{Key: "server", Title: "Server:"},
	{Key: "query", Title: "Disclosures (clients of a running server):"},
	{Key: "propagation", Title: "Telling recipients of rectifications, erasures and restrictions:"},
	{Key: "evidence", Title: "Evidence (the tamper-evident ledger):"},
	{Key: "other", Title: "Other:"},
}

// description heads --help.
const description = `An event-sourced ledger of who received each person's data.

Examples:
  sharelog serve --recipients deploy/recipients.example.yaml --policy deploy/policy.example.yaml
  sharelog publish deploy/examples/disclosure-acro.json
  sharelog who dbs-ref:A1
  sharelog status ER-2026-0001 --json
  sharelog verify --data ./data --key checkpoint.pub

Client commands talk to --server (default http://127.0.0.1:8080, or SHARELOG_SERVER)
and print a table, or JSON with --json.

` + exitHelp

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
	Token  string `help:"Bearer token of your principal in the server's access file (sharelog token makes one)." env:"SHARELOG_TOKEN"`
	Reason string `help:"Why you look up a person's data; recorded in the consultation log (DPA 2018 s.62) and required by a server with --access." env:"SHARELOG_REASON"`
	CA     caFlag `help:"PEM file of the CA that signed an https --server's certificate (a private CA)." env:"SHARELOG_CA" name:"ca" placeholder:"FILE"`
	// AfterSeq is read-your-writes across replicas (applied.go in internal/http).
	AfterSeq uint64 `help:"Reads only: answer once the server has applied SHARELOG_IN up to this stream sequence (the streamSeq a write's answer gives), so that a read from any replica sees that write; waits at most 5 s." env:"SHARELOG_AFTER_SEQ" name:"after-seq" placeholder:"SEQ"`
}

func (f ClientFlags) client() *slhttp.Client {
	c := slhttp.NewClient(f.Server)
	c.Token, c.Reason, c.Applied = f.Token, f.Reason, f.AfterSeq
	if f.CA.pool != nil {
		c.TrustCAs(f.CA.pool)
	}
	return c
}

func main() {
	os.Exit(mainStatus())
}

// mainStatus runs the command line of the process and returns its exit
// status, having printed any error; TestREADME runs the same.
func mainStatus() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	var exit exitError
	if err != nil && !errors.As(err, &exit) {
		fmt.Fprintln(os.Stderr, "sharelog:", err)
		if h := accessHint(err); h != "" {
			fmt.Fprintln(os.Stderr, "sharelog:", h)
		}
	}
	return exitCode(err)
}

// exitStatus is nil for status 0, or the exitError ending the process with it.
func exitStatus(status int) error {
	if status == 0 {
		return nil
	}
	return exitError(status)
}

// exitError ends the process with a status and no further message.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run parses args and runs the chosen command; tests call it directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cli CLI
	exited, status := false, 0
	parser, err := kong.New(&cli,
		kong.Name("sharelog"),
		kong.Description(description),
		kong.ExplicitGroups(groups),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Vars{"version": buildVersion()},
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exited, status = true, code }),
	)
	if err != nil {
		return err
	}
	// With COMP_LINE set (by the script of 'sharelog completion'), print the
	// completions of the command line and exit.
	kongplete.Complete(parser)
	if exited {
		return exitStatus(status)
	}
	kctx, err := parser.Parse(args)
	if exited {
		return exitStatus(status)
	}
	if err != nil {
		return err
	}
	return kctx.Run(&Env{Ctx: ctx, Stdout: stdout, Stderr: stderr})
}
