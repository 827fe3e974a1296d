package cloudevents

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/sharelog/sharelog/internal/ledger"
	"github.com/sharelog/sharelog/internal/vocab"
	"github.com/sharelog/sharelog/schemas"
)

// Size limits.
const (
	// MaxEventSize is the largest event accepted, in bytes: the structured
	// JSON, or in binary mode the body plus the ce-* headers. A larger event
	// is refused with ledger.ReasonOversize.
	MaxEventSize = 1 << 20
	// MaxBatchSize is the largest batch body DecodeHTTP and DecodeBatch read.
	MaxBatchSize = 64 << 20
	// DefaultMaxBatchEvents is the number of events a batch may hold when
	// Decoder.MaxBatchEvents is 0.
	DefaultMaxBatchEvents = 10000
)

// Media types of the CloudEvents HTTP binding.
const (
	MediaTypeStructured = "application/cloudevents+json"
	MediaTypeBatch      = "application/cloudevents-batch+json"
)

// Decoder decodes and validates CloudEvents. It is safe for concurrent use.
type Decoder struct {
	// MaxBatchEvents bounds the events in one batch (0 means
	// DefaultMaxBatchEvents). The elements are counted as the batch is
	// read, so a batch with more is refused (ETOOLARGE) before the rest of
	// it is read or any of it decoded. Set it before the first use.
	MaxBatchEvents int

	vocab   *vocab.Vocabulary
	check   *structValidator
	handoff handoff
	sdkOnly bool // in tests: every event read by sdk-go, none the plain way (plain.go)
}

// Decoded is the result for one event of a request or batch.
type Decoded struct {
	Event *ledger.Event // nil when Err != nil
	// Source and ID are the event's, as far as they could be read, for error
	// reports. Both are empty when the event was refused because one of its
	// context attributes holds a data-subject identifier.
	Source string
	ID     string
	Err    error // a *ledger.InvalidError
}

// NewDecoder returns a Decoder that checks event data against the Go types
// of internal/ledger and their validate tags, and vocabulary keys against v.
func NewDecoder(v *vocab.Vocabulary) (*Decoder, error) {
	if v == nil {
		return nil, errors.New("cloudevents: nil vocabulary")
	}
	return &Decoder{vocab: v, check: newStructValidator(v)}, nil
}

// DecodeStructured decodes one event in the CloudEvents JSON format. Any
// failure is a *ledger.InvalidError.
func (d *Decoder) DecodeStructured(body []byte) (*ledger.Event, error) {
	ev, _, _, err := d.decodeStructured(body, nil)
	return ev, err
}

// DecodeMessage decodes one NATS message. The message is in structured mode
// when its Content-Type is application/cloudevents+json, in binary mode
// (ce-* headers, data in the body) when it has a ce-specversion header, and
// otherwise in structured mode if it has no Content-Type at all. Header names
// are matched case-insensitively. Because NATS headers must never carry
// personal data, every header value, not only the ce-* ones, is checked for
// the data's subject identifiers. Any failure is a *ledger.InvalidError.
func (d *Decoder) DecodeMessage(header map[string][]string, body []byte) (*ledger.Event, error) {
	dec := d.DecodeNATS(header, body)
	return dec.Event, dec.Err
}

// DecodeNATS decodes one NATS message as DecodeMessage does, and returns
// the event or the error with the event's source and id as far as they
// could be read (both empty when the event was refused because one of its
// attributes or headers holds a data-subject identifier).
func (d *Decoder) DecodeNATS(header map[string][]string, body []byte) Decoded {
	ev, source, id, err := d.decodeMessage(header, body)
	return Decoded{Event: ev, Source: source, ID: id, Err: err}
}

