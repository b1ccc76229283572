package output

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// TableOptions controls how [Table] prints values.
type TableOptions struct {
	// Bits prints rates in bits per second with SI units (kbit/s, Mbit/s…)
	// instead of bytes per second with IEC units (KiB/s, MiB/s…), like
	// nload's --unit. Totals stay in bytes.
	Bits bool
	// Exact prints raw numbers with no rounding and no units: totals as
	// integer bytes, rates as the exact float64 value in bytes/s (or bits/s
	// with Bits). The unit is then named in the column header.
	Exact bool
}

// StateGone is the state printed for an interface that has disappeared
// (snapshot.Interface.Present == false).
const StateGone = "gone"

// column alignment
const (
	left = iota
	right
)

// Table writes one row per interface of s, sorted by name then netns, with
// aligned columns: interface (name@netns), oper state, current RX and TX
// rate, kernel RX/TX byte and packet counters, and rx/tx errors and drops.
// Interfaces that have disappeared are shown with state "gone" and no rate.
func Table(w io.Writer, s snapshot.Snapshot, opt TableOptions) error {
	ifs := sortedInterfaces(s.Interfaces)

	rxRate, txRate, rxBytes, txBytes := "RX RATE", "TX RATE", "RX BYTES", "TX BYTES"
	if opt.Exact {
		unit := "B/s"
		if opt.Bits {
			unit = "bit/s"
		}
		rxRate, txRate = "RX "+unit, "TX "+unit
	}
	header := []string{"IFACE", "STATE", rxRate, txRate, rxBytes, txBytes, "RX PKTS", "TX PKTS", "ERRS RX/TX", "DROPS RX/TX"}
	align := []int{left, left, right, right, right, right, right, right, right, right}

	rows := make([][]string, 0, len(ifs)+1)
	rows = append(rows, header)
	for _, ifc := range ifs {
		rows = append(rows, tableRow(ifc, opt))
	}
	bw := bufio.NewWriter(w)
	writeAligned(bw, rows, align)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

func tableRow(ifc *snapshot.Interface, opt TableOptions) []string {
	state := ifc.OperState
	if state == "" {
		state = "unknown"
	}
	rate := func(v float64) string {
		if opt.Exact {
			return formatExactRate(v, opt.Bits)
		}
		return FormatRate(v, opt.Bits)
	}
	rx, tx := rate(ifc.RxBytesRate.Current), rate(ifc.TxBytesRate.Current)
	if !ifc.Present {
		state, rx, tx = StateGone, Invalid, Invalid
	}
	bytes := func(n uint64) string {
		if opt.Exact {
			return strconv.FormatUint(n, 10)
		}
		return FormatBytes(n)
	}
	k := &ifc.Kernel
	return []string{
		DisplayName(ifc),
		state,
		rx,
		tx,
		bytes(k.RxBytes),
		bytes(k.TxBytes),
		strconv.FormatUint(k.RxPackets, 10),
		strconv.FormatUint(k.TxPackets, 10),
		strconv.FormatUint(k.RxErrors, 10) + "/" + strconv.FormatUint(k.TxErrors, 10),
		strconv.FormatUint(k.RxDropped, 10) + "/" + strconv.FormatUint(k.TxDropped, 10),
	}
}

// DisplayName is the interface name, followed by "@netns" when the
// interface lives in another network namespace.
func DisplayName(ifc *snapshot.Interface) string {
	if ifc.Netns == "" {
		return ifc.Name
	}
	return ifc.Name + "@" + ifc.Netns
}

// sortedInterfaces returns pointers into in, sorted by name, netns name and
// netns inode; the snapshot itself is never modified.
func sortedInterfaces(in []snapshot.Interface) []*snapshot.Interface {
	out := make([]*snapshot.Interface, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	slices.SortStableFunc(out, func(a, b *snapshot.Interface) int {
		return cmp.Or(
			cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Netns, b.Netns),
			cmp.Compare(a.NetnsInode, b.NetnsInode),
		)
	})
	return out
}

// writeAligned pads every cell to its column's width (cells are ASCII or
// at least one cell per rune wide: interface names and numbers), separating
// columns by two spaces, without trailing blanks.
func writeAligned(w *bufio.Writer, rows [][]string, align []int) {
	widths := make([]int, len(align))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		for i, c := range r {
			pad := widths[i] - utf8.RuneCountInString(c)
			last := i == len(r)-1
			if i > 0 {
				w.WriteString("  ")
			}
			if align[i] == right {
				writeSpaces(w, pad)
				w.WriteString(c)
			} else {
				w.WriteString(c)
				if !last {
					writeSpaces(w, pad)
				}
			}
		}
		w.WriteByte('\n')
	}
}

func writeSpaces(w *bufio.Writer, n int) {
	for range n {
		w.WriteByte(' ')
	}
}

// JSON writes s as one compact JSON object followed by a newline, so that
// repeated calls (ifstat --watch) produce JSON Lines. Nothing is rounded:
// counters are integers, rates are float64 in their shortest exact form.
// A NaN or infinite rate is an error (JSON cannot represent it).
func JSON(w io.Writer, s snapshot.Snapshot) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("encode snapshot as json: %w", err)
	}
	return nil
}
