package testnet

import (
	"bytes"
	"fmt"

	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/source/iface"
)

// LinkCounters returns link's counters from /proc/net/dev as seen inside
// the namespace (the caller's if ns is nil), parsed by netmeter's own
// /proc/net/dev parser: the kernel's ground truth for tests.
func (ns *Netns) LinkCounters(link string) (snapshot.LinkCounters, error) {
	b, err := ns.ProcNetDev()
	if err != nil {
		return snapshot.LinkCounters{}, err
	}
	links, err := iface.ParseProcNetDev(bytes.NewReader(b))
	if err != nil {
		return snapshot.LinkCounters{}, err
	}
	for _, l := range links {
		if l.Name == link {
			return l.Counters, nil
		}
	}
	return snapshot.LinkCounters{}, fmt.Errorf("no %s in /proc/net/dev of %s", link, ns)
}
