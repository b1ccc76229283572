package chart

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"testing"
	"time"
)

// FuzzCharts: titles and labels are untrusted names. Whatever they hold,
// both charts are one well-formed XML document.
func FuzzCharts(f *testing.F) {
	f.Add("eth0 — daily", "2026-11-01", uint64(1<<30), uint64(5), 1.5e6, true)
	f.Add(hostile, "]]><!--", uint64(math.MaxUint64), uint64(0), math.NaN(), false)
	f.Add("\xef\xbf\xbe\u2028", "\t\r\n", uint64(1), uint64(1), 0.0, true)
	f.Fuzz(func(t *testing.T, title, label string, rx, tx uint64, rate float64, dark bool) {
		var b bytes.Buffer
		err := Bars(&b, BarChart{Title: title, Labels: []string{label, label + label}, Rx: []uint64{rx, tx}, Tx: []uint64{tx, rx},
			Estimate: &Estimate{Rx: rx / 2, Tx: tx | 1}, Dark: dark})
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, b.Bytes())
		b.Reset()
		if math.IsInf(rate, 0) || rate < 0 {
			rate = math.Abs(rate)
			if math.IsInf(rate, 0) {
				rate = math.MaxFloat64
			}
		}
		err = Line(&b, LineChart{Title: title, Times: []time.Time{time.Unix(0, 0), time.Unix(int64(rx%1e9)+1, 0)},
			Rx: []float64{rate, float64(rx)}, Tx: []float64{float64(tx), rate}, Dark: dark})
		if err != nil {
			t.Fatal(err)
		}
		wellFormed(t, b.Bytes())
	})
}

func wellFormed(t *testing.T, b []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, b)
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if roots != 1 || depth != 0 {
		t.Fatalf("%d root elements, depth %d at the end", roots, depth)
	}
}
