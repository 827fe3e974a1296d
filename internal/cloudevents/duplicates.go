package cloudevents

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/sharelog/sharelog/internal/ledger"
)

// The JSON text of an event is checked with jsontext, the syntactic layer of
// the JSON v2 reference implementation. By default its Decoder refuses text
// that is not valid UTF-8 (including escaped surrogates that do not pair)
// and an object member name twice in one object, names compared after
// unescaping. JSON parsers disagree on which of two values of one key
// counts (json-iterator, which feeds the JSON Schema, keeps the last), so a
// duplicate could show the checks one value and a later reader of Raw
// another: such text is refused. Text that is not UTF-8 is refused too:
// json-iterator keeps its bytes while encoding/json, which feeds the Go
// type, replaces them, so the two checks would see different strings.

// allowDuplicates accepts what json.Valid accepts, bar text that is not
// UTF-8: it tells text that is malformed from text whose only fault is a
// duplicate.
var allowDuplicates = jsontext.AllowDuplicateNames(true)

// errNotObject is readObject's error for text that is not a JSON object.
var errNotObject = errors.New("not a JSON object")

// member is one member of the top-level object of a structured event.
type member struct {
	name       string // unescaped
	lower      string // name lowercased, as sdk-go reads attribute names
	start, end int    // the value's text in the body, without whitespace
}

// bodyCheck is what checkBody found in a structured-mode event.
type bodyCheck struct {
	valid  bool            // JSON text in UTF-8, duplicates aside
	object bool            // the top-level value is an object
	envDup *ledger.Problem // the first duplicate outside data, or nil
	env    envelope        // the attributes' problems, when valid and object
	// data is the data member decoded into the Go type of dataType in the
	// same read, when the type attribute came before it and the data
	// decoded without error; dataText is its text in the body.
	data     any
	dataType string
	dataText []byte
	nullFree bool // the body holds no null (nullFree)
	// plain is the event's attributes if they are plain (plain.go), with
	// plainData the text of its data, an object; both are set when valid
	// and object.
	plain     plain
	plainData []byte
}

// dataDecoder decodes the data of an event of type typ from dec, positioned
// at the data member's value, into its Go type, or returns an error.
// nullFree says that the text holds no null.
type dataDecoder func(typ string, dec *jsontext.Decoder, nullFree bool) (any, error)

// errDataNotDecoded stops a read whose data could not be decoded in it.
var errDataNotDecoded = errors.New("data not decoded")

// objectReader is a pooled jsontext.Decoder reading directly from a byte
// slice, with room for the members of a top-level object.
type objectReader struct {
	text    []byte // what is read
	buf     bytes.Buffer
	dec     *jsontext.Decoder
	members []member
}

var objectReaders = sync.Pool{New: func() any {
	r := new(objectReader)
	r.dec = jsontext.NewDecoder(&r.buf)
	return r
}}

// maxPooledMembers is the most members a pooled objectReader keeps room for.
const maxPooledMembers = 64

func getObjectReader(b []byte, opts ...jsontext.Options) *objectReader {
	r := objectReaders.Get().(*objectReader)
	r.text = b
	r.buf = *bytes.NewBuffer(b)
	r.dec.Reset(&r.buf, opts...)
	return r
}

func (r *objectReader) free() {
	if cap(r.members) > maxPooledMembers {
		return
	}
	clear(r.members)
	r.members = r.members[:0]
	r.text = nil
	r.buf = bytes.Buffer{}
	r.dec.Reset(&r.buf) // drops the decoder's reference to the text
	objectReaders.Put(r)
}

// readObject reads the text given to getObjectReader, which must be one
// JSON object, member by member, noting each member's name and where its
// value is. With decode not nil, a data member after a type member is
// decoded by it from the same read, into bc; if that fails, readObject
// returns errDataNotDecoded.
func (r *objectReader) readObject(decode dataDecoder, bc *bodyCheck) error {
	dec := r.dec
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != '{' {
		return errNotObject
	}
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		name := memberName(tok) // the token is valid until the next read
		if name == "data" && decode != nil && bc.dataType != "" && dec.PeekKind() == '{' {
			before := dec.InputOffset()
			v, err := decode(bc.dataType, dec, bc.nullFree)
			if err != nil {
				return errDataNotDecoded
			}
			end := int(dec.InputOffset())
			// The value: after the name come a colon and whitespace, then "{".
			text := bytes.TrimLeft(r.text[before:end], ": \t\r\n")
			bc.data, bc.dataText = v, text
			r.members = append(r.members, member{name: name, lower: name, start: end - len(text), end: end})
			continue
		}
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		end := int(dec.InputOffset())
		if name == "type" && decode != nil && v.Kind() == '"' {
			var room [64]byte
			if typ, err := jsontext.AppendUnquote(room[:0], v); err == nil {
				bc.dataType = knownType(typ)
			}
		}
		r.members = append(r.members, member{name: name, lower: strings.ToLower(name), start: end - len(v), end: end})
	}
	if _, err := dec.ReadToken(); err != nil { // }
		return err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return errors.New("text after the object")
	}
	return nil
}

// attributeNames are the member names of most events, kept so that
// memberName returns them without allocating.
var attributeNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{"specversion", "id", "source", "type", "subject", "time",
		"datacontenttype", "dataschema", "data", "data_base64"} {
		m[n] = n
	}
	return m
}()

// memberName returns the object member name tok, unescaped, as a string of
// its own.
func memberName(tok jsontext.Token) string {
	s := tok.String() // not kept: no allocation for a short name
	if n, ok := attributeNames[s]; ok {
		return n
	}
	return strings.Clone(s)
}

