package testnet

import (
	"strings"
	"testing"
)

func FuzzParseCgroup2Mount(f *testing.F) {
	f.Add("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n")
	f.Add("41 31 0:38 / /a\\040b\\ rw - cgroup2 x\n - \n-  -\n")
	f.Add(`1 2 3 4 \1`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseCgroup2Mount(strings.NewReader(s))
		if err == nil && p == "" && !strings.Contains(s, "cgroup2") {
			t.Errorf("found a cgroup2 mount in %q", s)
		}
	})
}
