// Package nftcount keeps optional firewall-level named counters: an
// nftables table of its own in which every watched address has two named
// counter objects, <name>_in and <name>_out, fed by rules in base chains on
// the input, output and forward hooks.
//
// netmeter creates the table only when a user asks for it (to compare its
// numbers with the firewall's, or to feed billing that already reads
// nftables counters) and removes it on Close. [Cleanup] removes a table left
// behind by a run that crashed.
//
// The chains only count: their policy is accept, and their rules match an
// address and update a counter, never drop, reject, jump or goto. They run at
// priority [Priority] (after the filter and security chains), so a packet that
// an earlier chain on the same hook drops is not counted.
//
// nftables counts layer-3 bytes at these hooks: the IP header and everything
// after it, without the link-layer (Ethernet) header. A UDP datagram of S
// payload bytes counts S+8+20 bytes over IPv4 and S+8+40 over IPv6 (without
// extension headers or IP options).
//
// Only packets that pass the input, output or forward hooks are counted:
// traffic over loopback passes both output and input and is counted twice
// when it matches both rules of a name.
package nftcount

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// DefaultTable is the table name used when Open or Cleanup get "".
const DefaultTable = "netmeter"

// Priority is the priority of the three base chains: after the filter (0)
// and security (50) chains and the input hook's source NAT (100).
const Priority = 200

// Chain names inside the table, one per hook.
const (
	ChainInput   = "input"
	ChainOutput  = "output"
	ChainForward = "forward"
)

// maxNameLen is the longest Rule name: nftables object names hold at most
// 255 bytes (NFT_OBJ_MAXNAMELEN 256 with the NUL), less "_out".
const maxNameLen = 255 - len("_out")

var (
	// ErrPermission is wrapped by errors that the kernel refused for lack
	// of CAP_NET_ADMIN. It also answers errors.Is(err, os.ErrPermission).
	ErrPermission = errors.New("operation not permitted: run as root or grant CAP_NET_ADMIN")
	// ErrUnavailable is wrapped by errors that say the kernel has no
	// nftables (the kernel module nf_tables is not loaded or not built).
	ErrUnavailable = errors.New("nftables not available: load the kernel module nf_tables (modprobe nf_tables)")
	// ErrTableExists is returned by Open when the table is already there,
	// e.g. left behind by a crashed run: remove it with Cleanup.
	ErrTableExists = errors.New("table already exists")
)

// Rule names one watched address.
type Rule struct {
	// Name is the prefix of the counters <Name>_in and <Name>_out: a
	// letter or '_' followed by letters, digits, '_', '-' or '.', at most
	// 251 bytes.
	Name string
	// Addr is matched as the destination (for _in) and the source (for
	// _out) of IPv4 or IPv6 packets. An IPv4-mapped IPv6 address is
	// matched as IPv4; a zone is not allowed.
	Addr netip.Addr
}

// Counter is the value of the two counters of one Rule name, in layer-3
// bytes (IP header included, link-layer header not).
type Counter struct {
	InBytes, InPackets   uint64
	OutBytes, OutPackets uint64
}

// Counters is an open nftables table of named counters in one network
// namespace. Its methods are safe for concurrent use.
type Counters struct {
	mu     sync.Mutex
	nsFile *os.File // keeps the namespace's fd open for conn; nil for the caller's
	conn   *nftables.Conn
	table  *nftables.Table
	chains []*nftables.Chain
	names  map[string]bool // Rule names whose counters exist
	closed bool
}

// Open creates the table `inet <table>` (DefaultTable when table is "") with
// its three base chains in the network namespace at nsPath (e.g.
// /run/netns/NAME or /proc/PID/ns/net; "" is the caller's namespace). It
// fails with ErrTableExists if the table is already there.
func Open(nsPath, table string) (*Counters, error) {
	if table == "" {
		table = DefaultTable
	}
	if err := validName("table", table, 255); err != nil {
		return nil, err
	}
	nsFile, conn, err := dial(nsPath)
	if err != nil {
		return nil, err
	}
	c := &Counters{
		nsFile: nsFile,
		conn:   conn,
		table:  &nftables.Table{Name: table, Family: nftables.TableFamilyINet},
		names:  map[string]bool{},
	}
	if err := probe(conn); err != nil {
		c.closeFile()
		return nil, err
	}
	conn.CreateTable(c.table)
	accept := nftables.ChainPolicyAccept
	for _, h := range []struct {
		name string
		hook *nftables.ChainHook
	}{
		{ChainInput, nftables.ChainHookInput},
		{ChainOutput, nftables.ChainHookOutput},
		{ChainForward, nftables.ChainHookForward},
	} {
		c.chains = append(c.chains, conn.AddChain(&nftables.Chain{
			Name:     h.name,
			Table:    c.table,
			Hooknum:  h.hook,
			Priority: nftables.ChainPriorityRef(Priority),
			Type:     nftables.ChainTypeFilter,
			Policy:   &accept,
		}))
	}
	if err := conn.Flush(); err != nil {
		c.closeFile()
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("nftcount: create table inet %s: %w (left behind by a crashed run? remove it with nftcount.Cleanup)", table, ErrTableExists)
		}
		return nil, wrapErr("create table inet "+table, err)
	}
	return c, nil
}

