package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/snapshot"
	"github.com/netmeter/netmeter/internal/testnet"
)

func TestMain(m *testing.M) { testnet.Main(m) }

// run executes the CLI in-process and returns stdout and the exit code.
func run(ctx context.Context, t *testing.T, stdout io.Writer, args ...string) int {
	t.Helper()
	t.Setenv("NETMETER_CONFIG", "/dev/null") // never the machine's /etc file
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(io.Discard)
	return exitCode(root.ExecuteContext(ctx), io.Discard)
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"--interval", "soon", "ifstat"},
		{"ifstat", "--watch", "never"},
		{"ifstat", "--count", "-1"},
		{"--no-such-flag"},
		{"ifstat", "extra-arg"},
		{"--units", "furlongs", "ifstat"},
	} {
		if code := run(context.Background(), t, io.Discard, args...); code != 2 {
			t.Errorf("netmeter %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func TestMissingNetnsExit1(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), t, &out, "ifstat", "--netns", "/run/netns/does-not-exist"); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), t, &out, "version"); code != 0 || !strings.HasPrefix(out.String(), "netmeter ") {
		t.Fatalf("exit %d, output %q", code, out.String())
	}
}

func TestIfstatTableLoopback(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), t, &out, "ifstat", "--interval", "50ms", "--interfaces", "lo"); code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "IFACE") || !strings.HasPrefix(lines[1], "lo ") {
		t.Fatalf("table:\n%s", out.String())
	}
}

// TestIfstatJSONWatchExact runs `netmeter ifstat --json --watch` against a
// test namespace while exactly K datagrams cross its veth, and checks that
// the per-interval deltas add up to exactly K frames and the final total
// equals them — end to end through the CLI.
func TestIfstatJSONWatchExact(t *testing.T) {
	testnet.RequirePrivileged(t)
	const k, size = 500, 1000
	const frame = size + 8 + 20 + 14
	p := testnet.NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, t, pw, "ifstat", "--json", "--exact", "--netns", p.A.Path(), "--watch", "200ms", "--count", "8")
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var snaps []snapshot.Snapshot
	for sc.Scan() {
		var s snapshot.Snapshot
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", len(snaps)+1, err, sc.Text())
		}
		snaps = append(snaps, s)
		if len(snaps) == 1 {
			c, err := p.B.ListenUDP(ctx, "udp4", netip.AddrPortFrom(p.B4, 0).String())
			if err != nil {
				t.Fatal(err)
			}
			r := testnet.ReceiveUDP(c)
			if _, err := testnet.SendUDP(ctx, p.A.Dial, r.Addr().String(), k, size); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Wait(ctx, k); err != nil {
				t.Fatal(err)
			}
			r.Close()
		}
	}
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
	if len(snaps) != 8 {
		t.Fatalf("%d snapshots, want 8 (--count)", len(snaps))
	}
	var sum uint64
	var last snapshot.Interface
	for _, s := range snaps {
		if s.Source != "netlink" || s.Interval != 200*time.Millisecond {
			t.Errorf("snapshot source %q interval %v", s.Source, s.Interval)
		}
		for _, i := range s.Interfaces {
			if i.Name == testnet.PairLinkA {
				sum += i.Delta.TxBytes
				last = i
			}
		}
	}
	t.Logf("deltas sum to %d B, total %d B, want %d", sum, last.Total.TxBytes, k*frame)
	if sum != k*frame || last.Total.TxBytes != k*frame || last.Total.TxPackets != k {
		t.Errorf("deltas %d, total %d B/%d pkts; want %d B/%d pkts", sum, last.Total.TxBytes, last.Total.TxPackets, k*frame, k)
	}
	if last.NetnsInode != p.A.Inode() {
		t.Errorf("netns inode %d, want %d", last.NetnsInode, p.A.Inode())
	}
	// Traffic stopped: by the last snapshot (≥1 s later) the 200ms-interval
	// current rate and the 2 s window are back to zero... or falling.
	if r := last.TxBytesRate; r.Current != 0 || r.Max <= 0 {
		t.Errorf("rate after traffic stopped: %+v", r)
	}
}

func TestExitCodeClassifies(t *testing.T) {
	var stderr bytes.Buffer
	if exitCode(nil, &stderr) != 0 || exitCode(errors.New("boom"), &stderr) != 1 || exitCode(usageError{errors.New("bad")}, &stderr) != 2 {
		t.Fatal("exit codes wrong")
	}
	if stderr.String() != "netmeter: boom\nnetmeter: bad\n" {
		t.Fatalf("stderr %q", stderr.String())
	}
}

// TestRootWithoutTerminalPrintsTable: with stdout not a terminal (as under
// go test), `netmeter` prints one ifstat table instead of the live view.
func TestRootWithoutTerminalPrintsTable(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), t, &out, "--interval", "50ms", "--interfaces", "lo"); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(out.String(), "IFACE") || !strings.Contains(out.String(), "\nlo ") {
		t.Fatalf("output:\n%s", out.String())
	}
}
