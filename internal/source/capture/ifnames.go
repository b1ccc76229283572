package capture

import (
	"fmt"
	"net"

	"github.com/netmeter/netmeter/internal/nsutil"
)

// ifNames maps interface indexes to names in one network namespace.
type ifNames map[int]string

// interfaceNames lists the interfaces of nsPath, or of the first pid's
// namespace when nsPath is empty and pids are given.
func interfaceNames(nsPath string, pids []int) (ifNames, error) {
	if nsPath == "" && len(pids) > 0 {
		nsPath = fmt.Sprintf("/proc/%d/ns/net", pids[0])
	}
	out := ifNames{}
	err := nsutil.Do(nsPath, func() error {
		ifs, err := net.Interfaces()
		if err != nil {
			return err
		}
		for _, i := range ifs {
			out[i.Index] = i.Name
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	return out, nil
}

func (n ifNames) name(idx int) string {
	if s, ok := n[idx]; ok {
		return s
	}
	return fmt.Sprintf("if%d", idx)
}

func (n ifNames) index(name string) (int, bool) {
	for i, s := range n {
		if s == name {
			return i, true
		}
	}
	return 0, false
}