// Cleanup deletes the table `inet <table>` (DefaultTable when "") and
// everything in it from the namespace at nsPath, e.g. after a crash left it
// behind. A missing table is not an error.
func Cleanup(nsPath, table string) error {
	if table == "" {
		table = DefaultTable
	}
	if err := validName("table", table, 255); err != nil {
		return err
	}
	nsFile, conn, err := dial(nsPath)
	if err != nil {
		return err
	}
	if nsFile != nil {
		defer nsFile.Close()
	}
	return delTable(conn, &nftables.Table{Name: table, Family: nftables.TableFamilyINet})
}

// Table is the name of the nftables table (family inet).
func (c *Counters) Table() string { return c.table.Name }

// Set replaces the rule set in one atomic batch: the chains are flushed and
// refilled, counters of names that remain keep their values, new names get
// counters from zero, and counters of names that went away are deleted.
// Names are validated first; an error names the bad one and changes nothing.
func (c *Counters) Set(rules []Rule) error {
	want := make(map[string]bool, len(rules))
	addrs := make([]netip.Addr, len(rules))
	for i, r := range rules {
		if err := validName("counter", r.Name, maxNameLen); err != nil {
			return err
		}
		if want[r.Name] {
			return fmt.Errorf("nftcount: duplicate counter name %q", r.Name)
		}
		want[r.Name] = true
		a := r.Addr.Unmap()
		if !a.IsValid() {
			return fmt.Errorf("nftcount: counter %q: invalid address", r.Name)
		}
		if a.Zone() != "" {
			return fmt.Errorf("nftcount: counter %q: address %s has a zone, which nftables cannot match", r.Name, r.Addr)
		}
		addrs[i] = a
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("nftcount: set: counters closed")
	}
	for _, ch := range c.chains {
		c.conn.FlushChain(ch)
	}
	for _, name := range sortedKeys(c.names) {
		if !want[name] {
			for _, o := range counterObjs(c.table, name) {
				c.conn.DeleteObject(o)
			}
		}
	}
	for _, r := range rules {
		if !c.names[r.Name] {
			for _, o := range counterObjs(c.table, r.Name) {
				c.conn.AddObj(o)
			}
		}
	}
	for _, ch := range c.chains {
		for i, r := range rules {
			for _, e := range ruleExprs(addrs[i], r.Name) {
				c.conn.AddRule(&nftables.Rule{Table: c.table, Chain: ch, Exprs: e})
			}
		}
	}
	if err := c.conn.Flush(); err != nil {
		return wrapErr("set counters in table inet "+c.table.Name, err)
	}
	c.names = want
	return nil
}

// Read returns the counters of every name of the last Set, by name.
func (c *Counters) Read() (map[string]Counter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("nftcount: read: counters closed")
	}
	objs, err := c.conn.GetObjects(c.table)
	if err != nil {
		return nil, wrapErr("read counters of table inet "+c.table.Name, err)
	}
	out := make(map[string]Counter, len(c.names))
	for name := range c.names {
		out[name] = Counter{}
	}
	for _, o := range objs {
		co, ok := o.(*nftables.CounterObj)
		if !ok {
			continue
		}
		if name, ok := strings.CutSuffix(co.Name, "_in"); ok && c.names[name] {
			v := out[name]
			v.InBytes, v.InPackets = co.Bytes, co.Packets
			out[name] = v
		} else if name, ok := strings.CutSuffix(co.Name, "_out"); ok && c.names[name] {
			v := out[name]
			v.OutBytes, v.OutPackets = co.Bytes, co.Packets
			out[name] = v
		}
	}
	return out, nil
}

