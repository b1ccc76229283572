package testnet

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
)

// Built-in child roles, registered by this package. Each reports "ready"
// and, except RoleIdle, a "result" with the [Result] of its generator.
const (
	// RoleIdle reports ready and waits until it is signalled, killed or its
	// timeout ends. For placing a process in a namespace or cgroup.
	RoleIdle = "idle"
	// RoleTCPServer serves -listen ADDR (default "127.0.0.1:0") with
	// [ServeTCP], reports the bound address as ready, and reports its Result
	// once -conns N connections (default 1) have completed.
	RoleTCPServer = "tcp-server"
	// RoleTCPSend runs [SendTCP] to -addr ADDR with -bytes N per connection
	// over -conns K connections (default 1).
	RoleTCPSend = "tcp-send"
	// RoleUDPRecv counts datagrams on -listen ADDR with [ReceiveUDP],
	// reports the bound address as ready, and reports its Result once
	// -count K datagrams arrived or -wait elapsed (Lost says how many
	// did not).
	RoleUDPRecv = "udp-recv"
	// RoleUDPSend runs [SendUDP] to -addr ADDR: -count K datagrams of
	// -size S payload bytes.
	RoleUDPSend = "udp-send"
)

func init() {
	RegisterRole(RoleIdle, roleIdle)
	RegisterRole(RoleTCPServer, roleTCPServer)
	RegisterRole(RoleTCPSend, roleTCPSend)
	RegisterRole(RoleUDPRecv, roleUDPRecv)
	RegisterRole(RoleUDPSend, roleUDPSend)
}

func newFlags(role string) *flag.FlagSet {
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("role %s: %w", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("role %s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

func roleIdle(ctx context.Context, args []string, rep *Reporter) error {
	if err := parseFlags(newFlags(RoleIdle), args); err != nil {
		return err
	}
	rep.Ready("")
	<-ctx.Done()
	return nil
}

func roleTCPServer(ctx context.Context, args []string, rep *Reporter) error {
	fs := newFlags(RoleTCPServer)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	conns := fs.Int("conns", 1, "connections to serve before reporting")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ln, err := (*Netns)(nil).ListenTCP(ctx, "tcp", *listen)
	if err != nil {
		return err
	}
	s := ServeTCP(ln)
	defer s.Close()
	rep.Ready(s.Addr().String())
	res, err := s.Wait(ctx, *conns)
	rep.Result(res)
	return err
}

func roleTCPSend(ctx context.Context, args []string, rep *Reporter) error {
	fs := newFlags(RoleTCPSend)
	addr := fs.String("addr", "", "server address host:port")
	n := fs.Int64("bytes", 0, "payload bytes per connection")
	conns := fs.Int("conns", 1, "connections, one after another")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep.Ready("")
	res, err := SendTCP(ctx, (*Netns)(nil).Dial, *addr, *n, *conns)
	rep.Result(res)
	return err
}

func roleUDPRecv(ctx context.Context, args []string, rep *Reporter) error {
	fs := newFlags(RoleUDPRecv)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	count := fs.Int("count", 1, "datagrams expected")
	wait := fs.Duration("wait", 0, "longest wait for them (default: the role's timeout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := (*Netns)(nil).ListenUDP(ctx, "udp", *listen)
	if err != nil {
		return err
	}
	r := ReceiveUDP(c)
	defer r.Close()
	rep.Ready(r.Addr().String())
	if *wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *wait)
		defer cancel()
	}
	res, err := r.Wait(ctx, *count)
	rep.Result(res)
	return err
}

func roleUDPSend(ctx context.Context, args []string, rep *Reporter) error {
	fs := newFlags(RoleUDPSend)
	addr := fs.String("addr", "", "receiver address host:port")
	count := fs.Int("count", 1, "datagrams to send")
	size := fs.Int("size", 64, "payload bytes per datagram")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	rep.Ready("")
	res, err := SendUDP(ctx, (*Netns)(nil).Dial, *addr, *count, *size)
	rep.Result(res)
	return err
}

// Compile-time check that Dial is a DialFunc.
var _ DialFunc = (*Netns)(nil).Dial

// Compile-time check that net.Dialer fits DialFunc too.
var _ DialFunc = (&net.Dialer{}).DialContext
