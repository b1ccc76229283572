package output

import (
	"math"
	"strconv"
)

var (
	byteUnits     = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	byteRateUnits = []string{"B/s", "KiB/s", "MiB/s", "GiB/s", "TiB/s", "PiB/s", "EiB/s"}
	bitRateUnits  = []string{"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s", "Pbit/s", "Ebit/s"}
)

// Invalid is what FormatRate prints for a rate that is NaN, infinite or
// negative: such a value is a bug upstream and must not look like a number.
const Invalid = "-"

// FormatBytes formats a byte count with IEC (power-of-1024) units: "0 B",
// "1023 B", "1.0 KiB", …, "16.0 EiB". Values of 1 KiB and more have one
// decimal; a value that would round up to 1024 of a unit is shown in the next
// unit ("1.0 MiB", never "1024.0 KiB").
func FormatBytes(n uint64) string {
	if n < 1024 {
		return strconv.FormatUint(n, 10) + " B"
	}
	return scale(float64(n), 1024, byteUnits)
}

// FormatRate formats a rate given in bytes per second. With bits false it
// uses IEC byte units ("B/s", "KiB/s", "MiB/s", …); with bits true it
// multiplies by 8 and uses SI bit units ("bit/s", "kbit/s", "Mbit/s", …, as
// link speeds and nload/iftop do). NaN, ±Inf and negative rates print as
// [Invalid].
func FormatRate(bytesPerSec float64, bits bool) string {
	if math.IsNaN(bytesPerSec) || math.IsInf(bytesPerSec, 0) || bytesPerSec < 0 {
		return Invalid
	}
	if bits {
		v := bytesPerSec * 8
		if math.IsInf(v, 0) {
			return Invalid
		}
		return scale(v, 1000, bitRateUnits)
	}
	return scale(bytesPerSec, 1024, byteRateUnits)
}

// scale divides v by base until it is below base (or the units run out) and
// formats it: no decimals in the base unit, one decimal otherwise.
func scale(v, base float64, units []string) string {
	i := 0
	for i < len(units)-1 && v >= base {
		v /= base
		i++
	}
	s := strconv.FormatFloat(v, 'f', prec(i), 64)
	// Rounding may have produced "1024" (or "1000.0"): promote.
	if i < len(units)-1 {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f >= base {
			v /= base
			i++
			s = strconv.FormatFloat(v, 'f', prec(i), 64)
		}
	}
	return s + " " + units[i]
}

func prec(unit int) int {
	if unit == 0 {
		return 0
	}
	return 1
}

// formatExactRate prints a rate with the shortest representation that
// round-trips, i.e. without any rounding.
func formatExactRate(bytesPerSec float64, bits bool) string {
	if math.IsNaN(bytesPerSec) || math.IsInf(bytesPerSec, 0) || bytesPerSec < 0 {
		return Invalid
	}
	if bits {
		bytesPerSec *= 8 // exact: a power of two
		if math.IsInf(bytesPerSec, 0) {
			return Invalid
		}
	}
	return strconv.FormatFloat(bytesPerSec, 'f', -1, 64)
}
