package testnet

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcNet reads /proc/net/<name> as seen inside the namespace (the
// caller's if ns is nil).
func (ns *Netns) ProcNet(name string) ([]byte, error) {
	var b []byte
	err := ns.Do(func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	})
	return b, err
}

// SNMP returns the namespace's /proc/net/snmp counters (or netstat's, with
// name "netstat") as map[group][field], e.g. s["Tcp"]["RetransSegs"]: the
// kernel's own ground truth for retransmissions and drops.
func (ns *Netns) SNMP(name string) (map[string]map[string]int64, error) {
	b, err := ns.ProcNet(name)
	if err != nil {
		return nil, err
	}
	return ParseSNMP(b)
}

// ParseSNMP parses the header-line/value-line pairs of /proc/net/snmp and
// /proc/net/netstat.
func ParseSNMP(b []byte) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		head := strings.Fields(sc.Text())
		if !sc.Scan() {
			return nil, fmt.Errorf("snmp: %q has no value line", strings.Join(head, " "))
		}
		vals := strings.Fields(sc.Text())
		if len(head) == 0 || len(head) != len(vals) || head[0] != vals[0] {
			return nil, fmt.Errorf("snmp: header and values disagree: %q / %q", strings.Join(head, " "), strings.Join(vals, " "))
		}
		group := strings.TrimSuffix(head[0], ":")
		m := out[group]
		if m == nil {
			m = map[string]int64{}
			out[group] = m
		}
		for i := 1; i < len(head); i++ {
			v, err := strconv.ParseInt(vals[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("snmp: %s %s: %w", group, head[i], err)
			}
			m[head[i]] = v
		}
	}
	return out, sc.Err()
}
