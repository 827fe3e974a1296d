package cloudevents

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/go-playground/validator/v10"
	jsoniter "github.com/json-iterator/go"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/vocab"
)

var (
	slugPattern   = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	schemePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	keyPattern    = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,199}$`)
)

// maxSlugLen is the longest recipient id.
const maxSlugLen = 64

// decodeData strictly decodes data into the Go type of typ: unknown fields
// and wrong JSON types are refused.
func decodeData(typ string, data []byte) (any, []ledger.Problem) {
	newData, ok := ledger.Types[typ]
	if !ok {
		return nil, []ledger.Problem{{Reason: ledger.ReasonUnknownType, Field: "type", Detail: fmt.Sprintf("unknown event type %q", clip(typ))}}
	}
	v := newData()
	if err := strictJSON.Unmarshal(data, v); err != nil {
		return nil, []ledger.Problem{decodeProblem(err)}
	}
	return v, nil
}

// The JSON codecs of the data path. jsoniter is the codec sdk-go uses; it is
// markedly faster than encoding/json here. strictJSON refuses unknown fields
// and, unlike encoding/json, matches field names case-sensitively, as the
// JSON Schemas do.
var (
	dataJSON   = jsoniter.Config{UseNumber: true}.Froze()
	strictJSON = jsoniter.Config{DisallowUnknownFields: true, CaseSensitive: true}.Froze()
)

// decodeProblem describes a strict-decode failure without quoting values
// (jsoniter's messages quote input).
func decodeProblem(err error) ledger.Problem {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := "data"
		if te.Field != "" {
			field += "." + te.Field
		}
		return ledger.Problem{Reason: ledger.ReasonInvalidData, Field: field, Detail: fmt.Sprintf("got JSON %s, want %s", te.Value, te.Type)}
	}
	if strings.Contains(err.Error(), "found unknown field") {
		return ledger.Problem{Reason: ledger.ReasonInvalidData, Field: "data", Detail: "unknown field: not allowed"}
	}
	return ledger.Problem{Reason: ledger.ReasonInvalidData, Field: "data", Detail: "cannot be decoded: a value has the wrong form (dates must be RFC 3339)"}
}

// structValidator runs the validate tags of the ledger types, with the
// custom tags slug, scheme, category, purpose and lawfulbasis.
type structValidator struct {
	v     *validator.Validate
	vocab *vocab.Vocabulary
}

func newStructValidator(voc *vocab.Vocabulary) *structValidator {
	v := validator.New()
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
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
	must(v.RegisterValidation("slug", func(fl validator.FieldLevel) bool {
		s := fl.Field().String()
		return len(s) <= maxSlugLen && slugPattern.MatchString(s)
	}))
	must(v.RegisterValidation("scheme", func(fl validator.FieldLevel) bool {
		return schemePattern.MatchString(fl.Field().String())
	}))
	must(v.RegisterValidation("category", func(fl validator.FieldLevel) bool {
		_, ok := voc.Category(fl.Field().String())
		return ok
	}))
	must(v.RegisterValidation("purpose", func(fl validator.FieldLevel) bool {
		return voc.Purpose(fl.Field().String())
	}))
	must(v.RegisterValidation("lawfulbasis", func(fl validator.FieldLevel) bool {
		return voc.LawfulBasis(fl.Field().String())
	}))
	return &structValidator{v: v, vocab: voc}
}

// problems validates v, a pointer to one of the ledger data types, and
// returns one problem per failed rule, in field order.
func (sv *structValidator) problems(v any) []ledger.Problem {
	err := sv.v.Struct(v)
	if err == nil {
		return nil
	}
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) {
		return []ledger.Problem{{Reason: ledger.ReasonInvalidData, Field: "data", Detail: "cannot be validated"}}
	}
	probs := make([]ledger.Problem, 0, len(ves))
	for _, fe := range ves {
		probs = append(probs, fieldProblem(fe))
	}
	return probs
}

// fieldProblem describes one failed validate tag. It quotes a value only for
// vocabulary keys, and only when the value looks like a key.
func fieldProblem(fe validator.FieldError) ledger.Problem {
	field := "data"
	if _, rest, ok := strings.Cut(fe.Namespace(), "."); ok {
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
		if kindOf == reflect.Slice {
			p.Detail = "must have at least " + fe.Param() + " items"
		} else {
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
		p.Detail = "must be one of: " + strings.ReplaceAll(fe.Param(), " ", ", ")
	case "slug":
		p.Detail = fmt.Sprintf("must be a lowercase slug (a-z, 0-9, single hyphens) of at most %d characters", maxSlugLen)
	case "scheme":
		p.Detail = "must be a lowercase word of at most 32 characters (a-z, 0-9, hyphens), starting with a letter"
	case "iso3166_1_alpha2":
		p.Detail = "must be an ISO 3166-1 alpha-2 country code"
	case "url", "startswith":
		p.Detail = "must be an http or https URL"
	default:
		p.Detail = "fails the " + fe.Tag() + " rule"
	}
	return p
}
