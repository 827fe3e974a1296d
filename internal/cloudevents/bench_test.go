package cloudevents

import (
	"testing"
)

// BenchmarkDecodeStructured decodes a realistic disclosure in structured
// mode, the ingest hot path.
func BenchmarkDecodeStructured(b *testing.B) {
	d := newDecoder(b)
	body := fixtureBody(b, "valid/disclosure-dpa-part3.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecodeStructured(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeStructuredParallel shows throughput on every core.
func BenchmarkDecodeStructuredParallel(b *testing.B) {
	d := newDecoder(b)
	body := fixtureBody(b, "valid/disclosure-dpa-part3.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := d.DecodeStructured(body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDecodeBinary decodes the same disclosure as a NATS binary-mode
// message.
func BenchmarkDecodeBinary(b *testing.B) {
	d := newDecoder(b)
	attrs, data, ok := binaryForm(fixtureBody(b, "valid/disclosure-dpa-part3.json"))
	if !ok {
		b.Fatal("no binary form")
	}
	h := natsBinary(attrs)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.DecodeMessage(h, data); err != nil {
			b.Fatal(err)
		}
	}
}