func (d *Decoder) decodeMessage(header map[string][]string, body []byte) (ev *ledger.Event, source, id string, err error) {
	if ie := ambiguousHeader(header, false); ie != nil {
		return nil, "", "", ie
	}
	var ct string
	var binary bool
	for k, v := range header {
		switch {
		case strings.EqualFold(k, "Content-Type") && len(v) > 0:
			ct = v[0]
		case strings.EqualFold(k, "ce-specversion"):
			binary = true
		}
	}
	var room [4]attr
	extra := appendHeaderAttrs(room[:0], header)
	mt := mediaType(ct)
	if (mt == MediaTypeStructured || ct == "" && !binary) && len(body) <= MaxEventSize {
		if ev := d.handoff.take(body); ev != nil {
			// Decoded and validated by this Decoder already: only the
			// transport headers are new.
			if probs := identifiersInAttributes(subjectIDs(ev.Data), nil, extra); len(probs) > 0 {
				return nil, "", "", &ledger.InvalidError{Problems: probs}
			}
			return ev, ev.Source, ev.ID, nil
		}
	}
	switch {
	case mt == MediaTypeStructured:
		return d.decodeStructured(body, extra)
	case strings.HasPrefix(mt, "application/cloudevents"):
		return nil, "", "", ledger.Invalid(ledger.ReasonContentType, "Content-Type", "unsupported content type %q: NATS messages carry one event, in structured (%s) or binary mode", clip(ct), MediaTypeStructured)
	case binary:
		return d.decodeBinary(header, body, true, extra)
	case ct == "":
		return d.decodeStructured(body, extra)
	default:
		return nil, "", "", ledger.Invalid(ledger.ReasonContentType, "Content-Type", "unsupported content type %q: use structured mode (%s) or binary mode (ce-* headers)", clip(ct), MediaTypeStructured)
	}
}

// DecodeHTTP decodes a POST /v1/events request in any mode of the CloudEvents
// HTTP binding: binary (ce-* headers), structured (application/cloudevents+json)
// or batch (application/cloudevents-batch+json). It reads at most
// MaxEventSize bytes of body for one event and MaxBatchSize for a batch.
//
// Request-level failures come back as the error: an unsupported content type
// or an unreadable body (a *ledger.InvalidError), a batch that is not a JSON
// array (a *ledger.InvalidError with ReasonMalformed), or a body over the limit
// (a *ledger.Error with code ETOOLARGE). Otherwise every event has one
// Decoded, in request order, whose Err is nil or a *ledger.InvalidError.
func (d *Decoder) DecodeHTTP(r *http.Request) ([]Decoded, error) {
	ct := r.Header.Get("Content-Type")
	mt := mediaType(ct)
	switch {
	case mt == MediaTypeBatch:
		return d.decodeBatch(r.Body)
	case mt == MediaTypeStructured:
		body, err := readBody(r.Body, MaxEventSize)
		if err != nil {
			return nil, err
		}
		ev, src, id, err := d.decodeStructured(body, nil)
		return []Decoded{{Event: ev, Source: src, ID: id, Err: err}}, nil
	case strings.HasPrefix(mt, "application/cloudevents"):
		return nil, ledger.Invalid(ledger.ReasonContentType, "Content-Type", "unsupported content type %q: use %s, %s or binary mode", clip(ct), MediaTypeStructured, MediaTypeBatch)
	case len(r.Header.Values("Ce-Specversion")) > 0:
		body, err := readBody(r.Body, MaxEventSize)
		if err != nil {
			return nil, err
		}
		ev, src, id, err := d.decodeBinary(r.Header, body, false, nil)
		return []Decoded{{Event: ev, Source: src, ID: id, Err: err}}, nil
	default:
		return nil, ledger.Invalid(ledger.ReasonContentType, "Content-Type", "unsupported content type %q: send binary mode (ce-* headers), %s or %s", clip(ct), MediaTypeStructured, MediaTypeBatch)
	}
}

// DecodeBatch decodes a JSON array of events in the CloudEvents JSON format,
// as in the HTTP batch mode or a file given to `sharelog publish`. It returns
// a *ledger.Error with code ETOOLARGE if body is over MaxBatchSize or holds
// more than MaxBatchEvents events, and a *ledger.InvalidError if body is not
// a JSON array; otherwise one Decoded per element, in order.
func (d *Decoder) DecodeBatch(body []byte) ([]Decoded, error) {
	if len(body) > MaxBatchSize {
		return nil, ledger.Errorf(ledger.ETOOLARGE, "batch is %d bytes, over the limit of %d", len(body), MaxBatchSize)
	}
	return d.decodeBatch(bytes.NewReader(body))
}

