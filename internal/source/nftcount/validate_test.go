package nftcount

import (
	"net/netip"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	ok := []string{"a", "_x", "web-1.eth0", "A_b", strings.Repeat("n", maxNameLen)}
	bad := []string{"", "1a", "-a", ".a", "a b", "a\"b", "é", "a/b", strings.Repeat("n", maxNameLen+1)}
	for _, n := range ok {
		if err := validName("counter", n, maxNameLen); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := validName("counter", n, maxNameLen); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

// TestSetValidatesFirst needs no kernel: a bad rule set is refused before
// anything is sent.
func TestSetValidatesFirst(t *testing.T) {
	var c Counters
	a := netip.MustParseAddr("192.0.2.1")
	for _, v := range []struct {
		rules []Rule
		want  string
	}{
		{[]Rule{{"ok", a}, {"no way", a}}, `"no way"`},
		{[]Rule{{"dup", a}, {"dup", a}}, `duplicate counter name "dup"`},
		{[]Rule{{"zero", netip.Addr{}}}, `counter "zero": invalid address`},
		{[]Rule{{"zoned", netip.MustParseAddr("fe80::1%eth0")}}, `counter "zoned": address fe80::1%eth0 has a zone`},
	} {
		err := c.Set(v.rules)
		if err == nil || !strings.Contains(err.Error(), v.want) {
			t.Errorf("Set(%v) = %v, want an error with %s", v.rules, err, v.want)
		}
	}
	if _, err := Open("/nonexistent/netns", "bad table"); err == nil || !strings.Contains(err.Error(), `"bad table"`) {
		t.Errorf("Open with a bad table name: %v", err)
	}
}
