// Package policy reads sharelog's policy file (serve --policy FILE): the
// controller's choices that the law leaves open, such as when notices to
// recipients are due. It is YAML:
//
//	deadlines:
//	  default: {months: 1}        # one calendar month after the decision
//	  regimes:
//	    dpa-part3: {days: 14}     # per regime, months then days
//
// A recipient's slaDays (in the recipient registry) can only bring a due
// date forward; see store.Deadlines. Unknown fields are errors, so that a
// misspelt setting is not silently ignored.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"

	"github.com/sharelog/sharelog/internal/store"
)

// MaxFileSize is the largest policy file Load accepts, in bytes.
const MaxFileSize = 1 << 20

// Policy is the content of a policy file. The zero Policy is the default:
// notices due one calendar month after the decision.
type Policy struct {
	Deadlines store.Deadlines `yaml:"deadlines"`
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
	return &p, nil
}
