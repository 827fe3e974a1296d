package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rogpeppe/go-internal/testscript"
)

// The README's walkthrough, between the markers <!-- readme-test: begin -->
// and <!-- readme-test: end -->, runs in TestREADME as written, top to
// bottom, through testscript (as Go's own CLI tests run): each ```sh block is
// a shell script run with sh in one work directory holding a copy of deploy/,
// with sharelog, and stand-ins for nats and curl (below), on PATH. A plain
// ``` block right after a ```sh block is that block's standard output, which
// must match once times, durations, hashes and the key's host name are
// blanked and runs of spaces are made one. A block that only asks questions
// (who, status, report...) is run again for up to 10 s until it matches, since
// notices are delivered in the background. The ```sh block after the marker
// <!-- readme-test: serve --> is run in the background, and the test waits
// until the server is ready. The server listens on free loopback ports
// instead of 8080 and 4222: SHARELOG_* variables point sharelog at them, and
// the stand-ins for nats and curl map the README's addresses to them.

// readmeCommands are the programs the script runs, as testscript.Main gives
// them: this test binary, run under those names.
var readmeCommands = map[string]func(){
	"sharelog": func() { mapArgs(); os.Exit(mainStatus()) },
	"nats":     func() { os.Exit(natsStandIn(os.Args[1:])) },
	"curl":     func() { os.Exit(curlStandIn(os.Args[1:])) },
}

// mapArgs maps the README's addresses in sharelog's arguments
// (checkpoints --nats URL).
func mapArgs() {
	for i := range os.Args {
		os.Args[i] = mapAddr(os.Args[i])
	}
}

// mapAddr replaces the README's default addresses with the test server's.
func mapAddr(s string) string {
	s = strings.ReplaceAll(s, "127.0.0.1:4222", os.Getenv("SHARELOG_NATS_LISTEN"))
	return strings.ReplaceAll(s, "127.0.0.1:8080", os.Getenv("SHARELOG_HTTP"))
}

// natsStandIn does what the README asks of the nats CLI: pub --jetstream
// SUBJECT BODY [-H K:V]..., and stream get STREAM SEQ (printed as nats does).
func natsStandIn(args []string) int {
	server := "nats://127.0.0.1:4222"
	var pos []string
	hdr := natsio.Header{}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "--server", "-s":
			i++
			server = args[i]
		case "-H":
			i++
			k, v, _ := strings.Cut(args[i], ":")
			hdr.Add(k, v)
		case "--jetstream":
		default:
			pos = append(pos, a)
		}
	}
	nc, err := natsio.Connect(mapAddr(server))
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats:", err)
		return 1
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch {
	case len(pos) == 3 && pos[0] == "pub":
		msg := &natsio.Msg{Subject: pos[1], Data: []byte(pos[2]), Header: hdr}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			fmt.Fprintln(os.Stderr, "nats:", err)
			return 1
		}
		return 0
	case len(pos) == 4 && pos[0] == "stream" && pos[1] == "get":
		s, err := js.Stream(ctx, pos[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "nats:", err)
			return 1
		}
		var seq uint64
		fmt.Sscan(pos[3], &seq)
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			fmt.Fprintln(os.Stderr, "nats:", err)
			return 1
		}
		fmt.Printf("Item: %s#%d received %s (%s) on Subject %s\n\nHeaders:\n", pos[2], m.Sequence, m.Time.UTC(), time.Since(m.Time).Round(10*time.Millisecond), m.Subject)
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range m.Header {
				if !yield(k) {
					return
				}
			}
		})
		for _, k := range keys {
			for _, v := range m.Header[k] {
				fmt.Printf("  %s: %s\n", k, v)
			}
		}
		fmt.Printf("\n%s\n", m.Data)
		return 0
	}
	fmt.Fprintf(os.Stderr, "nats stand-in: cannot do %q\n", args)
	return 2
}

