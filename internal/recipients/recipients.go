package recipients

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"
	"github.com/sharelog/sharelog/internal/ledger"
	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest recipients file Parse accepts, in bytes.
const MaxFileSize = 4 << 20

// maxProblems bounds the problems one error lists, so that a badly broken
// file gives a readable error.
const maxProblems = 50

// recipientYAML mirrors ledger.Recipient with YAML names equal to its JSON
// names. TestMirrorMatchesLedger keeps the two in step.
type recipientYAML struct {
	ID               string      `yaml:"id"`
	Name             string      `yaml:"name"`
	Role             string      `yaml:"role"`
	Country          string      `yaml:"country"`
	Regime           string      `yaml:"regime"`
	Channel          channelYAML `yaml:"channel"`
	Contact          string      `yaml:"contact"`
	SLADays          int         `yaml:"slaDays"`
	InquiryAuthority bool        `yaml:"inquiryAuthority"`
}

// channelYAML mirrors ledger.Channel.
type channelYAML struct {
	Type string `yaml:"type"`
	URL  string `yaml:"url"`
}

func (m recipientYAML) recipient() ledger.Recipient {
	return ledger.Recipient{
		ID:               m.ID,
		Name:             m.Name,
		Role:             m.Role,
		Country:          m.Country,
		Regime:           m.Regime,
		Channel:          ledger.Channel{Type: m.Channel.Type, URL: m.Channel.URL},
		Contact:          m.Contact,
		SLADays:          m.SLADays,
		InquiryAuthority: m.InquiryAuthority,
	}
}

// Load reads and validates the recipients file at path; see Parse.
// An error reading the file is returned wrapped, with the path.
func Load(path string) ([]ledger.Recipient, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recipients file: %w", err)
	}
	defer f.Close()
	rs, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("recipients file %s: %w", path, err)
	}
	return rs, nil
}

// Parse reads a recipients file: a YAML document whose only top-level field
// is `recipients`, a list of recipients whose field names are the JSON names
// of ledger.Recipient. Parsing is strict: an unknown field, a duplicate id or
// an entry that breaks a rule of ledger.Recipient is an error. Every problem
// found is returned in one *ledger.InvalidError (code EINVALID) whose
// problems name the place as recipients[INDEX].FIELD and give the line and the
// entry's id. A file over MaxFileSize is refused with ETOOLARGE.
//
// The recipients are returned in file order. `recipients: []` yields an empty,
// non-nil slice.
func Parse(r io.Reader) ([]ledger.Recipient, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read recipients: %w", err)
	}
	if len(b) > MaxFileSize {
		return nil, ledger.Errorf(ledger.ETOOLARGE, "recipients file is over %d bytes", MaxFileSize)
	}

	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, malformed("the file is empty: it needs a top-level recipients list")
		}
		return nil, malformed("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, malformed("%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil, malformed("line %d: only one YAML document is allowed", extra.Line)
	}

	seq, err := recipientsNode(&doc)
	if err != nil {
		return nil, err
	}

	var ps problems
	rs := make([]ledger.Recipient, 0, len(seq.Content))
	nodes := make([]*yaml.Node, 0, len(seq.Content))
	for i, n := range seq.Content {
		n = resolve(n)
		field := fmt.Sprintf("recipients[%d]", i)
		if n.Kind != yaml.MappingNode {
			ps.add(field, "line %d: must be a mapping of recipient fields", n.Line)
			continue
		}
		id := scalarField(n, "id")
		checkFields(&ps, n, field, id, recipientFields)
		if ch := resolve(valueOf(n, "channel")); ch != nil {
			switch ch.Kind {
			case yaml.MappingNode:
				checkFields(&ps, ch, field+".channel", id, channelFields)
			default:
				ps.add(field+".channel", "line %d: must be a mapping such as {type: nats}%s", ch.Line, idNote(id))
				continue
			}
		}
		var m recipientYAML
		if err := n.Decode(&m); err != nil {
			var te *yaml.TypeError
			if errors.As(err, &te) {
				for _, e := range te.Errors {
					ps.add(field, "%s%s", e, idNote(id))
				}
				continue
			}
			ps.add(field, "%v%s", err, idNote(id))
			continue
		}
		rs = append(rs, m.recipient())
		nodes = append(nodes, n)
	}
	if len(ps.list) == 0 {
		validate(&ps, rs, nodes)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	return rs, nil
}

