package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netmeter/netmeter/internal/testnet"
)

// The agent's own alerting on the real kernel: after a short learning
// period, a program that starts listening on a new port and talks to a new
// subnet raises new_listener and new_remote alerts at the webhook; the
// listener and the peer it had during learning raise nothing.
func TestServeAlertsAudit(t *testing.T) {
	testnet.RequirePrivileged(t)
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Alerts []map[string]any }
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		mu.Lock()
		got = append(got, body.Alerts...)
		mu.Unlock()
	}))
	defer hook.Close()
	old, err := net.Listen("tcp4", "127.0.0.1:0") // known before the agent: learned
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	p := testnet.NewPair(t, testnet.WithoutIPv6())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "netmeter.yaml")
	os.WriteFile(cfg, []byte(`alerts:
  rules:
    - {name: listeners, kind: new_listener, warmup: 2s}
    - {name: remotes, kind: new_remote, warmup: 2s}
  webhook: `+hook.URL+"\n"), 0o600)
	t.Setenv("NETMETER_CONFIG", cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		root := newRoot()
		root.SetArgs([]string{"serve", "--interval", "200ms", "--listen", freeAddr(t), "--data-dir", dir, "--state-file", dir + "/s.json"})
		root.SetOut(&bytes.Buffer{})
		done <- exitCode(root.ExecuteContext(ctx), io.Discard)
	}()
	defer func() {
		cancel()
		<-done
	}()
	time.Sleep(3500 * time.Millisecond) // past the learning period
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	newPort := netip.MustParseAddrPort(ln.Addr().String()).Port()
	lnB, err := p.B.ListenTCP(ctx, "tcp4", netip.AddrPortFrom(p.B4, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer lnB.Close()
	c, err := p.A.Dial(ctx, "tcp4", lnB.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	subnet := netip.PrefixFrom(p.B4, 24).Masked().String()
	var listener, remote bool
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && !(listener && remote) {
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		for _, a := range got {
			b, _ := json.Marshal(a)
			s := string(b)
			if strings.Contains(s, `"listeners"`) && strings.Contains(s, `"`+itoa(int(newPort))+`"`) {
				listener = true
			}
			if strings.Contains(s, `"remotes"`) && strings.Contains(s, subnet) {
				remote = true
			}
			oldPort := netip.MustParseAddrPort(old.Addr().String()).Port()
			if strings.Contains(s, `"listeners"`) && strings.Contains(s, `"`+itoa(int(oldPort))+`"`) {
				t.Errorf("alert for the listener that existed during learning: %s", s)
			}
		}
		mu.Unlock()
	}
	mu.Lock()
	defer mu.Unlock()
	if !listener || !remote {
		for _, a := range got {
			t.Logf("alert %v", a)
		}
		t.Fatalf("new listener on %d alerted: %v; new remote %s alerted: %v", newPort, listener, subnet, remote)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