// decodeBatch reads a batch from body with batchItems and decodes each of
// its events.
func (d *Decoder) decodeBatch(body io.Reader) ([]Decoded, error) {
	items, err := batchItems(body, cmp.Or(d.MaxBatchEvents, DefaultMaxBatchEvents))
	if err != nil {
		return nil, err
	}
	out := make([]Decoded, len(items))
	for i, item := range items {
		ev, src, id, err := d.decodeStructured(item, nil)
		out[i] = Decoded{Event: ev, Source: src, ID: id, Err: err}
	}
	return out, nil
}

// batchItems reads a JSON array from body, at most MaxBatchSize bytes, and
// returns the text of its elements. The array's text is read as syntax
// only, letting through what each element's own decode refuses with a
// reason (text that is not UTF-8, a key twice). Elements are counted as
// they are read: the element after the first maxEvents ends the reading
// with ETOOLARGE, so that a huge batch of tiny events costs neither the
// memory nor the time of reading it whole. A body that is not a JSON array
// is a *ledger.InvalidError (ReasonMalformed); a body over MaxBatchSize is
// ETOOLARGE.
func batchItems(body io.Reader, maxEvents int) ([][]byte, error) {
	if body == nil {
		body = bytes.NewReader(nil)
	}
	lr := &limitedReader{r: body, n: MaxBatchSize}
	dec := jsontext.NewDecoder(lr, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	fail := func() error {
		if lr.err != nil {
			return lr.err
		}
		return ledger.Invalid(ledger.ReasonMalformed, "body", "a batch must be a JSON array of CloudEvents in the JSON format")
	}
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil, fail()
	}
	var text []byte // the elements, one after the other
	var ends []int
	for dec.PeekKind() != ']' {
		if len(ends) == maxEvents {
			return nil, ledger.Errorf(ledger.ETOOLARGE, "a batch holds at most %d events: send them in smaller batches", maxEvents)
		}
		v, err := dec.ReadValue()
		if err != nil {
			return nil, fail()
		}
		text = append(text, v...)
		ends = append(ends, len(text))
	}
	if _, err := dec.ReadToken(); err != nil { // ]
		return nil, fail()
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, fail()
	}
	items := make([][]byte, len(ends))
	start := 0
	for i, end := range ends {
		items[i] = text[start:end:end]
		start = end
	}
	return items, nil
}

// limitedReader reads at most n bytes of r, and keeps the reason it stopped
// early, as the error for the request: the body over the limit (ETOOLARGE)
// or unreadable (see readError).
type limitedReader struct {
	r   io.Reader
	n   int64
	err error
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	k, err := l.r.Read(p)
	l.n -= int64(k)
	switch {
	case l.n < 0:
		l.err = ledger.Errorf(ledger.ETOOLARGE, "request body is over the limit of %d bytes", MaxBatchSize)
		return 0, l.err
	case err != nil && err != io.EOF:
		l.err = readError(err)
	}
	return k, err
}

// readBody reads at most limit bytes of body.
func readBody(body io.Reader, limit int64) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	switch {
	case err != nil:
		return nil, readError(err)
	case int64(len(b)) > limit:
		return nil, ledger.Errorf(ledger.ETOOLARGE, "request body is over the limit of %d bytes", limit)
	}
	return b, nil
}

// readError is the error for a request whose body could not be read: over
// an http.MaxBytesReader's limit (ETOOLARGE), not received in the time the
// server allows (its read deadline), or unreadable.
func readError(err error) error {
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		return ledger.Errorf(ledger.ETOOLARGE, "request body is over the limit of %d bytes", maxErr.Limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ledger.Invalid(ledger.ReasonMalformed, "body", "the request body did not arrive in the time allowed: send it faster, or in smaller batches")
	}
	return ledger.Invalid(ledger.ReasonMalformed, "body", "cannot read the request body")
}

