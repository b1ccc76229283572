package output

import (
	"math"
	"testing"
)

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{1024*1024 - 1, "1.0 MiB"}, // 1023.999 KiB rounds up: promote
		{1024 * 1024, "1.0 MiB"},
		{10*1024*1024 + 512*1024, "10.5 MiB"},
		{1 << 30, "1.0 GiB"},
		{1 << 40, "1.0 TiB"},
		{1 << 50, "1.0 PiB"},
		{1 << 60, "1.0 EiB"},
		{math.MaxUint64, "16.0 EiB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.in); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatRate(t *testing.T) {
	tests := []struct {
		in   float64
		bits bool
		want string
	}{
		{0, false, "0 B/s"},
		{0, true, "0 bit/s"},
		{0.4, false, "0 B/s"},
		{1, false, "1 B/s"},
		{1, true, "8 bit/s"},
		{1023, false, "1023 B/s"},
		{1023.6, false, "1.0 KiB/s"}, // would print "1024 B/s": promote
		{1024, false, "1.0 KiB/s"},
		{1024, true, "8.2 kbit/s"},
		{124.9, true, "999 bit/s"},
		{124.99, true, "1.0 kbit/s"},
		{125, true, "1.0 kbit/s"},
		{125e6, true, "1.0 Gbit/s"},
		{1.25e9, true, "10.0 Gbit/s"},
		{1.5 * 1024 * 1024, false, "1.5 MiB/s"},
		{math.MaxUint64, false, "16.0 EiB/s"},
		{math.MaxUint64, true, "147.6 Ebit/s"},
		{1e30, false, "867361737988.4 EiB/s"}, // beyond the largest unit: no panic, no loss
		{math.MaxFloat64, true, Invalid},      // ×8 overflows
		{math.NaN(), false, Invalid},
		{math.NaN(), true, Invalid},
		{math.Inf(1), false, Invalid},
		{math.Inf(-1), true, Invalid},
		{-1, false, Invalid},
	}
	for _, tt := range tests {
		if got := FormatRate(tt.in, tt.bits); got != tt.want {
			t.Errorf("FormatRate(%v, %v) = %q, want %q", tt.in, tt.bits, got, tt.want)
		}
	}
}

func TestFormatExactRate(t *testing.T) {
	tests := []struct {
		in   float64
		bits bool
		want string
	}{
		{0, false, "0"},
		{1234.5678901, false, "1234.5678901"},
		{1234.5678901, true, "9876.5431208"},
		{1e21, false, "1000000000000000000000"},
		{math.NaN(), false, Invalid},
		{math.Inf(1), true, Invalid},
		{-0.5, false, Invalid},
	}
	for _, tt := range tests {
		if got := formatExactRate(tt.in, tt.bits); got != tt.want {
			t.Errorf("formatExactRate(%v, %v) = %q, want %q", tt.in, tt.bits, got, tt.want)
		}
	}
}
