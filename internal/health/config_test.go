package health

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigYAML(t *testing.T) {
	const file = `
groups:
  - name: office
    cidrs: [10.0.0.0/8, 2001:db8::/32]
by_address: false
default_prefix4: 16
max_flows: 100
monitors:
  - name: web-to-db
    local: {containers: ["web*"], processes: [nginx]}
    remote: {groups: [office], cidrs: [192.0.2.0/24]}
  - name: all
    remote: {everywhere: true}
indicator:
  window_intervals: 4
  rtt_floor: 10ms
  retrans_percent: 2.5
  socket_drop_reasons: [SOCKET_RCVBUFF]
`
	var c Config
	if err := yaml.Unmarshal([]byte(file), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Groups[0].CIDRs[1] != "2001:db8::/32" || c.DefaultPrefix4 != 16 || c.MaxFlows != 100 ||
		c.Monitors[0].Local.Containers[0] != "web*" || c.Monitors[0].Remote.Groups[0] != "office" || !c.Monitors[1].Remote.Everywhere ||
		c.Health.WindowIntervals != 4 || c.Health.RTTFloor != 10*time.Millisecond || c.Health.RetransPercent != 2.5 {
		t.Fatalf("%+v", c)
	}
	d := c.withDefaults()
	if d.DefaultPrefix6 != 64 || d.Capacity != DefaultCapacity || d.MaxGroups != 1024 || d.Health.DegradeIntervals != 2 ||
		d.Health.RTTFactor != 2 || len(d.Health.SocketDropReasons) != 1 {
		t.Fatalf("defaults %+v", d)
	}
}

func TestConfigValidate(t *testing.T) {
	everywhere := RemoteMatch{Everywhere: true}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"zero", Config{}, nil},
		{"good", Config{Groups: []Group{{Name: "a", CIDRs: []string{"10.0.0.0/8", "10.1.2.3", "::ffff:10.0.0.0/104"}}}}, nil},
		{"bad cidr", Config{Groups: []Group{{Name: "db", CIDRs: []string{"10.0.0.0/33"}}}},
			[]string{`groups[0] ("db"): cidrs[0]: "10.0.0.0/33" is neither a prefix`}},
		{"no name", Config{Groups: []Group{{CIDRs: []string{"10.0.0.0/8"}}}}, []string{"groups[0]: name is empty"}},
		{"no cidrs", Config{Groups: []Group{{Name: "x"}}}, []string{`groups[0] ("x"): cidrs is empty`}},
		{"reserved", Config{Groups: []Group{{Name: "loopback", CIDRs: []string{"10.0.0.0/8"}}}}, []string{`name "loopback" is reserved`}},
		{"duplicate", Config{Groups: []Group{{Name: "x", CIDRs: []string{"10.0.0.0/8"}}, {Name: "x", CIDRs: []string{"11.0.0.0/8"}}}},
			[]string{`groups[1]: name "x" is already used by groups[0]`}},
		{"prefix4", Config{DefaultPrefix4: 40}, []string{"default_prefix4: 40"}},
		{"negative", Config{MaxFlows: -1, Health: HealthConfig{RTTFactor: -2}}, []string{"max_flows: -1 is negative", "health.rtt_factor: -2 is negative"}},
		{"rtt factor", Config{Health: HealthConfig{RTTFactor: 0.5}}, []string{"health.rtt_factor: 0.5 is below 1"}},
		{"zero window", Config{Health: HealthConfig{ZeroWindowIntervals: 9}}, []string{"zero_window_intervals: 9 exceeds window_intervals (5)"}},
		{"monitor remote", Config{Monitors: []Monitor{{Name: "m"}}}, []string{`monitors[0] ("m"): remote selects nothing`}},
		{"monitor glob", Config{Monitors: []Monitor{{Name: "m", Local: LocalMatch{Processes: []string{"[a"}}, Remote: everywhere}}},
			[]string{`local.processes[0]: glob "[a"`}},
		{"monitor group", Config{Monitors: []Monitor{{Name: "m", Remote: RemoteMatch{Groups: []string{"nope"}}}}},
			[]string{`remote.groups[0]: "nope" is neither a group`}},
		{"monitor default group", Config{Monitors: []Monitor{{Name: "m", Remote: RemoteMatch{Groups: []string{"10.1.2.0/24", "loopback"}}}}}, nil},
		{"monitor interfaces resolved", Config{InterfaceAddrs: func(string) []netip.Prefix { return nil },
			Monitors: []Monitor{{Name: "m", Local: LocalMatch{Interfaces: []string{"eth0"}}, Remote: everywhere}}}, nil},
		{"monitor duplicate", Config{Monitors: []Monitor{{Name: "m", Remote: everywhere}, {Name: "m", Remote: everywhere}}},
			[]string{`monitors[1]: name "m" is already used`}},
		{"two problems", Config{DefaultPrefix6: 200, Groups: []Group{{Name: "x"}}}, []string{"default_prefix6: 200", "cidrs is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := New(tc.cfg); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "health config: ") {
				t.Errorf("error %q lacks context", err)
			}
			if _, err := New(tc.cfg); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

// TestNewNeedsInterfaceResolver: a config file may name interfaces; New
// refuses them when the program cannot resolve their addresses.
func TestNewNeedsInterfaceResolver(t *testing.T) {
	cfg := Config{Monitors: []Monitor{{Name: "m", Local: LocalMatch{Interfaces: []string{"eth0"}}, Remote: RemoteMatch{Everywhere: true}}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := New(cfg)
	if err == nil || !strings.Contains(err.Error(), `monitors[0] ("m"): local.interfaces needs the interfaces' addresses`) ||
		!strings.Contains(err.Error(), "local.cidrs") {
		t.Fatalf("New: %v", err)
	}
}

// FuzzGroupCIDR: any CIDR text either fails validation or gives a working
// group whose own address maps to it.
func FuzzGroupCIDR(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.1.2.3", "2001:db8::/48", "::ffff:10.0.0.0/104", "fe80::1%eth0", "1.2.3.4/33", "", "/", "::/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg := Config{Groups: []Group{{Name: "g", CIDRs: []string{s}}}}
		if cfg.Validate() != nil {
			return
		}
		a, err := New(cfg)
		if err != nil {
			t.Fatalf("Validate accepted %q, New refused: %v", s, err)
		}
		p, err := parsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		if p.Addr().Is4In6() {
			return // a v6 prefix shorter than /96 over mapped addresses: remotes are looked up unmapped
		}
		if name, kind := a.grp.group(p.Addr().String()); name != "g" && !p.Addr().IsUnspecified() {
			t.Fatalf("%q: its address %s maps to %q (%d)", s, p.Addr(), name, kind)
		}
	})
}