// decodeStructured decodes one event in the JSON format. extra are further
// attributes (transport headers) to check for subject identifiers.
func (d *Decoder) decodeStructured(body []byte, extra []attr) (ev *ledger.Event, source, id string, err error) {
	defer func() {
		if err != nil {
			source, id = withoutIdentifiers(body, true, source, id)
		}
	}()
	if len(body) > MaxEventSize {
		return nil, "", "", ledger.Invalid(ledger.ReasonOversize, "", "event is %d bytes, over the limit of %d", len(body), MaxEventSize)
	}
	// One read of the body checks that it is JSON and finds duplicated keys.
	bc := checkBody(body, d.decodeDataFrom)
	if !bc.valid {
		return nil, "", "", ledger.Invalid(ledger.ReasonMalformed, "", "not valid JSON")
	}
	if !bc.object {
		return nil, "", "", ledger.Invalid(ledger.ReasonMalformed, "", "a CloudEvent in the JSON format must be a JSON object")
	}
	if bc.envDup != nil {
		// Which of two ids or sources is meant cannot be told.
		if bc.envDup.Field != "id" && bc.envDup.Field != "source" {
			source, id = peekSourceID(body)
		}
		return nil, source, id, &ledger.InvalidError{Problems: []ledger.Problem{*bc.envDup}}
	}
	if len(bc.env.problems) > 0 {
		source, id = peekSourceID(body)
		probs := bc.env.problems
		// The data's problems too, when its type is known.
		var v struct {
			Type            string         `json:"type"`
			DataContentType string         `json:"datacontenttype"`
			Data            jsontext.Value `json:"data"`
		}
		if json.Unmarshal(body, &v) == nil && len(v.Data) > 0 && v.Data.Kind() != 'n' && (v.DataContentType == "" || isJSONContentType(v.DataContentType)) {
			if _, known := ledger.Types[v.Type]; known {
				probs = append(slices.Clip(probs), d.dataProblems(v.Type, v.Data)...)
			}
		}
		return nil, source, id, &ledger.InvalidError{Problems: probs}
	}
	if !bc.env.nulls && len(bc.plainData) > 0 && !d.sdkOnly {
		if at, ok := bc.plain.readAsSDK(); ok {
			var v any
			if bc.data != nil && bc.dataType == bc.plain.typ {
				v = bc.data
			}
			return d.finishPlain(bc.plain, at, bc.plainData, v, extra)
		}
	}
	read := body
	if bc.env.nulls {
		// sdk-go reads a null datacontenttype as an empty one, and
		// refuses a null data_base64: a null is an absent attribute.
		read = withoutNulls(body)
	}
	var e event.Event
	if err := e.UnmarshalJSON(read); err != nil {
		source, id = peekSourceID(body)
		return nil, source, id, structuredEnvelopeError(read, err)
	}
	return d.finish(&e, &bc, extra)
}

// decodeBinary decodes one event in binary mode: attributes in ce-* headers,
// data in the body. NATS carries datacontenttype in ce-datacontenttype, HTTP
// in Content-Type; either is accepted.
func (d *Decoder) decodeBinary(header map[string][]string, body []byte, nats bool, extra []attr) (ev *ledger.Event, source, id string, err error) {
	defer func() {
		if err != nil {
			source, id = withoutIdentifiers(body, false, source, id)
		}
	}()
	if ie := ambiguousHeader(header, true); ie != nil {
		return nil, "", "", ie
	}
	h, size := binaryHeader(header, nats)
	source, id = h.Get("Ce-Source"), h.Get("Ce-Id")
	if size+len(body) > MaxEventSize {
		return nil, source, id, ledger.Invalid(ledger.ReasonOversize, "", "event is %d bytes, over the limit of %d", size+len(body), MaxEventSize)
	}
	if sv := h.Get("Ce-Specversion"); sv != event.CloudEventsVersionV1 {
		return nil, source, id, ledger.Invalid(ledger.ReasonSpecVersion, "specversion", "specversion %q is not supported: sharelog accepts CloudEvents 1.0", clip(sv))
	}
	if ie := nonUTF8Attribute(h); ie != nil {
		return nil, source, id, ie
	}
	if probs := binaryProblems(h); len(probs) > 0 {
		return nil, source, id, &ledger.InvalidError{Problems: probs}
	}
	if len(bytes.TrimSpace(body)) > 0 && !d.sdkOnly {
		if p := plainHeader(h); p.ok {
			if at, ok := p.readAsSDK(); ok {
				return d.finishPlain(p, at, body, nil, extra)
			}
		}
	}
	msg := cehttp.NewMessage(h, io.NopCloser(bytes.NewReader(body)))
	e, err := binding.ToEvent(context.Background(), msg)
	if err != nil {
		return nil, source, id, binaryEnvelopeError(h, err)
	}
	return d.finish(e, nil, extra)
}

