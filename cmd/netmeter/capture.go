package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/netmeter/netmeter/internal/attribution/container"
	"github.com/netmeter/netmeter/internal/bpfload"
	"github.com/netmeter/netmeter/internal/pcapfilter"
	"github.com/netmeter/netmeter/internal/source/capture"
)

func init() { extraCommands = append(extraCommands, newCapture) }

type captureOpts struct {
	iface     string
	pid       int
	process   string
	container string
	cgroup    string
	out       string
	count     int
	snaplen   int
	bufferKiB int
	duration  time.Duration
}

func newCapture(a *app) *cobra.Command {
	var o captureOpts
	cmd := &cobra.Command{
		Use:   "capture [-i IFACE] [--pid P | --process NAME | --container C | --cgroup PATH] [FILTER] -w FILE",
		Short: "Write one process's, container's or interface's packets to a pcapng file",
		Long: `capture writes packets to a pcapng file that tcpdump, tshark and Wireshark read.

With --pid, --process, --container or --cgroup the packets are selected in the
kernel by socket owner (eBPF cgroup_skb programs, socket cookies): only the
packets of that process's (container's, cgroup's) sockets, in any network
namespace, starting at the IP header (link type RAW). The owner is named in
each packet's comment and in the interface description. -i then keeps only
packets through that interface (of the target's namespace).

With only -i it captures everything on the interface (AF_PACKET, Ethernet
frames), like tcpdump -i.

FILTER is a pcap-filter expression (host, net, port, portrange, proto, src/dst,
ip, ip6, tcp, udp, icmp, icmp6, and/or/not, parentheses); anything else is
rejected with the offending token. See docs/CAPTURE.md.

At the end it prints, like tcpdump, how many packets were captured and how
many the kernel dropped because the buffer was full.`,
		Example: `  netmeter capture --pid 1234 -w curl.pcapng
  netmeter capture --process nginx 'tcp port 443' -w - | tshark -r -
  netmeter capture --container web -c 100 -w web.pcapng
  netmeter capture -i eth0 'udp and not port 53' --duration 30s -w eth0.pcapng`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return a.capture(ctx, o, strings.Join(args, " "), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.iface, "interface", "i", "", "interface (with a selection: keep only packets through it)")
	f.IntVar(&o.pid, "pid", 0, "capture the packets of this process's sockets")
	f.StringVar(&o.process, "process", "", "capture the packets of every process with this name (comm)")
	f.StringVar(&o.container, "container", "", "capture the packets of this container (name or id prefix)")
	f.StringVar(&o.cgroup, "cgroup", "", "capture the packets of the sockets of this cgroup2 directory")
	f.StringVarP(&o.out, "write", "w", "", `pcapng file to write ("-" for standard output)`)
	f.IntVarP(&o.count, "count", "c", 0, "stop after this many packets")
	f.IntVarP(&o.snaplen, "snaplen", "s", 0, "bytes to keep of each packet (0: 262144, or 65536 with a selection)")
	f.DurationVar(&o.duration, "duration", 0, "stop after this long")
	f.IntVarP(&o.bufferKiB, "buffer-size", "B", 0, "buffer size in KiB, like tcpdump's -B (0: 8 MiB ring with a selection, 32 MiB socket buffer on an interface); packets that do not fit are counted as dropped")
	return cmd
}

func (a *app) capture(ctx context.Context, o captureOpts, filter string, stdout, stderr io.Writer) error {
	if o.out == "" {
		return usageError{errors.New("capture needs -w FILE (or -w - for standard output)")}
	}
	n := 0
	for _, set := range []bool{o.pid != 0, o.process != "", o.container != "", o.cgroup != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return usageError{errors.New("give at most one of --pid, --process, --container and --cgroup")}
	}
	if n == 0 && o.iface == "" {
		return usageError{errors.New("capture what? give -i IFACE, --pid, --process, --container or --cgroup")}
	}
	if o.count < 0 || o.snaplen < 0 || o.duration < 0 || o.bufferKiB < 0 {
		return usageError{errors.New("--count, --snaplen, --buffer-size and --duration must not be negative")}
	}
	if o.bufferKiB > 1<<20 {
		return usageError{fmt.Errorf("--buffer-size %d KiB: at most 1 GiB (1048576)", o.bufferKiB)}
	}
	opts := capture.Options{
		Interface: o.iface, Netns: netnsPath(a.cfg.Netns), Filter: filter,
		Snaplen: o.snaplen, Count: o.count, Duration: o.duration, RingSize: o.bufferKiB << 10,
	}
	// Check the filter before anything else, so a typo costs nothing.
	lt := pcapfilter.LinkTypeRaw
	if n == 0 {
		lt = pcapfilter.LinkTypeEthernet
	}
	if _, err := pcapfilter.Compile(filter, lt, 0); err != nil {
		return usageError{fmt.Errorf("filter %q: %w", filter, err)}
	}
	switch {
	case o.pid != 0:
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", o.pid)); err != nil {
			return usageError{fmt.Errorf("--pid %d: no such process", o.pid)}
		}
		opts.Pids = []int{o.pid}
	case o.process != "":
		pids, err := capture.PidsByName(os.DirFS("/"), o.process)
		if err != nil {
			return err
		}
		opts.Pids, opts.Comm = pids, o.process
		if len(pids) == 0 {
			fmt.Fprintf(stderr, "netmeter: no process named %q runs yet; capturing the sockets such processes create\n", o.process)
		}
	case o.container != "":
		cg, desc, pid, err := resolveContainer(ctx, o.container)
		if err != nil {
			return err
		}
		opts.Cgroup, opts.Describe = cg, desc
		if opts.Netns == "" {
			// -i names an interface of the container's namespace.
			opts.Netns = fmt.Sprintf("/proc/%d/ns/net", pid)
		}
	case o.cgroup != "":
		cg, err := resolveCgroupFlag(o.cgroup)
		if err != nil {
			return usageError{err}
		}
		opts.Cgroup = cg
	}
	out := stdout
	var lf *lazyFile
	if o.out != "-" {
		// Created on the first write, once the capture runs: a capture
		// that cannot start leaves no empty file behind, and says why.
		lf = &lazyFile{path: o.out}
		defer lf.Close()
		out = lf
	}
	opts.Ready = func(what string) {
		fmt.Fprintf(stderr, "netmeter: capturing %s, snapshot length %s\n", what, snapDesc(o.snaplen))
	}
	res, err := capture.Run(ctx, opts, out)
	if lf != nil {
		if cerr := lf.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("capture: %w", cerr)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, res) // tcpdump's summary
	return nil
}

