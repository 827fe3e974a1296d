package cloudevents

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-playground/validator/v10"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/vocab"
)

// The rules for event data have one source of truth at run time: the Go
// types of internal/ledger with their validate tags, and the vocabularies.
// The JSON Schemas in schemas/ are the published form of the same contract;
// TestSchemaAndGoAgree and TestSchemaAgreesOnGoldenInputs hold the two
// together.

var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,199}$`)

// validScheme reports whether s is a subject scheme: a lowercase word of
// at most 32 characters (a-z, 0-9, hyphens), starting with a letter.
func validScheme(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// nullError is returned while decoding for a JSON null where the Go type
// wants a value: the contract has no nullable member (except a change's
// value, which may be any JSON).
type nullError struct{ t reflect.Type }

func (e *nullError) Error() string { return "null where " + e.t.String() + " is wanted" }

// dataOptions decode event data in one pass of the JSON v2 decoder: member
// names match case-sensitively, an unknown member, a name twice in one
// object, text that is not UTF-8 and a null are refused.
var dataOptions = json.JoinOptions(
	json.RejectUnknownMembers(true),
	json.WithUnmarshalers(nullRefused.unmarshalers),
)

// nullFreeOptions are dataOptions for text that holds no null (nullFree):
// the refusers of null would let every value through, at a cost per value.
var nullFreeOptions = json.RejectUnknownMembers(true)

// nullFree reports whether text, valid JSON, holds no null: the word does
// not appear in it at all, in a string or out of one.
func nullFree(text []byte) bool { return !bytes.Contains(text, []byte("null")) }

// optionsFor returns the options that decode data from text.
func optionsFor(nullFree bool) json.Options {
	if nullFree {
		return nullFreeOptions
	}
	return dataOptions
}

// lenientOptions are dataOptions allowing unknown members: used only to
// describe an event already refused, to find its further problems.
var lenientOptions = json.JoinOptions(dataOptions, json.RejectUnknownMembers(false))

// nullRefusers refuse a JSON null for each Go type in the data of
// ledger.Types, bar a change's value (any JSON). TestNullRefusedForEveryType
// checks that the list is complete. One unmarshaler per concrete type, not
// one for interface{}, which the decoder would call, with an allocation,
// for every value.
type nullRefusers struct {
	types        map[reflect.Type]bool
	unmarshalers *json.Unmarshalers
}

var nullRefused = refuseNull(
	refuseNullOf[string](), refuseNullOf[int](), refuseNullOf[bool](),
	refuseNullOf[time.Time](), refuseNullOf[*time.Time](), refuseNullOf[[]string](),
	refuseNullOf[ledger.Subject](), refuseNullOf[*ledger.Subject](), refuseNullOf[[]ledger.Subject](),
	refuseNullOf[ledger.Channel](),
	refuseNullOf[ledger.RecordRef](), refuseNullOf[[]ledger.RecordRef](),
	refuseNullOf[ledger.Transfer](), refuseNullOf[*ledger.Transfer](),
	refuseNullOf[ledger.Change](), refuseNullOf[[]ledger.Change](),
	refuseNullOf[ledger.HoldScope](), refuseNullOf[*ledger.HoldScope](),
	refuseNullOf[*ledger.NoticeHold](),
)

type nullRefuser struct {
	t reflect.Type
	u *json.Unmarshalers
}

func refuseNullOf[T any]() nullRefuser {
	t := reflect.TypeFor[T]()
	return nullRefuser{t: t, u: json.UnmarshalFromFunc(func(dec *jsontext.Decoder, _ *T) error {
		if dec.PeekKind() == 'n' {
			return &nullError{t: t}
		}
		return errors.ErrUnsupported // decode as usual
	})}
}

func refuseNull(rs ...nullRefuser) nullRefusers {
	out := nullRefusers{types: make(map[reflect.Type]bool, len(rs))}
	us := make([]*json.Unmarshalers, len(rs))
	for i, r := range rs {
		out.types[r.t] = true
		us[i] = r.u
	}
	out.unmarshalers = json.JoinUnmarshalers(us...)
	return out
}

// decodeData decodes data, the JSON text of an event's data, into the Go
// type of typ, in one pass that also checks the text. It returns the value,
// or the problems, sorted by field. The validate tags are checked after.
func (d *Decoder) decodeData(typ string, data []byte) (any, []ledger.Problem) {
	newData, ok := ledger.Types[typ]
	if !ok {
		return nil, []ledger.Problem{{Reason: ledger.ReasonUnknownType, Field: "type", Detail: fmt.Sprintf("unknown event type %q", clip(typ))}}
	}
	v := newData()
	if firstByte(data) != '{' {
		return nil, d.decodeProblems(newData, data, nil)
	}
	if err := json.Unmarshal(data, v, optionsFor(nullFree(data))); err != nil {
		return nil, d.decodeProblems(newData, data, err)
	}
	return v, nil
}

// decodeDataFrom decodes the data of an event of type typ from dec,
// positioned at its value, into the type's Go value: the same decode as
// decodeData, within the read of a whole structured event.
func (d *Decoder) decodeDataFrom(typ string, dec *jsontext.Decoder, nullFree bool) (any, error) {
	newData, ok := ledger.Types[typ]
	if !ok {
		return nil, errDataNotDecoded
	}
	v := newData()
	if err := json.UnmarshalDecode(dec, v, optionsFor(nullFree)); err != nil {
		return nil, err
	}
	return v, nil
}

// decodeProblems describes why data could not be decoded, in the order of
// the checks: the JSON text, that it is an object, a key twice, then each
// member.
func (d *Decoder) decodeProblems(newData func() any, data []byte, err error) []ledger.Problem {
	if !jsontext.Value(data).IsValid(allowDuplicates) {
		return []ledger.Problem{{Reason: ledger.ReasonMalformed, Field: "data", Detail: "not valid JSON"}}
	}
	if firstByte(data) != '{' {
		return []ledger.Problem{{Reason: ledger.ReasonMalformed, Field: "data", Detail: "must be a JSON object"}}
	}
	if p := firstDuplicate(data, "data"); p != nil {
		return []ledger.Problem{*p}
	}
	var se *json.SemanticError
	if !errors.As(err, &se) {
		return []ledger.Problem{{Reason: ledger.ReasonInvalidData, Field: "data", Detail: "cannot be decoded"}}
	}
	t := reflect.TypeOf(newData()).Elem()
	field, tag := pointerPath(t, se.JSONPointer)
	var ne *nullError
	switch {
	case errors.Is(se.Err, json.ErrUnknownName):
		probs := []ledger.Problem{{Reason: ledger.ReasonInvalidData, Field: field, Detail: "unknown field: not allowed"}}
		// What else is wrong, as if the member were not there.
		v := newData()
		if json.Unmarshal(data, v, lenientOptions) == nil {
			probs = append(probs, d.check.problems(v, data)...)
		}
		return sortProblems(probs)
	case se.Err == nil && se.JSONKind != 0 || errors.As(se.Err, &ne):
		if detail := valuesDetail(tag); detail != "" {
			// A member that takes one of a set of values: name them.
			return []ledger.Problem{{Reason: ledger.ReasonInvalidData, Field: field, Detail: detail}}
		}
	}
	switch {
	case ne != nil:
		return []ledger.Problem{{Reason: ledger.ReasonInvalidData, Field: field, Detail: "got null, want " + jsonTypeName(ne.t)}}
	case se.GoType == timeType && se.JSONKind == '"':
		return []ledger.Problem{{Reason: ledger.ReasonInvalidData, Field: field, Detail: "must be a valid date-time"}}
	case se.GoType != nil && se.JSONKind != 0:
		want := jsonTypeName(se.GoType)
		got := jsonKindName(se.JSONKind)
		if got == want { // a number that is not an integer
			got = "number"
		}
		return []ledger.Problem{{Reason: ledger.ReasonInvalidData, Field: field, Detail: fmt.Sprintf("got %s, want %s", got, want)}}
	}
	return []ledger.Problem{{Reason: ledger.ReasonInvalidData, Field: field, Detail: "cannot be decoded: a value has the wrong form"}}
}

var timeType = reflect.TypeFor[time.Time]()

// jsonTypeName names the JSON type that a Go type of the ledger takes.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return "string"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return "value"
}

// jsonKindName names a JSON kind as JSON Schema does.
func jsonKindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

// pointerPath renders a JSON Pointer into data of Go type t as a field
// path, data.subjects[0].scheme, telling array indices from names by t. It
// also returns the validate tag of the struct field the pointer ends at.
func pointerPath(t reflect.Type, p jsontext.Pointer) (path, tag string) {
	var b strings.Builder
	b.WriteString("data")
	for tok := range p.Tokens() {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			b.WriteString("[" + tok + "]")
			t = t.Elem()
			continue
		}
		b.WriteString("." + tok)
		t, tag = structMember(t, tok)
	}
	return b.String(), tag
}

// structMember returns the type and validate tag of the member of struct
// type t named name in JSON, or nil.
func structMember(t reflect.Type, name string) (reflect.Type, string) {
	if t == nil || t.Kind() != reflect.Struct {
		return nil, ""
	}
	// VisibleFields includes the fields of an embedded struct, which the
	// JSON decoder inlines.
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous || !f.IsExported() {
			continue
		}
		if n, _, _ := strings.Cut(f.Tag.Get("json"), ","); n == name {
			return f.Type, f.Tag.Get("validate")
		}
	}
	return nil, ""
}

// valuesDetail describes the values a member whose validate tag is tag
// takes, if they are a fixed set, or returns "".
func valuesDetail(tag string) string {
	for rule := range strings.SplitSeq(tag, ",") {
		switch name, param, _ := strings.Cut(rule, "="); name {
		case "oneof":
			return "must be one of: " + strings.ReplaceAll(param, " ", ", ")
		case "regime":
			return "must be one of: " + strings.Join(ledger.AllRegimes, ", ")
		case "iso3166_1_alpha2":
			return isoCountryDetail
		}
	}
	return ""
}

const isoCountryDetail = "must be an ISO 3166-1 alpha-2 country code"

// sortProblems sorts problems by field and detail and drops repeats.
func sortProblems(probs []ledger.Problem) []ledger.Problem {
	slices.SortStableFunc(probs, func(a, b ledger.Problem) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Detail, b.Detail)
	})
	return slices.Compact(probs)
}

// structValidator runs the validate tags of the ledger types, with the
// custom tags slug, scheme, category, purpose and lawfulbasis: first as
// plans compiled from the tags (tagplan.go), and through validator/v10 for
// a value its plan does not pass.
type structValidator struct {
	v     *validator.Validate
	vocab *vocab.Vocabulary
	plans map[reflect.Type]*structPlan // by the data type (not its pointer)
}

func newStructValidator(voc *vocab.Vocabulary) *structValidator {
	v := validator.New()
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		if f.Anonymous {
			return embedded // its members sit in the enclosing object
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		if name == "" {
			return f.Name
		}
		return name
	})
	must := func(err error) {
		if err != nil {
			panic(err) // a programming error in the tag set below
		}
	}
	// The custom tags, each a rule on one string.
	custom := map[string]func(string) bool{
		"scheme": validScheme,
		"category": func(s string) bool {
			_, ok := voc.Category(s)
			return ok
		},
		"purpose":     voc.Purpose,
		"lawfulbasis": voc.LawfulBasis,
	}
	for name, rule := range ledger.FieldRules {
		custom[name] = rule
	}
	for name, rule := range custom {
		must(v.RegisterValidation(name, func(fl validator.FieldLevel) bool { return rule(fl.Field().String()) }))
	}
	plans := make(map[reflect.Type]*structPlan, len(ledger.Types))
	for _, newData := range ledger.Types {
		t := reflect.TypeOf(newData()).Elem()
		plans[t] = compilePlan(t, custom)
	}
	return &structValidator{v: v, vocab: voc, plans: plans}
}

// embedded names an embedded struct (ledger.RequestHeader) in a validator
// namespace: the JSON decoder inlines its members, so a field's path leaves
// it out.
const embedded = "~embedded"

// problems validates v, a pointer to one of the ledger data types decoded
// from data, and returns one problem per failed rule, sorted by field. A
// member that is absent is reported once, as required, rather than by each
// of its own required members.
func (sv *structValidator) problems(v any, data []byte) []ledger.Problem {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		if p := sv.plans[rv.Type().Elem()]; p != nil && p.passes(rv.Elem()) {
			return nil
		}
	}
	err := sv.v.Struct(v)
	if err == nil {
		return nil
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return []ledger.Problem{{Reason: ledger.ReasonInvalidData, Field: "data", Detail: "cannot be validated"}}
	}
	var doc any
	_ = json.Unmarshal(data, &doc, jsontext.AllowDuplicateNames(true))
	probs := make([]ledger.Problem, 0, len(ves))
	for _, fe := range ves {
		p := fieldProblem(fe)
		switch absent := absentMember(doc, p.Field); {
		case absent == "":
		case absent != p.Field:
			p = ledger.Problem{Reason: ledger.ReasonInvalidData, Field: absent, Detail: "required"}
		case fe.Tag() != "required_if": // which says when it is required
			p.Detail = "required"
		}
		probs = append(probs, p)
	}
	return sortProblems(probs)
}

// absentMember returns the path of the first object member on the way to
// field (a path such as data.subject.scheme), field included, that doc, the
// data, does not have, or "".
func absentMember(doc any, field string) string {
	path, ok := strings.CutPrefix(field, "data")
	if !ok {
		return ""
	}
	cur := doc
	done := "data"
	for path != "" {
		var tok string
		switch path[0] {
		case '.':
			end := strings.IndexAny(path[1:], ".[")
			if end < 0 {
				end = len(path) - 1
			}
			tok, path = path[1:end+1], path[end+1:]
			obj, ok := cur.(map[string]any)
			if !ok {
				return ""
			}
			if cur, ok = obj[tok]; !ok {
				return done + "." + tok
			}
			done += "." + tok
		case '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return ""
			}
			tok, path = path[1:end], path[end+1:]
			arr, ok := cur.([]any)
			i, err := strconv.Atoi(tok)
			if !ok || err != nil || i < 0 || i >= len(arr) {
				return ""
			}
			cur = arr[i]
			done += "[" + tok + "]"
		default:
			return ""
		}
	}
	return ""
}

// fieldProblem describes one failed validate tag. It quotes a value only for
// vocabulary keys, and only when the value looks like a key.
func fieldProblem(fe validator.FieldError) ledger.Problem {
	field := "data"
	if _, rest, ok := strings.Cut(strings.ReplaceAll(fe.Namespace(), "."+embedded, ""), "."); ok {
		field += "." + rest
	}
	p := ledger.Problem{Reason: ledger.ReasonInvalidData, Field: field}
	kindOf := fe.Kind()
	switch fe.Tag() {
	case "category", "purpose", "lawfulbasis":
		what := map[string]string{"category": "category", "purpose": "purpose", "lawfulbasis": "lawful basis"}[fe.Tag()]
		p.Reason = ledger.ReasonUnknownKey
		if s, _ := fe.Value().(string); keyPattern.MatchString(s) {
			p.Detail = fmt.Sprintf("unknown %s %q", what, s)
		} else {
			p.Detail = fmt.Sprintf("unknown %s: not a vocabulary key", what)
		}
	case "required":
		p.Detail = "required"
	case "required_if":
		p.Detail = "required when " + strings.Replace(fe.Param(), " ", " is ", 1)
		if strings.Contains(fe.Param(), ledger.RegimeDPAPart3) {
			p.Detail += " (DPA 2018 s.62 logging)"
		}
	case "min":
		switch {
		case kindOf == reflect.Slice && fe.Param() == "1":
			p.Detail = "must not be empty"
		case kindOf == reflect.Slice:
			p.Detail = "must have at least " + fe.Param() + " items"
		default:
			p.Detail = "must be at least " + fe.Param()
		}
	case "max":
		switch kindOf {
		case reflect.Slice:
			p.Detail = "must have at most " + fe.Param() + " items"
		case reflect.String:
			p.Detail = "must be at most " + fe.Param() + " characters"
		default:
			p.Detail = "must be at most " + fe.Param()
		}
	case "oneof":
		p.Detail = valuesDetail(fe.Tag() + "=" + fe.Param())
	case "regime":
		p.Detail = valuesDetail("regime")
	case "slug":
		p.Detail = fmt.Sprintf("must be a lowercase slug (a-z, 0-9, single hyphens) of at most %d characters", ledger.MaxSlugLen)
	case "scheme":
		p.Detail = "must be a lowercase word of at most 32 characters (a-z, 0-9, hyphens), starting with a letter"
	case "hexadecimal":
		p.Detail = "must be hexadecimal"
	case "len":
		if kindOf == reflect.String {
			p.Detail = "must be exactly " + fe.Param() + " characters"
		} else {
			p.Detail = "must have exactly " + fe.Param() + " items"
		}
	case "iso3166_1_alpha2":
		p.Detail = isoCountryDetail
	case "url", "startswith":
		p.Detail = "must be an http or https URL"
	default:
		p.Detail = "fails the " + fe.Tag() + " rule"
	}
	return p
}
