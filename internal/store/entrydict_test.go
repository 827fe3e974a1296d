package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	"golang.org/x/mod/sumdb/note"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/ledger/ledgertest"
	"github.com/sharelog/sharelog/internal/vocab"
)

var writeEntryDict = flag.Bool("entrydict.write", false, "write entry1.dict from the event vocabulary (only for a new dictionary, under a new file name and format byte)")

// entryDict1SHA256 pins entry1.dict. Values in every ledger written since
// were compressed with it and open only with it: changing it needs a new
// dictionary file and format byte, never a new hash here.
const entryDict1SHA256 = "ae749807564bc7ffd9e3bcc78e1fba353499d863cce673a4d55a25281174ad6d"

func TestEntryDictionary(t *testing.T) {
	if *writeEntryDict {
		if err := os.WriteFile("entry1.dict", buildEntryDict(t), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := entryDictHash(entryDict1)
	if got := hex.EncodeToString(sum[:]); got != entryDict1SHA256 {
		t.Fatalf("entry1.dict has SHA-256 %s, pinned %s: values compressed with it would no longer open; a new dictionary needs a new file and format byte", got, entryDict1SHA256)
	}
}

// buildEntryDict makes a raw dictionary from the event vocabulary: the
// vocabularies' values, then for each event type (disclosures last, S2
// reaching the end of a dictionary most cheaply) an event in the envelope
// the ingest records (cloudevents' plain path writes what sdk-go's
// event.WriteJson would) whose data names every field of the type.
func buildEntryDict(t *testing.T) []byte {
	v, err := vocab.Load()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	list := func(keys []string) {
		b.WriteString(`[`)
		for i, k := range keys {
			if i > 0 {
				b.WriteString(`,`)
			}
			b.WriteString(`"` + k + `"`)
		}
		b.WriteString(`]`)
	}
	var bases, purposes, cats []string
	for _, x := range v.LawfulBases() {
		bases = append(bases, x.Key)
	}
	for _, x := range v.Purposes() {
		purposes = append(purposes, x.Key)
	}
	for _, x := range v.Categories() {
		cats = append(cats, x.Key)
	}
	list(bases)
	list(purposes)
	list(ledger.AllRegimes)
	list(cats)
	// Events sharelog makes itself (ledger.MarshalEvent) put time before
	// datacontenttype.
	b.WriteString(`{"specversion":"1.0","id":"","source":"","type":"","time":"2026-01-01T00:00:00Z","datacontenttype":"application/json","dataschema":"","data":{}}`)
	types := make([]string, 0, len(ledger.Types))
	for typ := range ledger.Types {
		if typ != ledger.TypeDisclosure {
			types = append(types, typ)
		}
	}
	slices.Sort(types)
	types = append(types, ledger.TypeDisclosure)
	for _, typ := range types {
		b.WriteString(`{"specversion":"1.0","id":"","source":"","type":"` + typ +
			`","datacontenttype":"application/json","time":"2026-01-01T00:00:00Z","data":`)
		skeleton(&b, reflect.TypeOf(ledger.Types[typ]()).Elem(), 0)
		b.WriteString(`}`)
	}
	return b.Bytes()
}

var timeType = reflect.TypeFor[time.Time]()

// skeleton writes a JSON value of type t: objects with every field name,
// arrays of one element, empty strings, zero numbers.
func skeleton(b *bytes.Buffer, t reflect.Type, depth int) {
	if depth > 4 {
		b.WriteString(`null`)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		skeleton(b, t.Elem(), depth)
	case reflect.Struct:
		if t == timeType {
			b.WriteString(`"2026-01-01T00:00:00Z"`)
			return
		}
		b.WriteString(`{`)
		fields(b, t, depth, true)
		b.WriteString(`}`)
	case reflect.Slice, reflect.Array:
		b.WriteString(`[`)
		skeleton(b, t.Elem(), depth+1)
		b.WriteString(`]`)
	case reflect.Map:
		b.WriteString(`{}`)
	case reflect.String:
		b.WriteString(`""`)
	case reflect.Bool:
		b.WriteString(`true`)
	case reflect.Interface:
		b.WriteString(`null`)
	default:
		b.WriteString(`0`)
	}
}

// fields writes the members of struct t, those of embedded structs in
// place, as encoding/json does; it reports whether it wrote none yet.
func fields(b *bytes.Buffer, t reflect.Type, depth int, first bool) bool {
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				first = fields(b, ft, depth, first)
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		if !first {
			b.WriteString(`,`)
		}
		first = false
		b.WriteString(`"` + name + `":`)
		skeleton(b, f.Type, depth+1)
	}
	return first
}

// storedEntryValues appends n disclosures of the test workload to a new
// ledger and returns their entry values, uncompressed.
func storedEntryValues(tb testing.TB, batches int) [][]byte {
	s := openTest(tb, testConfig(tb))
	registerBenchRecipients(tb, s)
	w := newWorkload(1)
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for range batches {
		appendAll(tb, s, w.batch(tb, start))
	}
	var vals [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixEntry}})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := entryValue(it.Item())
			if err != nil {
				return err
			}
			vals = append(vals, v)
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return vals
}

