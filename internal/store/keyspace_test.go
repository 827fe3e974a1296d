package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// TestKeySpace prints the key space of the ledger in $SHARELOG_KEYSPACE
// (a copy of a ledger directory, such as a bench run's, with its key files
// beside it in the layout sharelog serve uses: DIR/ledger, DIR/site.key,
// DIR/master.key) grouped by kind: count, key bytes, value bytes. Values
// kept in Badger's value log count by their pointer's size in the LSM tree
// (vlog bytes are shown apart). It is a measuring tool, skipped otherwise.
func TestKeySpace(t *testing.T) {
	s := openKeySpace(t)
	type row struct{ count, keys, values, vlog int64 }
	rows := map[byte]*row{}
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()
			r := rows[k[0]]
			if r == nil {
				r = &row{}
				rows[k[0]] = r
			}
			r.count++
			r.keys += int64(len(k))
			if vs := item.ValueSize(); vs == 0 || item.EstimatedSize() == int64(len(k))+vs { // inline (Item.EstimatedSize)
				r.values += item.ValueSize()
			} else {
				r.vlog += item.ValueSize()
				r.values += 12 // value pointer
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	kinds := make([]byte, 0, len(rows))
	for k := range rows {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i] < kinds[j] })
	var tot row
	fmt.Printf("%-6s %10s %12s %12s %12s %10s\n", "kind", "count", "key bytes", "value bytes", "vlog bytes", "LSM B/key")
	for _, k := range kinds {
		r := rows[k]
		tot.count += r.count
		tot.keys += r.keys
		tot.values += r.values
		tot.vlog += r.vlog
		fmt.Printf("%-6q %10d %12d %12d %12d %10.1f\n", k, r.count, r.keys, r.values, r.vlog, float64(r.keys+r.values)/float64(r.count))
	}
	fmt.Printf("%-6s %10d %12d %12d %12d\n", "all", tot.count, tot.keys, tot.values, tot.vlog)
}

// TestKeySpaceTables prints the tables of each level of Badger's LSM tree
// of the ledger in $SHARELOG_KEYSPACE (as TestKeySpace), grouped by the
// kinds of their first and last keys, and how many tables of the last
// level each group's key ranges overlap: what merging one into the level
// below rewrites. A table spanning the end of one kind and the start of a
// kind keyed in Seq order covers all that kind's older keys (entryKey).
// It is a measuring tool, skipped otherwise.
func TestKeySpaceTables(t *testing.T) {
	s := openKeySpace(t)
	levels := map[int][]badger.TableInfo{}
	last := 0
	for _, ti := range s.db.Tables() {
		levels[ti.Level] = append(levels[ti.Level], ti)
		last = max(last, ti.Level)
	}
	for l := 0; l <= last; l++ {
		var size uint64
		type group struct{ tables, overlapMax, overlapSum int }
		groups := map[string]*group{}
		for _, ti := range levels[l] {
			size += uint64(ti.OnDiskSize)
			g := fmt.Sprintf("%q-%q", ti.Left[0], ti.Right[0])
			if groups[g] == nil {
				groups[g] = &group{}
			}
			n := 0
			for _, u := range levels[last] {
				if l < last && badgerKeyCompare(u.Right, ti.Left) >= 0 && badgerKeyCompare(u.Left, ti.Right) <= 0 {
					n++
				}
			}
			groups[g].tables++
			groups[g].overlapSum += n
			groups[g].overlapMax = max(groups[g].overlapMax, n)
		}
		fmt.Printf("L%d: %d tables, %d MiB\n", l, len(levels[l]), size>>20)
		names := make([]string, 0, len(groups))
		for g := range groups {
			names = append(names, g)
		}
		sort.Strings(names)
		for _, g := range names {
			r := groups[g]
			fmt.Printf("   %-12s %4d tables, overlapping L%d tables: mean %.1f, max %d\n", g, r.tables, last, float64(r.overlapSum)/float64(r.tables), r.overlapMax)
		}
	}
}

// badgerKeyCompare compares two of Badger's table bounds, keys with their
// 8-byte version, by key.
func badgerKeyCompare(a, b []byte) int {
	return bytes.Compare(a[:len(a)-8], b[:len(b)-8])
}

// openKeySpace opens the ledger $SHARELOG_KEYSPACE names for the measuring
// tools above, and skips the test when it names none.
func openKeySpace(t *testing.T) *Store {
	t.Helper()
	dir := os.Getenv("SHARELOG_KEYSPACE")
	if dir == "" {
		t.Skip("SHARELOG_KEYSPACE names no ledger")
	}
	cfg := Config{Dir: filepath.Join(dir, "ledger"), KeyFile: filepath.Join(dir, "site.key"), EncryptAtRest: os.Getenv("SHARELOG_KEYSPACE_PLAIN") == ""}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
