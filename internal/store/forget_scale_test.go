package store

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// TestCompactAtScale checks physical erasure in a multi-level LSM tree:
// 200,000 disclosures, one subject forgotten, its wrapped data key found in
// a table before Compact and in no file after. It takes about 12 s, so it
// runs only with SHARELOG_SCALE_TEST=1.
func TestCompactAtScale(t *testing.T) {
	if os.Getenv("SHARELOG_SCALE_TEST") == "" {
		t.Skip("set SHARELOG_SCALE_TEST=1 to run")
	}
	plainFiles(t)
	n := 200_000
	s := openTest(t, testConfig(t))
	applyBatch(t, s, rcp(t, "web", "nats", "", 0))
	for i := 0; i < n; i += 1000 {
		var evs []*ledger.Event
		for j := i; j < i+1000; j++ {
			evs = append(evs, disc{id: fmt.Sprint("d", j), recipient: "web", subjects: []ledger.Subject{subj(fmt.Sprint("P", j%(n/10)))}, at: day(1).Add(time.Duration(j) * time.Second)}.event(t))
		}
		applyBatch(t, s, evs...)
	}
	ctx := context.Background()
	w := saltOf(t, s, subj("P7"))
	if hits := filesContain(t, s.db.Opts().Dir, w); len(hits) == 0 {
		t.Fatal("the salt is in no file before forgetting: the test cannot tell")
	}
	h, _ := s.SubjectHashOf(ctx, subj("P7"))
	ev := newEvent(t, ledger.TypeSubjectForgotten, "sharelog/retention", "forget-"+h, &ledger.SubjectForgotten{SubjectHash: h, Reason: ledger.ForgetRetention, At: day(25)})
	ev.Internal = true
	applyBatch(t, s, ev)
	st, err := s.Compact(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compact took %v", st.Took)
	if hits := filesContain(t, s.db.Opts().Dir, w); len(hits) != 0 {
		t.Errorf("destroyed salt still in %v after Compact", hits)
	}
	for i, l := range s.db.Levels() {
		if l.NumTables > 0 {
			t.Logf("level %d: %d tables", i, l.NumTables)
		}
	}
}
