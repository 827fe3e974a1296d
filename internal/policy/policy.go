// Package policy reads sharelog's policy file (serve --policy FILE): the
// controller's choices that the law leaves open, such as when notices to
// recipients are due. It is YAML:
//
//	deadlines:
//	  default: {months: 1}        # one calendar month after the decision
//	  regimes:
//	    dpa-part3: {days: 14}     # per regime, months then days
//
//	retention:
//	  erasureAfter: 2160h         # forget an erased person this long after the decision, answered or not
//	  rules:                      # keep disclosures per purpose (and regime), then forget the person
//	    - {purpose: essential.service, regime: uk-gdpr, months: 3}
//
// A recipient's slaDays (in the recipient registry) can only bring a due
// date forward; see ledger.Deadlines. Retention is ledger.ForgetPolicy: a
// person is forgotten when all of their disclosures are past a rule's
// period (a disclosure no rule covers is kept), unless a legal hold covers
// them; see package retention. Unknown fields are errors, so that a
// misspelt setting is not silently ignored.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest policy file Load accepts, in bytes.
const MaxFileSize = 1 << 20

// Policy is the content of a policy file. The zero Policy is the default:
// notices due one calendar month after the decision.
type Policy struct {
	Deadlines ledger.Deadlines `yaml:"deadlines"`
	Retention Retention        `yaml:"retention"`
}

// Retention is the policy file's retention section.
type Retention struct {
	// ErasureAfter, when set, forgets the subject of an erasure this long
	// after its decision even while recipients have not answered.
	ErasureAfter time.Duration          `yaml:"erasureAfter"`
	Rules        []ledger.RetentionRule `yaml:"rules"`
}

// ForgetPolicy returns the retention section as the store's ForgetPolicy.
func (r Retention) ForgetPolicy() ledger.ForgetPolicy {
	return ledger.ForgetPolicy{ErasureAfter: r.ErasureAfter, Retention: r.Rules}
}

// Load reads and checks the policy file at path.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, fmt.Errorf("policy %s: larger than %d bytes", path, MaxFileSize)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// Parse decodes and checks a policy document. An empty document is the
// default policy.
func Parse(b []byte) (*Policy, error) {
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := p.Deadlines.Validate(); err != nil {
		return nil, err
	}
	if p.Retention.ErasureAfter < 0 {
		return nil, errors.New("retention: erasureAfter must not be negative")
	}
	for _, r := range p.Retention.Rules {
		if err := r.Validate(); err != nil {
			return nil, err
		}
	}
	return &p, nil
}