// curlStandIn does what the README asks of curl: -sS -X METHOD URL
// -H 'K: V'... --data-binary @FILE, printing the response body.
func curlStandIn(args []string) int {
	method, url := http.MethodGet, ""
	var body io.Reader
	hdr := http.Header{}
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "-sS", "-s", "-S":
		case "-X":
			i++
			method = args[i]
		case "-H":
			i++
			k, v, _ := strings.Cut(args[i], ":")
			hdr.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		case "--data-binary":
			i++
			b, err := os.ReadFile(strings.TrimPrefix(args[i], "@"))
			if err != nil {
				fmt.Fprintln(os.Stderr, "curl:", err)
				return 26
			}
			body = bytes.NewReader(b)
		default:
			url = mapAddr(a)
		}
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		fmt.Fprintln(os.Stderr, "curl:", err)
		return 3
	}
	req.Header = hdr
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "curl:", err)
		return 7
	}
	defer resp.Body.Close()
	io.Copy(os.Stdout, resp.Body)
	return 0
}

// readmeBlock is one ```sh block of the walkthrough and the output shown after it.
type readmeBlock struct {
	script     string
	output     *string
	background bool
	line       int
}

// readmeWalkthrough returns the walkthrough's blocks.
func readmeWalkthrough(t *testing.T, readme string) []readmeBlock {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "<!-- readme-test: begin -->")
	walk, _, ok2 := strings.Cut(rest, "<!-- readme-test: end -->")
	if !ok || !ok2 {
		t.Fatal("README.md has no <!-- readme-test: begin --> ... <!-- readme-test: end --> walkthrough")
	}
	offset := strings.Count(readme[:strings.Index(readme, walk)], "\n")
	lines := strings.Split(walk, "\n")
	var blocks []readmeBlock
	background := false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.TrimSpace(l) == "<!-- readme-test: serve -->":
			background = true
		case strings.HasPrefix(l, "```"):
			info := strings.TrimPrefix(l, "```")
			j := i + 1
			for j < len(lines) && !strings.HasPrefix(lines[j], "```") {
				j++
			}
			body := strings.Join(lines[i+1:j], "\n") + "\n"
			switch {
			case info == "sh":
				blocks = append(blocks, readmeBlock{script: body, background: background, line: offset + i + 1})
				background = false
			case info == "" && len(blocks) > 0 && blocks[len(blocks)-1].output == nil && blankSince(lines, blocks[len(blocks)-1].line-offset, i):
				blocks[len(blocks)-1].output = &body
			}
			i = j
		}
	}
	return blocks
}

// blankSince says the lines between the end of the block starting at line
// from (1-based, in lines) and line to hold nothing but the block itself.
func blankSince(lines []string, from, to int) bool {
	k := from
	for k < len(lines) && !strings.HasPrefix(lines[k], "```") {
		k++
	}
	for k++; k < to; k++ {
		if strings.TrimSpace(lines[k]) != "" {
			return false
		}
	}
	return true
}

var (
	reTime        = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?( ?\+0000 UTC|Z)?`)
	reDuration    = regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m)\b`)
	reHash        = regexp.MustCompile(`[A-Za-z0-9+/]{43}=`)
	reKeyName     = regexp.MustCompile(`sharelog/[A-Za-z0-9._-]+`)
	reSpaces      = regexp.MustCompile(` +`)
	questions     = regexp.MustCompile(`^sharelog (who|status|report|disclosures|disclosure|recipients|manual|obligations|checkpoints|prove|consistency)\b`)
	reCheckpoints = regexp.MustCompile(`\d+ checkpoint signatures?`)
)

// normalise blanks what differs from run to run.
func normalise(s string) string {
	s = reTime.ReplaceAllString(s, "TIME")
	s = reDuration.ReplaceAllString(s, "DUR")
	s = reHash.ReplaceAllString(s, "HASH")
	s = reKeyName.ReplaceAllString(s, "sharelog/NAME")
	s = reSpaces.ReplaceAllString(s, " ")
	// The server signs checkpoints by the clock: how many it signed during
	// the walkthrough depends on how fast it ran.
	s = reCheckpoints.ReplaceAllString(s, "N checkpoint signatures")
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.TrimRight(l, " "))
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}