func snapDesc(n int) string {
	if n == 0 {
		return "default"
	}
	return strconv.Itoa(n) + " bytes"
}

// resolveCgroupFlag accepts a cgroup2 directory or a path relative to the
// cgroup2 mount ("/docker/abc…", as /proc/PID/cgroup shows it).
func resolveCgroupFlag(p string) (string, error) {
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return bpfload.ResolveCgroup(p)
	}
	mnt, err := bpfload.Cgroup2Mount()
	if err != nil {
		return "", fmt.Errorf("--cgroup %s: %w", p, err)
	}
	full := filepath.Join(mnt, p)
	if _, err := os.Stat(full); err != nil {
		return "", fmt.Errorf("--cgroup %s: no such cgroup (looked at %s)", p, full)
	}
	return bpfload.ResolveCgroup(full)
}

// resolveContainer finds container c (an id prefix of at least 4
// characters, or a name a runtime knows) among the running processes and
// returns its cgroup2 directory, a description and one of its processes.
func resolveContainer(ctx context.Context, c string) (cg, desc string, pid int, err error) {
	want := strings.TrimPrefix(c, "/")
	name := ""
	if reg, err := container.NewRegistry(); err == nil {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_ = reg.Sync(sctx)
		cancel()
		for _, in := range reg.Containers() {
			if in.Name == want || strings.TrimPrefix(in.Name, "/") == want || (len(want) >= 4 && strings.HasPrefix(in.ID, want)) {
				want, name = in.ID, in.Name
				break
			}
		}
		reg.Close()
	}
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			continue
		}
		ref := container.FromCgroupFile(data)
		if ref.ID == "" || len(want) < 4 || !strings.HasPrefix(ref.ID, want) {
			continue
		}
		v2 := ""
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "0::"); ok {
				v2 = rest
			}
		}
		if v2 == "" || v2 == "/" {
			return "", "", 0, fmt.Errorf("--container %s: its processes are not in a cgroup v2 directory of their own (cgroup v1 only); use --pid %d", c, pid)
		}
		cg, err := resolveCgroupFlag(v2)
		if err != nil {
			return "", "", 0, fmt.Errorf("--container %s: %w", c, err)
		}
		desc := fmt.Sprintf("container %s (%s %s)", name, ref.Runtime, container.ShortID(ref.ID))
		if name == "" {
			desc = fmt.Sprintf("container %s %s", ref.Runtime, container.ShortID(ref.ID))
		}
		return cg, desc, pid, nil
	}
	return "", "", 0, usageError{fmt.Errorf("--container %s: no such running container (give a name a runtime knows or an id prefix of at least 4 characters)", c)}
}

// lazyFile creates its file on the first Write.
type lazyFile struct {
	path string
	f    *os.File
	err  error
}

func (l *lazyFile) Write(p []byte) (int, error) {
	if l.f == nil && l.err == nil {
		l.f, l.err = os.Create(l.path)
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.f.Write(p)
}

// Close closes the file if it was created; it is safe to call twice.
func (l *lazyFile) Close() error {
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f, l.err = nil, os.ErrClosed
	return err
}
