package ledger

import (
	"errors"
	"testing"
)

func TestReplay(t *testing.T) {
	a, b := []byte("digest-a"), []byte("digest-b")
	tests := []struct {
		name               string
		recorded, replayed []byte
		want               Outcome
		conflict           bool
	}{
		{"idempotency: the same content again is a duplicate", a, a, Duplicate, false},
		{"Art. 5(1)(d): other content under a recorded (source, id) is refused, the record is not silently replaced", a, b, Rejected, true},
		{"Art. 5(1)(d): other content is refused even when it is empty", a, []byte{}, Rejected, true},
		{"cannot tell (its subject forgotten, its content unreadable): a duplicate", nil, b, Duplicate, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Replay(tt.recorded, tt.replayed)
			if got != tt.want {
				t.Errorf("Replay = %v, want %v", got, tt.want)
			}
			var ie *InvalidError
			if tt.conflict != (errors.As(err, &ie) && ie.Reason() == ReasonConflict && ie.Problems[0].Field == "id") {
				t.Errorf("Replay error = %v, want a conflict on id: %v", err, tt.conflict)
			}
		})
	}
}
