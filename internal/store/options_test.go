package store

import "testing"

// TestBadgerLevelZero: the ledger's Badger merges level 0 into the base
// level only once it holds 8 tables, and stalls writes at 16 (badgerOptions
// gives the measured reason), as opened, not only as asked.
func TestBadgerLevelZero(t *testing.T) {
	s := openTest(t, testConfig(t))
	o := s.db.Opts()
	if o.NumLevelZeroTables != 8 || o.NumLevelZeroTablesStall != 16 {
		t.Errorf("level 0: compacted at %d tables, stalled at %d; want 8 and 16", o.NumLevelZeroTables, o.NumLevelZeroTablesStall)
	}
}