// recipientsNode returns the sequence under the document's top-level
// recipients field.
func recipientsNode(doc *yaml.Node) (*yaml.Node, error) {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = resolve(root.Content[0])
	}
	if root.Kind != yaml.MappingNode {
		return nil, malformed("line %d: the top level must be a mapping with a recipients list", root.Line)
	}
	var seq *yaml.Node
	var ps problems
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		if k.Value != "recipients" {
			ps.add(k.Value, "line %d: unknown top-level field %q (the only one is recipients)", k.Line, k.Value)
			continue
		}
		if v.Kind != yaml.SequenceNode {
			ps.add("recipients", "line %d: must be a list", v.Line)
			continue
		}
		seq = v
	}
	if err := ps.err(); err != nil {
		return nil, err
	}
	if seq == nil {
		return nil, ledger.Invalid(ledger.ReasonInvalidData, "recipients", "missing top-level recipients list")
	}
	return seq, nil
}

// Validate checks recipients that did not come from Parse (which validates
// already): each must satisfy ledger.Recipient's rules and ids must be
// unique. It returns a *ledger.InvalidError listing every problem, or nil.
func Validate(rs []ledger.Recipient) error {
	var ps problems
	validate(&ps, rs, nil)
	return ps.err()
}

// validate adds a problem for every rule rs breaks. nodes, when not nil,
// holds each recipient's YAML node, for line numbers.
func validate(ps *problems, rs []ledger.Recipient, nodes []*yaml.Node) {
	v := validatorInstance()
	seen := make(map[string]int, len(rs))
	for i, r := range rs {
		var n *yaml.Node
		if nodes != nil {
			n = nodes[i]
		}
		field := fmt.Sprintf("recipients[%d]", i)
		if err := v.Struct(r); err != nil {
			var ves validator.ValidationErrors
			if !errors.As(err, &ves) {
				ps.add(field, "%v%s", err, idNote(r.ID))
				continue
			}
			for _, fe := range ves {
				path := fieldPath(fe)
				ps.add(field+"."+path, "%s%s", lineNote(n, path), describe(fe, r.ID))
			}
		}
		if r.Channel.Type != "webhook" && r.Channel.URL != "" {
			ps.add(field+".channel.url", "%sonly a webhook channel has a url%s", lineNote(n, "channel.url"), idNote(r.ID))
		}
		if r.Channel.Type == "webhook" && r.Channel.URL != "" {
			u, err := url.Parse(r.Channel.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				ps.add(field+".channel.url", "%smust be an absolute http or https URL%s", lineNote(n, "channel.url"), idNote(r.ID))
			}
		}
		if r.ID == "" {
			continue
		}
		if j, dup := seen[r.ID]; dup {
			first := fmt.Sprintf("recipients[%d]", j)
			if nodes != nil {
				first += fmt.Sprintf(", line %d", nodes[j].Line)
			}
			ps.add(field+".id", "%sduplicate id %q (first at %s)", lineNote(n, "id"), r.ID, first)
			continue
		}
		seen[r.ID] = i
	}
}

var (
	validateOnce sync.Once
	validate10   *validator.Validate
)

// validatorInstance returns the shared validator, with the slug rule
// registered and fields named by their JSON names.
func validatorInstance() *validator.Validate {
	validateOnce.Do(func() {
		v := validator.New(validator.WithRequiredStructEnabled())
		v.RegisterTagNameFunc(jsonName)
		for name, rule := range ledger.FieldRules {
			if err := v.RegisterValidation(name, func(fl validator.FieldLevel) bool { return rule(fl.Field().String()) }); err != nil {
				panic(err)
			}
		}
		validate10 = v
	})
	return validate10
}

// jsonName returns a struct field's JSON name, or "" for a field JSON skips.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

// fieldNames returns the JSON names of the fields of struct type t.
func fieldNames(t reflect.Type) map[string]bool {
	m := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		if n := jsonName(t.Field(i)); n != "" {
			m[n] = true
		}
	}
	return m
}

var (
	recipientFields = fieldNames(reflect.TypeFor[ledger.Recipient]())
	channelFields   = fieldNames(reflect.TypeFor[ledger.Channel]())
)