// nonUTF8Attribute refuses a binary-mode event with an attribute whose
// value, percent-decoded, is not valid UTF-8. CloudEvents strings are
// Unicode, and such a value would make Raw text that is not valid JSON, as
// the JSON text of a structured event or of data is refused when it is not
// UTF-8. h is as binaryHeader returns it.
func nonUTF8Attribute(h http.Header) *ledger.InvalidError {
	var bad string
	for k, vs := range h {
		if k != "Content-Type" && !utf8.ValidString(vs[0]) && (bad == "" || k < bad) {
			bad = k
		}
	}
	if bad == "" {
		return nil
	}
	return ledger.Invalid(ledger.ReasonMalformed, strings.ToLower(bad[3:]), "not valid UTF-8")
}

// ambiguousHeader refuses a message with two headers whose names differ only
// in case (NATS header names keep their case) where the decoder reads one of
// them: Content-Type, and with ce the ce-* attributes. Which of the two
// would be read is not defined.
func ambiguousHeader(header map[string][]string, ce bool) *ledger.InvalidError {
	var small [16]string
	names := small[:0]
	for k := range header {
		if strings.EqualFold(k, "Content-Type") || ce && len(k) > 3 && strings.EqualFold(k[:3], "ce-") {
			names = append(names, k)
		}
	}
	if len(names) < 2 {
		return nil
	}
	lower := func(a, b string) int {
		if c := strings.Compare(strings.ToLower(a), strings.ToLower(b)); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	}
	// The first of the names spelt more than one way, in a fixed order.
	var twice string
	if len(names) <= len(small) {
		for i, a := range names {
			for _, b := range names[i+1:] {
				if strings.EqualFold(a, b) && (twice == "" || lower(a, twice) < 0) {
					twice = a
				}
			}
		}
	} else {
		slices.SortFunc(names, lower)
		for i := 1; i < len(names) && twice == ""; i++ {
			if strings.EqualFold(names[i-1], names[i]) {
				twice = names[i]
			}
		}
	}
	if twice == "" {
		return nil
	}
	field := "Content-Type"
	if !strings.EqualFold(twice, field) {
		field = strings.ToLower(twice[3:])
	}
	return ledger.Invalid(ledger.ReasonMalformed, field, "header %s appears twice, in different capitalisations", clip(textproto.CanonicalMIMEHeaderKey(twice)))
}

// binaryHeader copies the ce-* headers of header into an http.Header with
// canonical names and percent-decoded values, as the HTTP and NATS bindings
// require, mapping the data content type to Content-Type. It returns the
// header and the size of the attributes in bytes.
func binaryHeader(header map[string][]string, nats bool) (http.Header, int) {
	h := make(http.Header, len(header))
	size := 0
	var dct, ct []string
	for k, vs := range header {
		if len(vs) == 0 {
			continue
		}
		switch {
		case strings.EqualFold(k, "ce-datacontenttype"):
			dct = vs
		case strings.EqualFold(k, "Content-Type"):
			ct = vs
		case len(k) > 3 && strings.EqualFold(k[:3], "ce-"):
			v := percentDecode(vs[0])
			h[textproto.CanonicalMIMEHeaderKey(k)] = []string{v}
			size += len(k) + len(v)
		}
	}
	if nats && dct != nil || ct == nil {
		ct = dct
	}
	if ct != nil {
		h["Content-Type"] = ct[:1]
		size += len(ct[0])
	}
	return h, size
}

