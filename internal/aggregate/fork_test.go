package aggregate_test

import (
	"context"
	"io"
	"net"
	"os"
	"testing"

	"github.com/netmeter/netmeter/internal/aggregate"
	"github.com/netmeter/netmeter/internal/attribution/procfs"
	"github.com/netmeter/netmeter/internal/source/engine"
	"github.com/netmeter/netmeter/internal/testnet"
)

// roleInheritedAccept is a pre-forked worker: it accepts one connection on
// the listener inherited as fd 3 and reports what it read.
const roleInheritedAccept = "inherited-accept"

func init() {
	testnet.RegisterRole(roleInheritedAccept, func(ctx context.Context, _ []string, rep *testnet.Reporter) error {
		ln, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			return err
		}
		rep.Ready(ln.Addr().String())
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		rep.Result(testnet.Result{Proto: "tcp", Conns: 1, Bytes: n})
		return err
	})
}

// TestPreforkedWorkers: the parent creates a listener, two workers inherit it
// and each accepts a connection. Accepted sockets start with the listener's
// owner (the parent) and must be charged to the worker that reads them; the
// parent, which never reads, gets nothing.
func TestPreforkedWorkers(t *testing.T) {
	testnet.RequirePrivileged(t)
	eng, err := engine.Open(engine.Options{}) // the root: accepted sockets inherit the parent's cgroup
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	fs := procfs.NewFS(procfs.DefaultRoot)
	res, err := procfs.NewResolver(fs)
	if err != nil {
		t.Fatal(err)
	}
	r := &flowRig{eng: eng, flows: aggregate.NewFlows(aggregate.FlowOptions{Resolver: res})}
	ctx := testCtx(t)

	ln, err := (*testnet.Netns)(nil).ListenTCP(ctx, "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	stop := r.background(t)
	var workers []*testnet.Child
	for range 2 {
		cmd := testnet.Command(t, nil, nil, roleInheritedAccept)
		cmd.ExtraFiles = []*os.File{lf}
		w := testnet.StartChild(t, cmd)
		if _, err := w.Ready(ctx); err != nil {
			t.Fatal(err)
		}
		workers = append(workers, w)
	}
	sizes := []int{300000, 700000}
	for _, n := range sizes {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	var got []int64
	for _, w := range workers {
		res, err := w.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, res.Bytes)
	}
	stop()
	r.settle(t, os.Getpid(), workers[0].Pid(), workers[1].Pid())
	if got[0]+got[1] != int64(sizes[0]+sizes[1]) {
		t.Fatalf("workers read %v", got)
	}
	for i, w := range workers {
		p := r.proc(w.Pid())
		t.Logf("worker %d pid %d read %d B; netmeter rx payload %d, IP rx %d", i, w.Pid(), got[i], p.Total.RxPayload, p.Total.RxBytes)
		if p.Total.RxPayload != uint64(got[i]) || p.Total.RxBytes < uint64(got[i]) {
			t.Errorf("worker %d: rx payload %d (IP %d), want %d", i, p.Total.RxPayload, p.Total.RxBytes, got[i])
		}
	}
	parent := r.proc(os.Getpid())
	t.Logf("parent pid %d: %+v", os.Getpid(), parent.Total)
	if parent.Total.RxPayload != 0 || parent.Total.TxPayload != uint64(sizes[0]+sizes[1]) {
		t.Errorf("parent (the client, never a reader) %+v", parent.Total)
	}
}