// onlyQuestions says every command of a script only reads.
func onlyQuestions(script string) bool {
	n := 0
	for _, l := range strings.Split(script, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if !questions.MatchString(l) {
			return false
		}
		n++
	}
	return n > 0
}

// TestREADME runs README.md's walkthrough as written.
func TestREADME(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeWalkthrough(t, string(readme))
	if len(blocks) < 5 {
		t.Fatalf("README walkthrough has %d ```sh blocks", len(blocks))
	}
	// The script: one file per block, run in order.
	var script strings.Builder
	files := map[string]string{}
	for i, b := range blocks {
		name := fmt.Sprintf("block%02d.sh", i)
		files[name] = b.script
		fmt.Fprintf(&script, "# README.md line %d\n", b.line)
		switch {
		case b.background:
			// One command, run directly so that kill reaches it.
			cmd, _, _ := strings.Cut(strings.TrimSpace(b.script), "#")
			fmt.Fprintf(&script, "exec %s &serve&\nreadyz\n", strings.TrimSpace(cmd))
		case b.output != nil:
			files[name+".out"] = *b.output
			retry := ""
			if onlyQuestions(b.script) {
				retry = " retry"
			}
			fmt.Fprintf(&script, "block %s %s.out%s\n", name, name, retry)
		case onlyQuestions(b.script):
			fmt.Fprintf(&script, "block %s - retry\n", name)
		default:
			fmt.Fprintf(&script, "exec sh %s\n", name)
		}
	}
	script.WriteString("kill -INT serve\nwait serve\n")
	dir := t.TempDir()
	var archive strings.Builder
	archive.WriteString(script.String())
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range files {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&archive, "-- %s --\n%s", name, files[name])
	}
	if err := os.WriteFile(filepath.Join(dir, "readme.txtar"), []byte(archive.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	httpAddr, natsAddr := freeAddr(t), freeAddr(t)
	deploy, err := filepath.Abs(filepath.Join("..", "..", "deploy"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: dir,
		Setup: func(env *testscript.Env) error {
			env.Setenv("SHARELOG_HTTP", httpAddr)
			env.Setenv("SHARELOG_NATS_LISTEN", natsAddr)
			env.Setenv("SHARELOG_SERVER", "http://"+httpAddr)
			env.Setenv("SHARELOG_LOG_LEVEL", "warn")
			return os.CopyFS(filepath.Join(env.WorkDir, "deploy"), os.DirFS(deploy))
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// readyz waits until the server answers /readyz.
			"readyz": func(ts *testscript.TestScript, neg bool, args []string) {
				deadline := time.Now().Add(60 * time.Second)
				for {
					resp, err := http.Get(ts.Getenv("SHARELOG_SERVER") + "/readyz")
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							return
						}
					}
					if time.Now().After(deadline) {
						ts.Fatalf("server not ready after 60s: %v", err)
					}
					time.Sleep(100 * time.Millisecond)
				}
			},
			// block SCRIPT WANT|- [retry] runs SCRIPT with sh and compares its
			// standard output with WANT, normalised (- : any output); with
			// retry, until it succeeds and matches, for up to 10 s.
			"block": func(ts *testscript.TestScript, neg bool, args []string) {
				want := ""
				if args[1] != "-" {
					want = normalise(ts.ReadFile(args[1]))
				}
				deadline := time.Now().Add(10 * time.Second)
				for {
					err := ts.Exec("sh", args[0])
					got := normalise(ts.ReadFile("stdout"))
					if err != nil && (len(args) < 3 || time.Now().After(deadline)) {
						ts.Fatalf("sh %s: %v\n%s", args[0], err, ts.ReadFile("stderr"))
					}
					if err == nil && (args[1] == "-" || got == want) {
						return
					}
					if len(args) < 3 || time.Now().After(deadline) {
						ts.Fatalf("%s: the output differs from README.md's (normalised)\n--- README.md\n%s\n--- got\n%s\n--- stdout as printed\n%s", args[0], want, got, ts.ReadFile("stdout"))
					}
					time.Sleep(200 * time.Millisecond)
				}
			},
		},
	})
}
