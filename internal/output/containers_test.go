package output

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// containerFixture has three containers, unsorted: a compose service with
// published ports and traffic of every peer class, a host-network agent,
// and a container whose runtime gave no metadata (its name is the short
// id, as the engine reports it).
func containerFixture() snapshot.Snapshot {
	s := flowFixture()
	t0 := s.Time
	rate := func(cur float64) snapshot.Rate {
		return snapshot.Rate{Current: cur, Window2s: cur * 0.9, Window10s: cur * 0.5, Window40s: cur * 0.25}
	}
	tr := func(tx, rx uint64) snapshot.Traffic {
		return snapshot.Traffic{TxPayload: tx * 9 / 10, RxPayload: rx * 9 / 10, TxBytes: tx, RxBytes: rx}
	}
	s.Containers = []snapshot.Container{
		{ID: "0f3c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a", Name: "0f3c2a9b8d7e",
			Total: tr(2048, 4096), External: tr(2048, 4096), TxRate: rate(10), RxRate: rate(20.5), Opened: 3, FirstSeen: t0},
		{ID: "9d1e4c", Runtime: "podman", Name: "node-agent", Image: "quay.io/acme/agent:2.1", Account: "infra",
			Labels: map[string]string{"netmeter.account": "infra"}, HostNetwork: true, Processes: 1, Sockets: 2,
			Total: tr(52428800, 1048576), External: tr(50331648, 524288), Host: tr(2097152, 524288),
			TxRate: rate(65536.25), RxRate: rate(2048), Opened: 42, FirstSeen: t0},
		{ID: "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90", Runtime: "docker", Name: "shop-web-1",
			Image: "nginx:1.27", Account: "shop/web", ComposeService: "shop/web",
			Labels:    map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "web"},
			Processes: 3, Sockets: 17,
			Total: tr(734003200, 10485760), External: tr(629145600, 5242880), Local: tr(104857600, 4194304),
			Host: tr(0, 1048576), Internal: tr(0, 0),
			TxRate: rate(1536000.5), RxRate: rate(20480), Accepted: 1234, Opened: 56,
			Ports: []snapshot.Port{
				{Proto: "tcp", Port: 80, Accepted: 1200, Total: tr(700000000, 9000000)},
				{Proto: "tcp", Port: 443, Accepted: 34, Total: tr(34003200, 1485760)},
			}, FirstSeen: t0},
	}
	return s
}

func TestContainersGolden(t *testing.T) {
	for _, tt := range []struct {
		golden string
		opt    TableOptions
	}{
		{"containers.golden", TableOptions{}},
		{"containers_exact.golden", TableOptions{Exact: true}},
		{"containers_exact_bits.golden", TableOptions{Exact: true, Bits: true}},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			var buf bytes.Buffer
			s := containerFixture()
			if err := Containers(&buf, s, tt.opt); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s, containerFixture()) {
				t.Error("the table modified its snapshot")
			}
			checkAligned(t, buf.String())
			golden(t, tt.golden, buf.Bytes())
		})
	}
}

func TestContainersEmptyAndErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := Containers(&buf, snapshot.Snapshot{}, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "\n"); got != 1 {
		t.Errorf("empty snapshot: got %d lines, want the header only:\n%s", got, buf.String())
	}
	if err := Containers(failWriter{}, containerFixture(), TableOptions{}); err == nil {
		t.Error("Containers to a failing writer: want error")
	}
}

func TestContainersHostileInput(t *testing.T) {
	s := containerFixture()
	s.Containers[0].TxRate.Current = math.NaN()
	s.Containers[1].RxRate.Current = math.Inf(1)
	s.Containers[1].Account = "evil\x1b]0;pwned\x07\n"
	s.Containers[2].Name = "web\x1b[2J"
	s.Containers = append(s.Containers, snapshot.Container{}) // no id, no name
	var buf bytes.Buffer
	if err := Containers(&buf, s, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "NaN") || strings.Contains(out, "Inf") {
		t.Errorf("invalid rate printed as a number:\n%s", out)
	}
	if strings.ContainsAny(out, "\x1b\x07") || strings.Count(out, "\n") != 5 {
		t.Errorf("control characters reached the output:\n%q", out)
	}
	checkAligned(t, out)
}

func TestContainerNames(t *testing.T) {
	for _, tt := range []struct {
		c    snapshot.Container
		want string
	}{
		{snapshot.Container{ID: "a1b2c3d4e5f60718293a", Name: "web"}, "web"},
		{snapshot.Container{ID: "a1b2c3d4e5f60718293a"}, "a1b2c3d4e5f6"},
		{snapshot.Container{ID: "mymachine"}, "mymachine"},
		{snapshot.Container{}, "-"},
		{snapshot.Container{Name: "a\tb"}, "a?b"},
	} {
		if got := ContainerName(&tt.c); got != tt.want {
			t.Errorf("ContainerName(%+v) = %q, want %q", tt.c, got, tt.want)
		}
	}
	if got := ShortID("ééééééé"); got != "éééééé" { // 12 bytes, never half a rune
		t.Errorf("ShortID cut a rune: %q", got)
	}
	if got := Printable("ok ✓ 名前"); got != "ok ✓ 名前" {
		t.Errorf("Printable changed printable text: %q", got)
	}
	if got := Printable("a\xffb"); got != "a?b" {
		t.Errorf("Printable(invalid UTF-8) = %q", got)
	}
}
