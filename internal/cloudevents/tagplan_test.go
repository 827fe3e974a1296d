package cloudevents

import (
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sharelog/sharelog/internal/ledger"
)

// planSays runs the plan of v's type, as structValidator.problems does.
func planSays(sv *structValidator, v any) bool {
	rv := reflect.ValueOf(v)
	return sv.plans[rv.Type().Elem()].passes(rv.Elem())
}

// TestTagPlanNeverLaxer checks the compiled tag plans against
// validator/v10 on every golden input's data and on random values of
// every ledger data type built from the words the tags and vocabularies
// use, at and around every length limit: a value the plan passes is never
// one validator/v10 refuses. It also checks that the plan passes the
// values it is there for (the generated disclosures, the valid fixtures,
// most random values validator/v10 passes), so that the test cannot pass
// by a plan that passes nothing.
func TestTagPlanNeverLaxer(t *testing.T) {
	t.Parallel()
	d := newDecoder(t)
	sv := d.check
	if len(sv.plans) != len(ledger.Types) {
		t.Fatalf("%d plans for %d types", len(sv.plans), len(ledger.Types))
	}
	var both, onlyValidator int
	check := func(name string, v any) {
		t.Helper()
		planOK, valOK := planSays(sv, v), sv.v.Struct(v) == nil
		switch {
		case planOK && !valOK:
			t.Fatalf("%s: the plan passes %#v, validator/v10 refuses it: %v", name, v, sv.v.Struct(v))
		case planOK:
			both++
		case valOK:
			onlyValidator++
		}
	}

	// The data of every golden input, decoded.
	decoded := 0
	for _, c := range goldenCases(t) {
		if c.body == nil {
			continue
		}
		bc := checkBody(c.body, d.decodeDataFrom)
		if bc.data != nil {
			check(c.name, bc.data)
			decoded++
		}
	}
	if decoded < 100 {
		t.Fatalf("only %d golden inputs decoded", decoded)
	}
	for i, body := range genDisclosures(1, 0, 256, 200_000) {
		bc := checkBody(body, d.decodeDataFrom)
		if bc.data == nil || !planSays(sv, bc.data) {
			t.Fatalf("generated disclosure %d: the plan does not pass it", i)
		}
	}
	for _, f := range validFixtures(t) {
		bc := checkBody(f.body, d.decodeDataFrom)
		if bc.data != nil && !planSays(sv, bc.data) && sv.v.Struct(bc.data) == nil {
			t.Logf("valid fixture %s left to validator/v10", f.File)
		}
	}

	// Each valid golden input's data with random members changed.
	words := tagWords(d)
	r := rand.New(rand.NewPCG(1, 2))
	mutated := 0
	for _, c := range goldenCases(t) {
		if c.body == nil || !strings.HasPrefix(c.name, "valid/") {
			continue
		}
		for range 300 {
			bc := checkBody(c.body, d.decodeDataFrom)
			if bc.data == nil {
				break
			}
			mutateRandom(r, reflect.ValueOf(bc.data).Elem(), words)
			check(c.name+" mutated", bc.data)
			mutated++
		}
	}
	if mutated == 0 {
		t.Fatal("no valid golden input mutated")
	}

	// Random values of every type.
	for typ, newData := range ledger.Types {
		passed := 0
		for range 3000 {
			v := newData()
			fillRandom(r, reflect.ValueOf(v).Elem(), words, 0)
			before := both
			check(typ, v)
			if both > before {
				passed++
			}
		}
		t.Logf("%s: the plan passed %d of 3000 random values", typ, passed)
	}
	t.Logf("plan and validator/v10 pass %d values, validator/v10 alone %d", both, onlyValidator)
	if both == 0 || onlyValidator > both {
		t.Errorf("the plan passes %d values validator/v10 passes and leaves %d to it: it should pass most", both, onlyValidator)
	}
}

