package output

import (
	"cmp"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// Containers writes one row per container of s (the `netmeter top
// --containers` table, a "docker stats" for the network): name, runtime,
// billing account, current IP-byte rates, IP-byte totals, the totals split
// by peer (EXTERNAL: other hosts and the internet; C↔C: other containers on
// this host; C↔HOST: this host's own processes; each is sent+received), and
// the TCP connections accepted and opened since netmeter started. Traffic
// inside the container's own namespace (loopback) is in the totals but in
// none of the three peer columns. Rows are sorted by current rate
// (sent+received), highest first, then by name and id.
func Containers(w io.Writer, s snapshot.Snapshot, opt TableOptions) error {
	txRate, rxRate := rateHeaders(opt)
	rows := [][]string{{"NAME", "RUNTIME", "ACCOUNT", txRate, rxRate, "TX BYTES", "RX BYTES", "EXTERNAL", "C↔C", "C↔HOST", "ACCEPTED", "OPENED"}}
	align := []int{left, left, left, right, right, right, right, right, right, right, right, right}

	ctrs := make([]*snapshot.Container, len(s.Containers))
	for i := range s.Containers {
		ctrs[i] = &s.Containers[i]
	}
	slices.SortStableFunc(ctrs, func(a, b *snapshot.Container) int {
		return cmp.Or(
			cmpDesc(a.TxRate.Current+a.RxRate.Current, b.TxRate.Current+b.RxRate.Current),
			cmp.Compare(ContainerName(a), ContainerName(b)),
			cmp.Compare(a.ID, b.ID),
		)
	})
	f := formatter{opt}
	both := func(t snapshot.Traffic) string { return f.bytes(t.TxBytes + t.RxBytes) }
	for _, c := range ctrs {
		rows = append(rows, []string{
			ContainerName(c), orDash(Printable(c.Runtime)), orDash(Printable(c.Account)),
			f.rate(c.TxRate.Current), f.rate(c.RxRate.Current),
			f.bytes(c.Total.TxBytes), f.bytes(c.Total.RxBytes),
			both(c.External), both(c.Local), both(c.Host),
			strconv.FormatUint(c.Accepted, 10), strconv.FormatUint(c.Opened, 10),
		})
	}
	return flush(w, rows, align)
}

// ShortIDLen is how many characters of a container id name it when the
// runtime gave no name (as `docker ps` abbreviates ids).
const ShortIDLen = 12

// ContainerName is what names a container in a table: its name, else its
// id cut to [ShortIDLen] characters, else "-". Control characters are
// replaced (see [Printable]).
func ContainerName(c *snapshot.Container) string {
	if c.Name != "" {
		return Printable(c.Name)
	}
	return orDash(Printable(ShortID(c.ID)))
}

// ShortID is id cut to [ShortIDLen] bytes; ids of other forms (an nspawn
// or LXC machine name) shorter than that are returned whole.
func ShortID(id string) string {
	if len(id) <= ShortIDLen {
		return id
	}
	return strings.ToValidUTF8(id[:ShortIDLen], "")
}

// Printable replaces every rune that is not printable (control characters,
// escape sequences' ESC, invalid UTF-8) with "?", so that names and labels
// chosen by a container's owner cannot drive the terminal.
func Printable(s string) string {
	clean := true
	for _, r := range s {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}