// BenchmarkEntryCompression measures packEntry and unpackEntry per entry
// (disclosures of the test workload, sealed), and reports the stored size
// and the process's CPU time per call (steadier than ns/op on a shared
// machine; it counts the GC's work too).
func BenchmarkEntryCompression(b *testing.B) {
	vals := storedEntryValues(b, 1)
	var n, packed int
	for _, v := range vals {
		n += len(v)
		packed += len(packEntry(v))
	}
	b.Run("pack", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime(b)
		for i := 0; b.Loop(); i++ {
			packEntry(vals[i%len(vals)])
		}
		b.ReportMetric(float64(cpuTime(b)-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		b.ReportMetric(float64(n)/float64(len(vals)), "B/entry")
		b.ReportMetric(float64(packed)/float64(len(vals)), "stored-B/entry")
	})
	stored := make([][]byte, len(vals))
	for i, v := range vals {
		stored[i] = packEntry(v)
	}
	b.Run("unpack", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime(b)
		for i := 0; b.Loop(); i++ {
			if _, err := unpackEntry(stored[i%len(stored)]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime(b)-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	})
}

// getEntry reads the entry value of entry seq within txn, uncompressed.
func getEntry(t *testing.T, txn *badger.Txn, seq uint64) []byte {
	t.Helper()
	item, err := getEntryItem(txn, seq)
	if err != nil {
		t.Fatalf("entry %d: %v", seq, err)
	}
	v, err := entryValue(item)
	if err != nil {
		t.Fatalf("entry %d: %v", seq, err)
	}
	return v
}

// TestLedgerWrittenBeforeCompression opens testdata/ledger-v0, the ledger
// of fullLedger as written by the code before entries were compressed
// (commit 1c49efd: entries in the LSM tree, formats 1 and 3), with its keys
// and the verifier of its checkpoint. It verifies as it was signed, answers,
// and takes compressed entries after the old ones; its table, written with
// ZSTD, is compacted into tables of today's compression; it verifies again.
func TestLedgerWrittenBeforeCompression(t *testing.T) {
	ctx := context.Background()
	cfg, verifier := openLedgerV0(t)
	verify := func(size int64) {
		t.Helper()
		res, err := Verify(ctx, VerifyConfig{Dir: cfg.Dir, Verifier: verifier, Logger: cfg.Logger, Deadlines: cfg.Deadlines})
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		// The checkpoint the old code signed at 48 holds the root the
		// entries give now.
		if res.Size != size || res.Checkpoints != 1 || res.Latest != 48 || res.Records < 100 {
			t.Fatalf("Verify = size %d, %d checkpoints up to %d, %d records; want %d entries, the checkpoint at 48, over 100 records", res.Size, res.Checkpoints, res.Latest, res.Records, size)
		}
	}
	verify(48)

	s := openTest(t, cfg)
	formats := func() map[byte]int {
		t.Helper()
		n := map[byte]int{}
		err := s.db.View(func(txn *badger.Txn) error {
			it := newEntryIterator(txn, badger.IteratorOptions{})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				if err := it.Item().Value(func(v []byte) error { n[v[0]]++; return nil }); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if f := formats(); f[entryS2Dict1] != 0 || f[entryPlain] == 0 || f[entrySealed] == 0 {
		t.Fatalf("entry formats in the old ledger = %v, want plain (1) and sealed (3) only", f)
	}
	b2 := ledgertest.Subject("B2")
	before, err := s.Who(ctx, b2)
	if err != nil || before.Disclosures == 0 {
		t.Fatalf("Who(B2) in the old ledger = %+v, %v", before, err)
	}
	for seq := uint64(1); seq <= 48; seq++ {
		if _, err := s.Entry(ctx, seq); err != nil {
			t.Fatalf("Entry(%d) of the old ledger: %v", seq, err)
		}
	}

	// Its index by time, which ledgers no longer write, is the order the
	// listing of every disclosure, merged from the recipients' indexes,
	// must give, page by page.
	var byTime []uint64
	if err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: byTimePrefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			_, seq := splitPos(it.Item().Key())
			byTime = append(byTime, seq)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var listed []uint64
	for f := (ledger.DisclosureFilter{Limit: 7}); ; {
		page, err := s.Disclosures(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Disclosures {
			listed = append(listed, d.Seq)
		}
		if f.After = page.Next; f.After == "" {
			break
		}
	}
	if len(byTime) < 10 || !slices.Equal(listed, byTime) {
		t.Fatalf("every disclosure listed as %v; the old ledger's index by time gives %v", listed, byTime)
	}

	applyBatch(t, s, ledgertest.Disclosure("d-new", "police", b2, ledger.RegimeUKGDPR, "user.name"))
	if f := formats(); f[entryS2Dict1] != 1 {
		t.Fatalf("entry formats after one new disclosure = %v, want one compressed (4)", f)
	}
	// The old entries stay under their old key (e); the new one is under
	// today's (entryKey), and the two read as one ledger.
	if err := s.db.View(func(txn *badger.Txn) error {
		for seq := uint64(1); seq <= 49; seq++ {
			_, errOld := txn.Get(entryV0Key(seq))
			_, errNew := txn.Get(entryKey(seq))
			if old := seq <= 48; (errOld == nil) != old || (errNew == nil) == old {
				return fmt.Errorf("entry %d: under e %v, under entryKey %v; want it under e: %v", seq, errOld, errNew, old)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Entry(ctx, 49); err != nil || e.Seq != 49 {
		t.Fatalf("Entry(49), the first under entryKey: %+v, %v", e, err)
	}
	if err := s.CheckTree(ctx); err != nil {
		t.Fatalf("CheckTree over old and new entries: %v", err)
	}
	after, err := s.Who(ctx, b2)
	if err != nil || after.Disclosures != before.Disclosures+1 {
		t.Fatalf("Who(B2) after a new disclosure = %d disclosures, %v; want %d", after.Disclosures, err, before.Disclosures+1)
	}

	// The old ledger's one table was written with ZSTD; tables are now
	// Snappy (tableCompression). Badger records each table's compression,
	// and a compaction merges the old table with the new ones into tables
	// of today's kind: the ledger answers the same after it.
	oldTable := func() bool {
		for _, ti := range s.db.Tables() {
			if ti.ID == 1 {
				return true
			}
		}
		return false
	}
	if !oldTable() {
		t.Fatal("the old ledger's table 1 (ZSTD) is not among its tables")
	}
	if _, err := s.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if oldTable() {
		t.Fatal("table 1 (ZSTD) still there after Compact")
	}
	if again, err := s.Who(ctx, b2); err != nil || again.Disclosures != after.Disclosures {
		t.Fatalf("Who(B2) after the compaction = %d disclosures, %v; want %d", again.Disclosures, err, after.Disclosures)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	verify(49)
}

// TestPackEntry: entries come back byte for byte, stored smaller; values
// of the formats before compression are read as they are; compressed bytes
// that were changed or cut short, or claim an oversized entry, are refused.
func TestPackEntry(t *testing.T) {
	vals := storedEntryValues(t, 1)
	var n, packed int
	for _, v := range vals {
		if v[0] != entryPlain && v[0] != entrySealed {
			t.Fatalf("entry value format %d", v[0])
		}
		p := packEntry(v)
		if p[0] != entryS2Dict1 {
			t.Fatalf("stored format %d, want %d", p[0], entryS2Dict1)
		}
		got, err := unpackEntry(p)
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("unpackEntry(packEntry(v)) = %q, %v; want %q", got, err, v)
		}
		if old, err := unpackEntry(v); err != nil || !bytes.Equal(old, v) {
			t.Fatalf("unpackEntry of an uncompressed value = %q, %v", old, err)
		}
		n, packed = n+len(v), packed+len(p)
	}
	if packed*10 > n*7 {
		t.Errorf("%d entries: %d bytes stored for %d, want under 70%%", len(vals), packed, n)
	}

	p := packEntry(vals[len(vals)-1])
	bad := bytes.Clone(p)
	bad[len(bad)/2] ^= 0x55
	if got, err := unpackEntry(bad); err == nil && bytes.Equal(got, vals[len(vals)-1]) {
		t.Error("changed compressed bytes give the entry back")
	}
	if _, err := unpackEntry(p[:len(p)-5]); !errors.Is(err, errCorrupt) {
		t.Errorf("truncated: %v, want errCorrupt", err)
	}
	_, hl := binary.Uvarint(p[1:]) // the S2 block's length header
	bomb := binary.AppendUvarint([]byte{entryS2Dict1}, maxEntryLen+1)
	if _, err := unpackEntry(append(bomb, p[1+hl:]...)); !errors.Is(err, errCorrupt) {
		t.Errorf("a value claiming %d bytes: %v, want errCorrupt", maxEntryLen+1, err)
	}
}

// openLedgerV0 copies testdata/ledger-v0 (the ledger of fullLedger as
// written by commit 1c49efd, with its keys) into a new directory and returns
// its configuration and the verifier of its checkpoint.
func openLedgerV0(t *testing.T) (Config, note.Verifier) {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("testdata/ledger-v0")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"site.key", "master.key"} { // git keeps no 0600
		if err := os.Chmod(filepath.Join(root, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	vkey, err := os.ReadFile(filepath.Join(root, "checkpoint.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(string(vkey))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Dir:       filepath.Join(root, "ledger"),
		KeyFile:   filepath.Join(root, "site.key"),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Deadlines: ledger.Deadlines{Regimes: map[string]ledger.Deadline{ledger.RegimeDPAPart3: {Days: 14}}, Calendar: ledgertest.London().Calendar},
	}
	return cfg, verifier
}
