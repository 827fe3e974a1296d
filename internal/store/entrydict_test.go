package store

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/vocab"
)

var writeEntryDict = flag.Bool("entrydict.write", false, "write entry1.dict from the event vocabulary (only for a new dictionary, under a new id)")

// entryDict1SHA256 pins entry1.dict. Values in every ledger written since
// were compressed with it and open only with it: changing the file needs a
// new dictionary id and file, never a new hash here.
const entryDict1SHA256 = "ae749807564bc7ffd9e3bcc78e1fba353499d863cce673a4d55a25281174ad6d"

func TestEntryDictionary(t *testing.T) {
	if *writeEntryDict {
		if err := os.WriteFile("entry1.dict", buildEntryDict(t), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := entryDictHash(entryDict1)
	if got := hex.EncodeToString(sum[:]); got != entryDict1SHA256 {
		t.Fatalf("entry1.dict has SHA-256 %s, pinned %s: values compressed with dictionary %d would no longer open; a new dictionary needs a new id and file", got, entryDict1SHA256, entryDictID)
	}
}

// buildEntryDict makes a raw zstd dictionary from the event vocabulary: the
// vocabularies' values, then for each event type (disclosures last, zstd
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
// (disclosures of the test workload, sealed), and reports the stored size.
func BenchmarkEntryCompression(b *testing.B) {
	vals := storedEntryValues(b, 1)
	var n, packed int
	for _, v := range vals {
		n += len(v)
		packed += len(packEntry(v))
	}
	b.Run("pack", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			packEntry(vals[i%len(vals)])
		}
		b.ReportMetric(float64(n)/float64(len(vals)), "B/entry")
		b.ReportMetric(float64(packed)/float64(len(vals)), "stored-B/entry")
	})
	stored := make([][]byte, len(vals))
	for i, v := range vals {
		stored[i] = packEntry(v)
	}
	b.Run("unpack", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := unpackEntry(stored[i%len(stored)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// getEntry reads the entry value of entry seq within txn, uncompressed.
func getEntry(t *testing.T, txn *badger.Txn, seq uint64) []byte {
	t.Helper()
	v, err := unpackEntry(get(t, txn, entryKey(seq)))
	if err != nil {
		t.Fatalf("entry %d: %v", seq, err)
	}
	return v
}
