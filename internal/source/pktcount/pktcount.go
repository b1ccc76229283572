// Package pktcount counts packets and IP bytes (skb->len) crossing one
// cgroup2 directory, per direction, with the cgroup_skb programs in
// bpf/pktcount.c. It is the smallest BPF source and the reference for how
// sources load, attach and read through internal/bpfload.
package pktcount

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/netmeter/netmeter/internal/bpfload"
)

// Counts are totals since Open for one direction, summed over CPUs.
type Counts struct {
	Packets uint64
	Bytes   uint64 // IP bytes: IP header + transport header + payload
}

// Requirements are what pktcount needs from the kernel and the process.
var Requirements = bpfload.Requirements{
	Name:         "pktcount",
	Capabilities: []bpfload.Capability{bpfload.CapBPF, bpfload.CapNetAdmin},
	ProgramTypes: []ebpf.ProgramType{ebpf.CGroupSKB},
	MapTypes:     []ebpf.MapType{ebpf.PerCPUArray},
}

// Counter is pktcount loaded and attached to one cgroup.
type Counter struct {
	objs  pktcountObjects
	links []link.Link
	path  string
}

// Open loads pktcount and attaches its ingress and egress programs to the
// cgroup2 directory cgroupPath ("" means the cgroup2 mount's root, which
// sees every socket on the host). Errors are classified by bpfload.
func Open(cgroupPath string) (*Counter, error) {
	path, err := bpfload.ResolveCgroup(cgroupPath)
	if err != nil {
		return nil, fmt.Errorf("open pktcount: %w", err)
	}
	if err := bpfload.Prepare(Requirements); err != nil {
		return nil, err
	}
	spec, err := loadPktcount()
	if err != nil {
		return nil, fmt.Errorf("open pktcount: %w", err)
	}

	c := &Counter{path: path}
	if err := spec.LoadAndAssign(&c.objs, nil); err != nil {
		return nil, bpfload.Wrap("load pktcount", err, Requirements.Capabilities...)
	}
	for _, a := range []struct {
		prog   *ebpf.Program
		attach ebpf.AttachType
	}{
		{c.objs.CountIngress, ebpf.AttachCGroupInetIngress},
		{c.objs.CountEgress, ebpf.AttachCGroupInetEgress},
	} {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: path, Attach: a.attach, Program: a.prog})
		if err != nil {
			c.Close()
			return nil, bpfload.Wrap(fmt.Sprintf("attach pktcount %s to %s", a.attach, path), err,
				Requirements.Capabilities...)
		}
		c.links = append(c.links, l)
	}
	return c, nil
}

// Cgroup returns the cgroup2 directory the programs are attached to.
func (c *Counter) Cgroup() string { return c.path }

// Read returns the totals since Open, summed over all CPUs.
func (c *Counter) Read() (ingress, egress Counts, err error) {
	if ingress, err = c.read(pktcountDirectionDIRECTION_INGRESS); err != nil {
		return Counts{}, Counts{}, err
	}
	if egress, err = c.read(pktcountDirectionDIRECTION_EGRESS); err != nil {
		return Counts{}, Counts{}, err
	}
	return ingress, egress, nil
}

func (c *Counter) read(dir pktcountDirection) (Counts, error) {
	var perCPU []pktcountCounters
	if err := c.objs.PktCounts.Lookup(uint32(dir), &perCPU); err != nil {
		return Counts{}, fmt.Errorf("read pktcount map %s: %w", pktcountMapPktCounts, err)
	}
	var sum Counts
	for _, v := range perCPU {
		sum.Packets += v.Packets
		sum.Bytes += v.Bytes
	}
	return sum, nil
}

// Close detaches both programs and frees the maps. It is safe to call on a
// partly opened Counter and more than once.
func (c *Counter) Close() error {
	var errs []error
	for _, l := range c.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach pktcount: %w", err))
		}
	}
	c.links = nil
	if c.objs.PktCounts != nil || c.objs.CountIngress != nil || c.objs.CountEgress != nil {
		if err := c.objs.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close pktcount: %w", err))
		}
		c.objs = pktcountObjects{}
	}
	return errors.Join(errs...)
}
