package containertest

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// iptSnapshot is the iptables-save output of one tool (iptables or
// ip6tables): per table, its chain names and rule lines.
type iptSnapshot map[string]*iptTable

type iptTable struct {
	chains []string
	rules  []string // "-A CHAIN spec..." lines in order
}

func saveIPTables(tool string) (iptSnapshot, error) {
	out, err := exec.Command(tool + "-save").Output()
	if err != nil {
		return nil, fmt.Errorf("%s-save: %w", tool, err)
	}
	return parseIPTablesSave(string(out)), nil
}

// parseIPTablesSave parses iptables-save output.
func parseIPTablesSave(out string) iptSnapshot {
	snap := iptSnapshot{}
	var cur *iptTable
	for line := range strings.SplitSeq(out, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			cur = &iptTable{}
			snap[line[1:]] = cur
		case cur == nil:
		case strings.HasPrefix(line, ":"):
			name, _, _ := strings.Cut(line[1:], " ")
			cur.chains = append(cur.chains, name)
		case strings.HasPrefix(line, "-A "):
			cur.rules = append(cur.rules, line)
		}
	}
	return snap
}

// removeNewChains deletes, with tool, the rules and chains whose name
// starts with prefix that exist now but not in before: first the new rules
// mentioning prefix (jumps from built-in chains included), then the new
// chains (flushed, then deleted). Chains and rules that existed before are
// left alone.
func removeNewChains(tool string, before iptSnapshot, prefix string) error {
	now, err := saveIPTables(tool)
	if err != nil {
		return err
	}
	var errs []string
	for table, t := range now {
		var was iptTable
		if b := before[table]; b != nil {
			was = *b
		}
		for i := len(t.rules) - 1; i >= 0; i-- {
			r := t.rules[i]
			if !strings.Contains(r, prefix) || slices.Contains(was.rules, r) {
				continue
			}
			args := append([]string{"-w", "-t", table, "-D"}, shellFields(strings.TrimPrefix(r, "-A "))...)
			if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Sprintf("%s %s: %v: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(string(out))))
			}
		}
		var chains []string
		for _, c := range t.chains {
			if strings.HasPrefix(c, prefix) && !slices.Contains(was.chains, c) {
				chains = append(chains, c)
			}
		}
		for _, c := range chains {
			_ = exec.Command(tool, "-w", "-t", table, "-F", c).Run()
		}
		for _, c := range chains {
			if out, err := exec.Command(tool, "-w", "-t", table, "-X", c).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Sprintf("%s -t %s -X %s: %v: %s", tool, table, c, err, strings.TrimSpace(string(out))))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// shellFields splits an iptables-save rule into arguments, honouring the
// double quotes iptables-save puts around comments.
func shellFields(s string) []string {
	var out []string
	var b strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			inQuote, have = !inQuote, true
		case c == ' ' && !inQuote:
			if have {
				out = append(out, b.String())
				b.Reset()
				have = false
			}
		default:
			b.WriteByte(c)
			have = true
		}
	}
	if have {
		out = append(out, b.String())
	}
	return out
}
