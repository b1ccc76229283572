package diagnose

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ParseSNMP parses /proc/net/snmp or /proc/net/netstat: pairs of lines, a
// header ("Tcp: RtoAlgorithm RtoMin …") and its values ("Tcp: 1 200 …").
// Keys are "Group.Name" ("TcpExt.ListenOverflows"). Negative values (Tcp
// MaxConn is -1) read as 0.
func ParseSNMP(b []byte) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var head []string
	var group string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		g, ok := strings.CutSuffix(fields[0], ":")
		if !ok {
			return nil, fmt.Errorf("line %q: no group", sc.Text())
		}
		if head == nil {
			head, group = fields[1:], g
			continue
		}
		if g != group {
			return nil, fmt.Errorf("group %s: names without values", group)
		}
		if len(fields)-1 != len(head) {
			return nil, fmt.Errorf("group %s: %d names, %d values", g, len(head), len(fields)-1)
		}
		for i, v := range fields[1:] {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				u, uerr := strconv.ParseUint(v, 10, 64)
				if uerr != nil {
					return nil, fmt.Errorf("group %s %s: %w", g, head[i], err)
				}
				out[g+"."+head[i]] = u
				continue
			}
			out[g+"."+head[i]] = uint64(max(n, 0))
		}
		head = nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if head != nil {
		return nil, fmt.Errorf("group %s: names without values", group)
	}
	return out, nil
}

// ParseSNMP6 parses /proc/net/snmp6: one "Name value" per line. Lines that
// do not parse are skipped.
func ParseSNMP6(b []byte) map[string]uint64 {
	out := map[string]uint64{}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out
}