// percentDecode performs the one round of percent-decoding that the HTTP and
// NATS bindings apply to header values. A value that is not validly encoded
// is kept as it is.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// finish checks a parsed CloudEvent against sharelog's rules and decodes its
// data, unless bc (for an event in structured mode) holds it decoded from
// the same text. extra are further attributes (transport headers) to check
// for subject identifiers.
func (d *Decoder) finish(e *event.Event, bc *bodyCheck, extra []attr) (*ledger.Event, string, string, error) {
	source, id := e.Source(), e.ID()
	if sv := e.SpecVersion(); sv != event.CloudEventsVersionV1 {
		return nil, source, id, ledger.Invalid(ledger.ReasonSpecVersion, "specversion", "specversion %q is not supported: sharelog accepts CloudEvents 1.0", clip(sv))
	}
	if err := e.Validate(); err != nil {
		return nil, source, id, validationProblems(err)
	}

	// Context attributes: every problem, then stop.
	var probs []ledger.Problem
	if _, ok := e.Extensions()["data"]; ok {
		// The SDK lowercases extension names: "Data" in structured mode or
		// a ce-data header would be a second data member in Raw.
		probs = append(probs, ledger.Problem{Reason: ledger.ReasonMalformed, Field: "data", Detail: "an extension attribute must not be named data (in any case): it would be a second data member"})
	}
	if e.Context.GetSubject() != "" {
		probs = append(probs, ledger.Problem{Reason: ledger.ReasonIdentifierHeader, Field: "subject", Detail: "the subject attribute must not be set: data-subject identifiers belong inside data"})
	}
	if dct := e.DataContentType(); dct != "" && !isJSONContentType(dct) {
		probs = append(probs, ledger.Problem{Reason: ledger.ReasonContentType, Field: "datacontenttype", Detail: fmt.Sprintf("datacontenttype %q is not supported: data must be application/json", clip(dct))})
	}
	typ := e.Type()
	if _, known := ledger.Types[typ]; !known {
		probs = append(probs, ledger.Problem{Reason: ledger.ReasonUnknownType, Field: "type", Detail: fmt.Sprintf("unknown event type %q", clip(typ))})
	} else if ds := e.DataSchema(); ds != "" && ds != schemas.ID(typ) {
		probs = append(probs, ledger.Problem{Reason: ledger.ReasonInvalidData, Field: "dataschema", Detail: fmt.Sprintf("dataschema must be %q for type %s, or absent", schemas.ID(typ), typ)})
	}
	if len(probs) > 0 {
		// The data's problems too, when its type is known and it is JSON.
		if ds := e.Data(); len(bytes.TrimSpace(ds)) > 0 && probs[len(probs)-1].Field != "type" && (e.DataContentType() == "" || isJSONContentType(e.DataContentType())) {
			probs = append(probs, d.dataProblems(typ, ds)...)
		}
		return nil, source, id, &ledger.InvalidError{Problems: probs}
	}

	data := e.Data()
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, source, id, ledger.Invalid(ledger.ReasonInvalidData, "data", "required: a JSON object")
	}
	// One pass of the JSON v2 decoder checks the text (UTF-8, no key twice)
	// and decodes it into the type's Go value: in structured mode, usually
	// during the read of the whole event.
	var v any
	if bc != nil && bc.data != nil && bc.dataType == typ && !e.DataBase64 && bytes.Equal(bytes.TrimSpace(data), bc.dataText) {
		v = bc.data
	} else {
		var probs []ledger.Problem
		if v, probs = d.decodeData(typ, data); len(probs) > 0 {
			return nil, source, id, &ledger.InvalidError{Problems: probs}
		}
	}
	if probs := identifiersInAttributes(subjectIDs(v), eventAttrs(e), extra); len(probs) > 0 {
		// The identifier may be in the id or source: do not echo them.
		return nil, "", "", &ledger.InvalidError{Problems: probs}
	}
	if probs := d.check.problems(v, data); len(probs) > 0 {
		return nil, source, id, &ledger.InvalidError{Problems: probs}
	}

	data, err := compactData(data)
	if err != nil {
		return nil, source, id, err
	}
	e.DataEncoded = data
	e.DataBase64 = false
	if err := e.Context.SetDataContentType(event.ApplicationJSON); err != nil {
		return nil, source, id, ledger.Invalid(ledger.ReasonContentType, "datacontenttype", "cannot set datacontenttype")
	}
	// What e.MarshalJSON does, into a buffer large enough from the start.
	var buf bytes.Buffer
	buf.Grow(rawSizeHint(e))
	if err := event.WriteJson(e, &buf); err != nil {
		return nil, source, id, ledger.Invalid(ledger.ReasonNotCloudEvent, "", "the event cannot be encoded in the CloudEvents JSON format")
	}
	raw := buf.Bytes()
	return &ledger.Event{
		Source:     source,
		ID:         id,
		Type:       typ,
		Time:       e.Time().UTC(),
		DataSchema: e.DataSchema(),
		Data:       v,
		Raw:        raw,
	}, source, id, nil
}

