package cloudevents

import (
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A tag plan is the validate tags of a ledger data type compiled once, when
// the Decoder is made, into checks on reflect.Values: no tag is parsed and
// nothing is allocated per event. It answers one question, whether a value
// passes every tag, and it may answer no where validator/v10 says yes (a
// tag it does not know, omitempty on a value that is not a string): the
// structValidator asks validator/v10, whose errors are the problems, about
// every value the plan does not vPass. So the tags stay the one statement of
// the rules and validator/v10 the one wording of the problems; the plan
// spares its reflection only for the values that vPass, the usual case.
// TestTagPlanNeverLaxer holds the plan to never passing what validator/v10
// refuses.

// structPlan checks the fields of one struct type.
type structPlan struct {
	fields []fieldPlan
}

// fieldPlan checks one field: its rules (the tags before dive), then with
// dive each element's rules (the tags after dive), then the fields of a
// struct it holds, points to or, with dive, has as elements.
type fieldPlan struct {
	index int
	rules []rule
	dive  bool
	elem  []rule
	sub   *structPlan
}

// rule checks a value, a field of parent or an element of such a field. It
// returns vPass when the value passes, vFail when it may not, and vSkip when
// the value passes and the field's remaining rules do not apply (omitempty).
type rule func(v, parent reflect.Value) verdict

type verdict int8

const (
	vPass verdict = iota
	vFail
	vSkip
)

var never rule = func(reflect.Value, reflect.Value) verdict { return vFail }

// compilePlan compiles the validate tags of struct type t, with the string
// rules of custom tags (slug, category, ...), as structValidator registers
// them with validator/v10.
func compilePlan(t reflect.Type, custom map[string]func(string) bool) *structPlan {
	p := &structPlan{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.Anonymous && !f.IsExported() {
			continue // validator/v10 skips them too
		}
		tag := f.Tag.Get("validate")
		if tag == "-" {
			continue
		}
		fp := fieldPlan{index: i}
		var before, after []string
		if tag != "" {
			before = strings.Split(tag, ",")
		}
		for j, name := range before {
			if name == "dive" {
				before, after, fp.dive = before[:j], before[j+1:], true
				break
			}
		}
		for _, name := range before {
			fp.rules = append(fp.rules, compileRule(t, f.Type, name, custom))
		}
		ft := f.Type
		if fp.dive {
			if ft.Kind() != reflect.Slice {
				fp.rules = append(fp.rules, never)
			} else {
				ft = ft.Elem()
				for _, name := range after {
					fp.elem = append(fp.elem, compileRule(t, ft, name, custom))
				}
			}
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != timeType {
			if f.Type.Kind() == reflect.Slice && !fp.dive {
				// Elements are not looked into without dive.
			} else if len(fp.rules) > 0 && !fp.dive || len(fp.elem) > 0 {
				fp.rules = append(fp.rules, never) // tags on a struct value: not planned
			} else {
				fp.sub = compilePlan(ft, custom)
			}
		}
		if len(fp.rules) > 0 || fp.dive || fp.sub != nil {
			p.fields = append(p.fields, fp)
		}
	}
	return p
}

// compileRule compiles one tag on a field or element of type t, in struct
// type parent. A tag the plan does not know compiles to never.
func compileRule(parent, t reflect.Type, tag string, custom map[string]func(string) bool) rule {
	name, param, _ := strings.Cut(tag, "=")
	kind := t.Kind()
	str := kind == reflect.String
	switch name {
	case "required":
		if t == timeType || kind == reflect.Slice || kind == reflect.Pointer || str || kind == reflect.Int || kind == reflect.Bool {
			return func(v, _ reflect.Value) verdict { return when(hasValue(v)) }
		}
	case "omitempty":
		if str {
			return func(v, _ reflect.Value) verdict {
				if v.Len() == 0 {
					return vSkip
				}
				return vPass
			}
		}
		return func(reflect.Value, reflect.Value) verdict { return vPass } // stricter: the rules after it apply
	case "min", "max", "len":
		n, err := strconv.ParseInt(param, 10, 64)
		if err != nil {
			break
		}
		var size func(v reflect.Value) int64
		switch kind {
		case reflect.String:
			size = func(v reflect.Value) int64 { return int64(utf8.RuneCountInString(v.String())) }
		case reflect.Slice:
			size = func(v reflect.Value) int64 { return int64(v.Len()) }
		case reflect.Int:
			if name != "len" {
				size = reflect.Value.Int
			}
		}
		if size == nil {
			break
		}
		switch name {
		case "min":
			return func(v, _ reflect.Value) verdict { return when(size(v) >= n) }
		case "max":
			return func(v, _ reflect.Value) verdict { return when(size(v) <= n) }
		default:
			return func(v, _ reflect.Value) verdict { return when(size(v) == n) }
		}
	case "oneof":
		if !str || strings.ContainsAny(param, `'"`) {
			break
		}
		set := map[string]bool{}
		for _, s := range strings.Fields(param) {
			set[s] = true
		}
		return func(v, _ reflect.Value) verdict { return when(set[v.String()]) }
	case "required_if":
		fields := strings.Fields(param)
		if len(fields) != 2 || !str {
			break
		}
		other, ok := parent.FieldByName(fields[0])
		if !ok || other.Type.Kind() != reflect.String {
			break
		}
		index, want := other.Index, fields[1]
		return func(v, parent reflect.Value) verdict {
			return when(parent.FieldByIndex(index).String() != want || v.Len() > 0)
		}
	default:
		if check, ok := custom[name]; ok && str && param == "" {
			return func(v, _ reflect.Value) verdict { return when(check(v.String())) }
		}
	}
	return never
}

func when(ok bool) verdict {
	if ok {
		return vPass
	}
	return vFail
}

// hasValue is validator/v10's test for required.
func hasValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
		return !v.IsNil()
	}
	return !v.IsZero()
}

// passes reports whether v, a struct of the plan's type, passes every rule.
func (p *structPlan) passes(v reflect.Value) bool {
	for i := range p.fields {
		fp := &p.fields[i]
		f := v.Field(fp.index)
		if !fp.passes(f, v) {
			return false
		}
	}
	return true
}

func (fp *fieldPlan) passes(f, parent reflect.Value) bool {
	switch runRules(fp.rules, f, parent) {
	case vFail:
		return false
	case vSkip:
		return true
	}
	if fp.dive {
		for i := range f.Len() {
			e := f.Index(i)
			switch runRules(fp.elem, e, parent) {
			case vFail:
				return false
			case vSkip:
				continue
			}
			if fp.sub != nil && !fp.sub.passesValue(e) {
				return false
			}
		}
		return true
	}
	if fp.sub != nil {
		return fp.sub.passesValue(f)
	}
	return true
}

// passesValue checks a struct or a pointer to one; a nil pointer without
// rules is not looked into, as validator/v10 does not.
func (p *structPlan) passesValue(v reflect.Value) bool {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return true
		}
		v = v.Elem()
	}
	return p.passes(v)
}

func runRules(rules []rule, v, parent reflect.Value) verdict {
	for _, r := range rules {
		if o := r(v, parent); o != vPass {
			return o
		}
	}
	return vPass
}