// Close deletes the table with its chains, rules and counters. Calling it
// again does nothing.
func (c *Counters) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	defer c.closeFile()
	return delTable(c.conn, c.table)
}

func (c *Counters) closeFile() {
	if c.nsFile != nil {
		c.nsFile.Close()
		c.nsFile = nil
	}
}

// dial returns a connection whose netlink sockets are opened in the
// namespace at nsPath: the library dials each operation from a thread
// switched into the namespace held open by the returned file.
func dial(nsPath string) (*os.File, *nftables.Conn, error) {
	if nsPath == "" {
		conn, err := nftables.New()
		if err != nil {
			return nil, nil, wrapErr("dial nftables", err)
		}
		return nil, conn, nil
	}
	f, err := os.Open(nsPath)
	if err != nil {
		return nil, nil, fmt.Errorf("nftcount: open netns: %w", err)
	}
	conn, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, wrapErr("dial nftables in "+nsPath, err)
	}
	return f, conn, nil
}

// probe asks the kernel for the inet tables, which fails when nf_tables is
// missing or the caller lacks CAP_NET_ADMIN in the namespace.
func probe(conn *nftables.Conn) error {
	if _, err := conn.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		if errors.Is(err, unix.EINVAL) {
			// nfnetlink answers EINVAL to a request for a subsystem
			// that is not registered.
			return &kernelError{op: "list nftables tables", sentinel: ErrUnavailable, err: err}
		}
		return wrapErr("list nftables tables", err)
	}
	return nil
}

func delTable(conn *nftables.Conn, t *nftables.Table) error {
	conn.DelTable(t)
	if err := conn.Flush(); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return wrapErr("delete table inet "+t.Name, err)
	}
	return nil
}

func counterObjs(t *nftables.Table, name string) []*nftables.CounterObj {
	return []*nftables.CounterObj{
		{Table: t, Name: name + "_in"},
		{Table: t, Name: name + "_out"},
	}
}

// ruleExprs returns the expressions of the two rules of one name:
// `ip[6] daddr A counter name "<name>_in"` and the saddr one for _out.
func ruleExprs(a netip.Addr, name string) [][]expr.Any {
	proto := byte(unix.NFPROTO_IPV6)
	saddr, daddr := uint32(8), uint32(24)
	if a.Is4() {
		proto = unix.NFPROTO_IPV4
		saddr, daddr = 12, 16
	}
	one := func(offset uint32, counter string) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(a.BitLen() / 8)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
			&expr.Objref{Type: int(nftables.ObjTypeCounter), Name: counter},
		}
	}
	return [][]expr.Any{one(daddr, name+"_in"), one(saddr, name+"_out")}
}

// validName checks an nftables identifier that nft(8) accepts unquoted: a
// letter or '_' followed by letters, digits, '_', '-' or '.'.
func validName(what, name string, maxLen int) error {
	if name == "" {
		return fmt.Errorf("nftcount: empty %s name", what)
	}
	if len(name) > maxLen {
		return fmt.Errorf("nftcount: %s name %q is %d bytes long, at most %d allowed", what, name, len(name), maxLen)
	}
	for i, r := range name {
		ok := r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') ||
			(i > 0 && (r == '-' || r == '.' || ('0' <= r && r <= '9')))
		if !ok {
			return fmt.Errorf("nftcount: %s name %q: invalid character %q at byte %d (allowed: a letter or '_' first, then letters, digits, '_', '-', '.')", what, name, r, i)
		}
	}
	return nil
}

// wrapErr gives a kernel error its context and, for the two causes a user
// can fix, the sentinel that tells how.
func wrapErr(op string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return &kernelError{op: op, sentinel: ErrPermission, err: err}
	case errors.Is(err, unix.EPROTONOSUPPORT), errors.Is(err, unix.EAFNOSUPPORT), errors.Is(err, unix.EOPNOTSUPP):
		return &kernelError{op: op, sentinel: ErrUnavailable, err: err}
	}
	return fmt.Errorf("nftcount: %s: %w", op, err)
}

// kernelError is an error of the kernel that matches both a sentinel of this
// package and the original error (a syscall.Errno).
type kernelError struct {
	op       string
	sentinel error
	err      error
}

func (e *kernelError) Error() string {
	return fmt.Sprintf("nftcount: %s: %v (%v)", e.op, e.sentinel, e.err)
}

func (e *kernelError) Unwrap() []error { return []error{e.sentinel, e.err} }

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