// tagWords returns strings to fill values with: every word of every
// validate tag's parameter, some vocabulary keys, and strings at and around
// every length limit, in ASCII and with multibyte runes.
func tagWords(d *Decoder) []string {
	words := []string{"", "x", "X", "a-b", "-a", "a--b", "dbs-ref", "Dbs", "force-001", " ", "é"}
	for _, c := range d.vocab.Categories()[:5] {
		words = append(words, c.Key)
	}
	words = append(words, d.vocab.Purposes()[0].Key, d.vocab.LawfulBases()[0].Key, "user", "nope.key")
	words = append(words, ledger.AllRegimes...)
	seen := map[string]bool{}
	for _, newData := range ledger.Types {
		var walk func(t reflect.Type)
		walk = func(t reflect.Type) {
			for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
				t = t.Elem()
			}
			if t.Kind() != reflect.Struct || t == timeType || seen[t.String()] {
				return
			}
			seen[t.String()] = true
			for i := range t.NumField() {
				f := t.Field(i)
				for rule := range strings.SplitSeq(f.Tag.Get("validate"), ",") {
					name, param, _ := strings.Cut(rule, "=")
					switch name {
					case "oneof", "required_if":
						words = append(words, strings.Fields(param)...)
					case "max", "min", "len":
						n := 0
						for _, c := range param {
							n = n*10 + int(c-'0')
						}
						for _, k := range []int{n - 1, n, n + 1} {
							if k >= 0 && k < 5000 {
								words = append(words, strings.Repeat("a", k), strings.Repeat("é", k))
							}
						}
					}
				}
				walk(f.Type)
			}
		}
		walk(reflect.TypeOf(newData()).Elem())
	}
	slices.Sort(words)
	return slices.Compact(words)
}

// fillRandom sets v, and what it holds, to random values from words.
func fillRandom(r *rand.Rand, v reflect.Value, words []string, depth int) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(words[r.IntN(len(words))])
	case reflect.Int:
		v.SetInt([]int64{-1, 0, 1, 2, 3, 366, 367, 999, 1000}[r.IntN(9)])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Struct:
		if v.Type() == timeType {
			if r.IntN(4) > 0 {
				v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() && r.IntN(8) > 0 {
				fillRandom(r, v.Field(i), words, depth+1)
			}
		}
	case reflect.Pointer:
		if r.IntN(3) > 0 && depth < 4 {
			p := reflect.New(v.Type().Elem())
			fillRandom(r, p.Elem(), words, depth+1)
			v.Set(p)
		}
	case reflect.Slice:
		n := []int{0, 0, 1, 1, 2, 3, 100, 101}[r.IntN(8)]
		if n == 0 && r.IntN(2) == 0 {
			return // nil
		}
		if depth > 3 {
			n = min(n, 2)
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fillRandom(r, s.Index(i), words, depth+1)
		}
		v.Set(s)
	}
}

// mutateRandom changes about one in six of the members of v, at any depth,
// to random values from words, keeping the others.
func mutateRandom(r *rand.Rand, v reflect.Value, words []string) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == timeType {
			break
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				mutateRandom(r, v.Field(i), words)
			}
		}
		return
	case reflect.Pointer:
		if !v.IsNil() && r.IntN(6) > 0 {
			mutateRandom(r, v.Elem(), words)
			return
		}
	case reflect.Slice:
		if r.IntN(6) > 0 {
			for i := range v.Len() {
				mutateRandom(r, v.Index(i), words)
			}
			return
		}
	}
	if r.IntN(6) == 0 {
		v.SetZero()
		fillRandom(r, v, words, 2)
	}
}

// TestValidScheme checks validScheme against the regular expression of the
// rule it states, on strings around its every edge.
func TestValidScheme(t *testing.T) {
	t.Parallel()
	re := regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	cases := []string{"", "a", "A", "0a", "-a", "a-", "a--b", "dbs-ref", "email", "a_b", "a.b", "a b", "é", "aé", "a\n", "\na",
		strings.Repeat("a", 31), strings.Repeat("a", 32), strings.Repeat("a", 33), "a" + strings.Repeat("9", 31), "a" + strings.Repeat("-", 32)}
	for c := range 256 {
		cases = append(cases, string(rune(c)), "a"+string(rune(c)), "a"+string([]byte{byte(c)}))
	}
	for _, s := range cases {
		if got, want := validScheme(s), re.MatchString(s); got != want {
			t.Errorf("validScheme(%q) = %v, want %v", s, got, want)
		}
	}
}