// compactData returns data, the JSON text of an event's data, compacted:
// the event is stored in one form whichever mode it came in, JSON data
// without whitespace, with datacontenttype application/json.
func compactData(data []byte) ([]byte, error) {
	if isCompact(data) {
		return data, nil
	}
	compact := jsontext.Value(slices.Clone(data))
	if err := compact.Compact(); err != nil {
		return nil, ledger.Invalid(ledger.ReasonMalformed, "data", "not valid JSON")
	}
	return compact, nil
}

// isCompact reports whether data, valid JSON, has no whitespace outside its
// strings: compacting it would change nothing. It jumps from quote to quote.
func isCompact(data []byte) bool {
	for {
		// Outside a string, up to the next quote.
		q := bytes.IndexByte(data, '"')
		if q < 0 {
			return !bytes.ContainsAny(data, " \t\r\n")
		}
		if bytes.ContainsAny(data[:q], " \t\r\n") {
			return false
		}
		data = data[q+1:]
		// In the string, up to the quote that ends it: one after an even
		// number of backslashes.
		for {
			q = bytes.IndexByte(data, '"')
			if q < 0 {
				return false // not JSON: compacting it would tell
			}
			n := 0
			for n < q && data[q-1-n] == '\\' {
				n++
			}
			data = data[q+1:]
			if n%2 == 0 {
				break
			}
		}
	}
}

// dataProblems returns every problem of data, the data of an event of
// known type typ, as the decode and the validate tags find them.
func (d *Decoder) dataProblems(typ string, data []byte) []ledger.Problem {
	v, probs := d.decodeData(typ, data)
	if len(probs) > 0 {
		return probs
	}
	return d.check.problems(v, data)
}

// rawSizeHint estimates the length of e in the CloudEvents JSON format.
func rawSizeHint(e *event.Event) int {
	// Member names, punctuation, specversion, datacontenttype and time.
	n := 160 + len(e.DataEncoded) + len(e.ID()) + len(e.Source()) + len(e.Type()) + len(e.DataSchema())
	for name, v := range e.Extensions() {
		n += len(name) + 8
		if s, ok := v.(string); ok {
			n += len(s)
		} else {
			n += 24
		}
	}
	return n
}

// isJSONContentType reports whether ct is application/json, with at most a
// UTF-8 (or ASCII) charset parameter.
func isJSONContentType(ct string) bool {
	if ct == event.ApplicationJSON {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" {
			return false
		}
		switch strings.ToLower(v) {
		case "utf-8", "utf8", "us-ascii":
		default:
			return false
		}
	}
	return true
}

// validationProblems turns sdk-go's validation error into problems, one per
// attribute, sorted by attribute name.
func validationProblems(err error) *ledger.InvalidError {
	var ve event.ValidationError
	if !errors.As(err, &ve) || len(ve) == 0 {
		return ledger.Invalid(ledger.ReasonNotCloudEvent, "", "not a valid CloudEvent")
	}
	ie := &ledger.InvalidError{}
	for _, k := range sortedKeys(ve) {
		ie.Problems = append(ie.Problems, ledger.Problem{Reason: ledger.ReasonNotCloudEvent, Field: k, Detail: "missing or invalid CloudEvents attribute"})
	}
	return ie
}