// typeNames are the event types the ledger knows, kept so that knownType
// returns them without allocating.
var typeNames = func() map[string]string {
	m := make(map[string]string, len(ledger.Types))
	for t := range ledger.Types {
		m[t] = t
	}
	return m
}()

// knownType returns the type attribute b as a string of its own.
func knownType(b []byte) string {
	if t, ok := typeNames[string(b)]; ok {
		return t
	}
	return string(b)
}

// foldDuplicate returns the index of the first member whose lowercased name
// is that of an earlier member, and the index of that earlier member, or
// -1, -1.
func foldDuplicate(members []member) (int, int) {
	const linear = 16 // up to this many names, compare each with the others
	if len(members) <= linear {
		for i, m := range members {
			for j := range i {
				if members[j].lower == m.lower {
					return i, j
				}
			}
		}
		return -1, -1
	}
	seen := make(map[string]int, len(members))
	for i, m := range members {
		if j, ok := seen[m.lower]; ok {
			return i, j
		}
		seen[m.lower] = i
	}
	return -1, -1
}

// attributeTwice describes a top-level member named as an earlier one,
// regardless of case, as CloudEvents attribute names are read: sdk-go
// lowercases extension names, so "Data" or "TraceParent" would be read as
// data and traceparent.
func attributeTwice(earlier, later string) *ledger.Problem {
	p := &ledger.Problem{Reason: ledger.ReasonMalformed, Field: strings.ToLower(later), Detail: fmt.Sprintf("key %q appears twice in one object", clip(later))}
	if earlier != later {
		p.Detail = fmt.Sprintf("keys %q and %q name the same attribute: attribute names are read regardless of case", clip(earlier), clip(later))
	}
	return p
}

// checkBody checks the JSON text of a structured-mode event: that it is
// valid, an object, and has no key twice. Outside data, the first duplicate
// is reported, with the top-level attribute names compared regardless of
// case; a duplicate in data is found when the data is decoded. With decode
// not nil, the data is decoded in the same read when it can be (see
// bodyCheck.data).
func checkBody(body []byte, decode dataDecoder) bodyCheck {
	// One read with duplicates refused everywhere: the usual case.
	r := getObjectReader(body)
	defer func() { r.free() }()
	bc := bodyCheck{nullFree: nullFree(body)}
	err := r.readObject(decode, &bc)
	if err == errDataNotDecoded {
		// The data has a fault, which finish describes in its turn: read
		// again without decoding it.
		r.free()
		r = getObjectReader(body)
		bc = bodyCheck{}
		err = r.readObject(nil, &bc)
	}
	if err == nil {
		bc.valid, bc.object = true, true
		if i, j := foldDuplicate(r.members); i >= 0 {
			bc.envDup = attributeTwice(r.members[j].name, r.members[i].name)
		}
		bc.env = envelopeProblems(body, r.members)
		bc.plain, bc.plainData = plainMembers(body, r.members)
		return bc
	}

	// Something is wrong: find what, in the order of the checks.
	if !jsontext.Value(body).IsValid(allowDuplicates) {
		return bodyCheck{}
	}
	if firstByte(body) != '{' {
		return bodyCheck{valid: true}
	}
	r.free()
	r = getObjectReader(body, allowDuplicates)
	if err := r.readObject(nil, nil); err != nil {
		// Cannot happen: the text is valid with duplicates allowed.
		return bodyCheck{}
	}
	bc = bodyCheck{valid: true, object: true}
	twice, earlier := foldDuplicate(r.members)
	for i, m := range r.members {
		if i == twice {
			bc.envDup = attributeTwice(r.members[earlier].name, m.name)
			return bc
		}
		if m.name == "data" {
			// With no name twice before it, this is the only data member;
			// decoding the data finds a key twice in it.
			continue
		}
		if p := firstDuplicate(body[m.start:m.end], m.name); p != nil {
			bc.envDup = p
			return bc
		}
	}
	return bc
}

// firstDuplicate returns a problem naming the first key that appears twice
// in one object of v, a JSON value whose only fault may be duplicates, at
// its path under prefix (data.subjects[0].id), or nil if there is none. No
// value is quoted.
func firstDuplicate(v []byte, prefix string) *ledger.Problem {
	r := getObjectReader(v)
	defer r.free()
	dec := r.dec
	for {
		_, err := dec.ReadToken()
		if err == nil {
			continue
		}
		var se *jsontext.SyntacticError
		if !errors.Is(err, jsontext.ErrDuplicateName) || !errors.As(err, &se) {
			return nil
		}
		// The pointer's tokens do not tell array indices from names; the
		// decoder's stack, still at the duplicate, does: token i is a
		// name or index in the object or array at depth i.
		var tokens []string
		for tok := range se.JSONPointer.Tokens() {
			tokens = append(tokens, tok)
		}
		n := len(tokens)
		if n == 0 || n != dec.StackDepth() {
			return nil
		}
		if kind, _ := dec.StackIndex(n); kind != '{' {
			return nil
		}
		var path strings.Builder
		path.WriteString(prefix)
		for i, tok := range tokens {
			if kind, _ := dec.StackIndex(i + 1); kind == '[' {
				path.WriteString("[" + tok + "]")
				continue
			}
			if path.Len() > 0 {
				path.WriteByte('.')
			}
			path.WriteString(tok)
		}
		key := tokens[n-1]
		return &ledger.Problem{Reason: ledger.ReasonMalformed, Field: path.String(), Detail: fmt.Sprintf("key %q appears twice in one object", clip(key))}
	}
}