// fieldPath returns the field's path below the recipient, such as
// "channel.url", dropping the leading struct name from the namespace.
func fieldPath(fe validator.FieldError) string {
	ns := fe.Namespace()
	if _, rest, ok := strings.Cut(ns, "."); ok {
		return rest
	}
	return ns
}

// describe says in words what rule fe broke. It repeats the offending value
// only for short coded fields, never for free text such as contact.
func describe(fe validator.FieldError, id string) string {
	val := ""
	if s, ok := fe.Value().(string); ok && s != "" && len(s) <= ledger.MaxSlugLen {
		val = fmt.Sprintf(", got %q", s)
	}
	var msg string
	switch fe.Tag() {
	case "required":
		return "is required" + idNote(id)
	case "required_if":
		return "is required for a webhook channel" + idNote(id)
	case "slug":
		msg = fmt.Sprintf("must be a lowercase slug (a-z, 0-9, single hyphens between, at most %d characters)", ledger.MaxSlugLen)
		if len(fe.Value().(string)) > ledger.MaxSlugLen {
			return msg + idNote("")
		}
		return msg + val
	case "oneof":
		msg = "must be one of " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "regime":
		msg = "must be one of " + strings.Join(ledger.AllRegimes, ", ")
	case "iso3166_1_alpha2":
		msg = "must be an ISO 3166-1 alpha-2 country code in capitals, such as GB"
	case "url", "startswith":
		msg = "must be an absolute http or https URL"
		val = ""
	case "max":
		if fe.Kind() == reflect.String {
			return fmt.Sprintf("must be at most %s characters%s", fe.Param(), idNote(id))
		}
		msg = "must be at most " + fe.Param()
		val = fmt.Sprintf(", got %v", fe.Value())
	case "min":
		msg = "must be at least " + fe.Param()
		val = fmt.Sprintf(", got %v", fe.Value())
	default:
		msg = "breaks the rule " + fe.Tag()
	}
	return msg + val + idNote(id)
}

// idNote names the entry by its id, when it has one that is safe to repeat.
func idNote(id string) string {
	if id == "" || len(id) > ledger.MaxSlugLen {
		return ""
	}
	return fmt.Sprintf(" (id %q)", id)
}

// lineNote returns "line N: " for the field at path within n (or n itself
// when the field is absent), or "" when n is nil.
func lineNote(n *yaml.Node, path string) string {
	if n == nil {
		return ""
	}
	line := n.Line
	cur := n
	for _, part := range strings.Split(path, ".") {
		v := resolve(valueOf(cur, part))
		if v == nil {
			break
		}
		line = v.Line
		cur = v
	}
	return fmt.Sprintf("line %d: ", line)
}

// checkFields adds a problem for every key of mapping n not in allowed.
func checkFields(ps *problems, n *yaml.Node, field, id string, allowed map[string]bool) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !allowed[k.Value] {
			ps.add(field, "line %d: unknown field %q%s", k.Line, k.Value, idNote(id))
		}
	}
}

// valueOf returns the value of key in mapping n, or nil.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// scalarField returns the scalar value of key in mapping n, or "".
func scalarField(n *yaml.Node, key string) string {
	if v := resolve(valueOf(n, key)); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// problems collects the problems of a recipients file.
type problems struct {
	list []ledger.Problem
	more int
}

func (ps *problems) add(field, format string, args ...any) {
	ps.addReason(ledger.ReasonInvalidData, field, format, args...)
}

func (ps *problems) addReason(reason ledger.Reason, field, format string, args ...any) {
	if len(ps.list) >= maxProblems {
		ps.more++
		return
	}
	ps.list = append(ps.list, ledger.Problem{Reason: reason, Field: field, Detail: fmt.Sprintf(format, args...)})
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := ps.list
	if ps.more > 0 {
		list = append(list, ledger.Problem{Reason: ledger.ReasonInvalidData, Detail: fmt.Sprintf("and %d more problems", ps.more)})
	}
	return &ledger.InvalidError{Problems: list}
}

// malformed returns an error for a file that is not a usable YAML document.
func malformed(format string, args ...any) error {
	return ledger.Invalid(ledger.ReasonMalformed, "", format, args...)
}