// structuredEnvelopeError classifies sdk-go's failure to read a JSON-format
// event. sdk-go's messages may quote input, so they are not passed on; the
// offending attribute is found by checking each one.
func structuredEnvelopeError(body []byte, err error) *ledger.InvalidError {
	var ve event.ValidationError
	if errors.As(err, &ve) {
		if _, ok := ve["specversion"]; ok {
			// sdk-go refuses a specversion it does not know and a missing
			// one: tell which from the body, not from its message.
			var sv struct {
				SpecVersion jsontext.Value `json:"specversion"`
			}
			if json.Unmarshal(body, &sv) == nil && len(sv.SpecVersion) > 0 {
				// Present, whatever its JSON type: sdk-go read it as a
				// string it does not know.
				return ledger.Invalid(ledger.ReasonSpecVersion, "specversion", "specversion is not supported: sharelog accepts CloudEvents 1.0")
			}
			return ledger.Invalid(ledger.ReasonNotCloudEvent, "specversion", "required: specversion 1.0")
		}
		return validationProblems(ve)
	}
	var m map[string]jsontext.Value
	if json.Unmarshal(body, &m) == nil {
		ie := &ledger.InvalidError{}
		for _, name := range sortedKeys(m) {
			if detail := checkJSONAttribute(name, m[name]); detail != "" {
				ie.Problems = append(ie.Problems, ledger.Problem{Reason: ledger.ReasonNotCloudEvent, Field: name, Detail: detail})
			}
		}
		if len(ie.Problems) > 0 {
			return ie
		}
	}
	return ledger.Invalid(ledger.ReasonNotCloudEvent, "", "the CloudEvents attributes cannot be read")
}

// checkJSONAttribute says what is wrong with one member of a JSON-format
// event, or returns "" if nothing is.
func checkJSONAttribute(name string, raw jsontext.Value) string {
	switch name {
	case "data", "data_base64":
		return ""
	case "specversion", "id", "type", "subject", "datacontenttype", "source", "dataschema", "time":
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "must be a string"
		}
		switch name {
		case "time":
			if _, err := types.ParseTime(s); err != nil {
				return "must be an RFC 3339 timestamp"
			}
		case "source":
			if types.ParseURIRef(s) == nil {
				return "must be a URI-reference"
			}
		case "dataschema":
			if types.ParseURI(s) == nil {
				return "must be a URI"
			}
		}
		return ""
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return "invalid JSON"
	}
	switch v.(type) {
	case string, bool, float64:
		return ""
	case nil:
		return "" // null: absent
	default:
		return "an extension value must be a string, number or boolean"
	}
}

// binaryEnvelopeError classifies sdk-go's failure to read a binary-mode
// event, naming every ce-* header that cannot be read, sorted by attribute.
func binaryEnvelopeError(h http.Header, err error) *ledger.InvalidError {
	var ve event.ValidationError
	if errors.As(err, &ve) {
		return validationProblems(ve)
	}
	ie := &ledger.InvalidError{}
	add := func(field, detail string) {
		ie.Problems = append(ie.Problems, ledger.Problem{Reason: ledger.ReasonNotCloudEvent, Field: field, Detail: detail})
	}
	if v := h.Get("Ce-Dataschema"); v != "" && types.ParseURI(v) == nil {
		add("dataschema", "must be a URI")
	}
	if v := h.Get("Ce-Source"); v != "" && types.ParseURIRef(v) == nil {
		add("source", "must be a URI-reference")
	}
	if v := h.Get("Ce-Time"); v != "" {
		if _, err := types.ParseTime(v); err != nil {
			add("time", "must be an RFC 3339 timestamp")
		}
	}
	if len(ie.Problems) > 0 {
		return ie
	}
	return ledger.Invalid(ledger.ReasonNotCloudEvent, "", "the CloudEvents attributes in the ce-* headers cannot be read")
}

// peekSourceID reads source and id from a JSON-format event that sdk-go
// refused, for error reports.
func peekSourceID(body []byte) (source, id string) {
	var v struct {
		Source any `json:"source"`
		ID     any `json:"id"`
	}
	// Names match regardless of case and the last of two counts, as they
	// did when encoding/json read them here.
	if json.Unmarshal(body, &v, json.MatchCaseInsensitiveNames(true), jsontext.AllowDuplicateNames(true)) != nil {
		return "", ""
	}
	source, _ = v.Source.(string)
	id, _ = v.ID.(string)
	return source, id
}

// mediaType returns the lowercased media type of a Content-Type value.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c
	}
	return 0
}

// clip shortens a value quoted in an error detail.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
