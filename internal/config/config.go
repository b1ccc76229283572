// Package config holds every netmeter option in one table: its command-line
// flag, its NETMETER_* environment variable, its key in the YAML config file,
// its default and its documentation. Precedence, lowest first: default,
// config file, environment, flag. docs/CONFIG.md is generated from the table.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/netmeter/netmeter/internal/alert"
	"github.com/netmeter/netmeter/internal/health"
	"github.com/netmeter/netmeter/internal/history"
	"github.com/netmeter/netmeter/internal/quota"
)

// DefaultFile is read when neither --config nor NETMETER_CONFIG names a file.
const DefaultFile = "/etc/netmeter/netmeter.yaml"

// Config is the effective configuration.
type Config struct {
	Interval    time.Duration
	Netns       string
	Engine      string
	StateFile   string
	PinPath     string
	BillingDay  int
	NftCounters bool
	TCPHealth   bool
	RTTSamples  bool
	DataDir     string
	Timezone    string
	Listen      string
	TLSCert     string
	TLSKey      string
	TokenFile   string
	AuditLog    string
	IPFIX       string
	RemoteWrite string
	RWInterval  time.Duration
	CPULimit    float64
	MemoryLimit uint64
	MaxConns    int
	MetricsTop  int
	Source      string
	Interfaces  []string
	Units       string
	MaxLinkRate float64
	LogLevel    string
	LogFormat   string
	ConfigFile  string // the file that was read, or ""
	// Health configures flows, monitors and the health indicator: the
	// config file's `health:` section (file only; see docs/HEALTH.md).
	Health health.Config
	// Quotas are the config file's `quotas:` list (file only).
	Quotas []quota.Quota
	// Alerts is the config file's `alerts:` section (file only).
	Alerts Alerts
	// Retention is the config file's `retention:` section: how long the
	// history keeps each resolution (file only; 0 = the default).
	Retention history.Retention
}

// Option describes one setting.
type Option struct {
	Flag    string // also the env var (NETMETER_ + upper snake) and YAML key (snake)
	Kind    string // "duration", "string", "list", "number"
	Default string
	Usage   string
	set     func(c *Config, v string) error
}

// Env is the option's environment variable.
func (o Option) Env() string {
	return "NETMETER_" + strings.ToUpper(strings.ReplaceAll(o.Flag, "-", "_"))
}

// Key is the option's key in the config file.
func (o Option) Key() string { return strings.ReplaceAll(o.Flag, "-", "_") }

// Options is the table of every setting.
var Options = []Option{
	{Flag: "interval", Kind: "duration", Default: "1s",
		Usage: "how often counters are read; rates and snapshots are per interval (min 10ms)",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration like 1s or 500ms", v)
			}
			if d < 10*time.Millisecond || d > time.Hour {
				return fmt.Errorf("%v is outside 10ms..1h", d)
			}
			c.Interval = d
			return nil
		}},
	{Flag: "netns", Kind: "string", Default: "",
		Usage: "network namespace to monitor: a name under /run/netns (as ip netns shows) or a path such as /proc/PID/ns/net; empty means netmeter's own",
		set: func(c *Config, v string) error {
			if strings.ContainsRune(v, 0) {
				return fmt.Errorf("contains NUL")
			}
			c.Netns = v
			return nil
		}},
	{Flag: "engine", Kind: "string", Default: "auto",
		Usage: "what measures processes and connections: ebpf (per-socket counters in the kernel; fail without it; 'on' is a synonym), classic (packet capture joined to /proc like nethogs, approximate, one namespace), auto (ebpf when it loads, otherwise classic, saying why), off (interfaces only)",
		set: func(c *Config, v string) error {
			if err := choice(func(c *Config) *string { return &c.Engine }, "auto", "ebpf", "on", "classic", "off")(c, v); err != nil {
				return err
			}
			if c.Engine == "on" {
				c.Engine = "ebpf" // one name from here on
			}
			return nil
		}},
	{Flag: "state-file", Kind: "string", Default: "/var/lib/netmeter/state.json",
		Usage: "where the billing ledger (container traffic per account and period) and the engine's per-socket state are kept; used by the agent and read by 'netmeter ledger'",
		set:   func(c *Config, v string) error { c.StateFile = v; return nil }},
	{Flag: "listen", Kind: "string", Default: "127.0.0.1:9797",
		Usage: "where 'netmeter serve' serves /metrics, the JSON API and probes; a non-loopback address needs --tls-cert/--tls-key or --auth-token-file",
		set:   func(c *Config, v string) error { c.Listen = v; return nil }},
	{Flag: "tls-cert", Kind: "string", Default: "",
		Usage: "PEM certificate for HTTPS on --listen (with --tls-key)",
		set:   func(c *Config, v string) error { c.TLSCert = v; return nil }},
	{Flag: "tls-key", Kind: "string", Default: "",
		Usage: "PEM private key for HTTPS on --listen (with --tls-cert)",
		set:   func(c *Config, v string) error { c.TLSKey = v; return nil }},
	{Flag: "auth-token-file", Kind: "string", Default: "",
		Usage: "file holding a bearer token that every request but /healthz and /readyz must send (Authorization: Bearer …)",
		set:   func(c *Config, v string) error { c.TokenFile = v; return nil }},
	{Flag: "audit-log", Kind: "string", Default: "",
		Usage: "with 'netmeter serve', write a JSON line per connection opened and closed (process, container, remote, bytes, duration) to this file, rotated at 64 MiB keeping 5; empty: off",
		set:   func(c *Config, v string) error { c.AuditLog = v; return nil }},
	{Flag: "ipfix-collector", Kind: "string", Default: "",
		Usage: "with 'netmeter serve', export every interval's flows as IPFIX (RFC 7011, UDP) to this host:port (nfcapd, goflow2, any IPFIX collector); empty: off",
		set:   func(c *Config, v string) error { c.IPFIX = v; return nil }},
	{Flag: "remote-write-url", Kind: "string", Default: "",
		Usage: "with 'netmeter serve', push the metrics to this Prometheus remote-write endpoint (e.g. http://prom:9090/api/v1/write) every --remote-write-interval; the --auth-token-file token is sent with it; empty: off",
		set:   func(c *Config, v string) error { c.RemoteWrite = v; return nil }},
	{Flag: "remote-write-interval", Kind: "duration", Default: "15s",
		Usage: "how often --remote-write-url is sent the metrics (1s..1h)",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d > time.Hour {
				return fmt.Errorf("%q is not a duration from 1s to 1h", v)
			}
			c.RWInterval = d
			return nil
		}},
	{Flag: "cpu-limit", Kind: "number", Default: "0",
		Usage: "with 'netmeter serve', cap the agent's own CPU to this many cores (e.g. 0.25) in a cgroup of its own (v2, else v1); 0: no cap (under systemd prefer CPUQuota=)",
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 8192 {
				return fmt.Errorf("%q is not a number of cores from 0 to 8192", v)
			}
			c.CPULimit = f
			return nil
		}},
	{Flag: "memory-limit", Kind: "string", Default: "0",
		Usage: "with 'netmeter serve', cap the agent's own memory (e.g. 256MiB) in a cgroup of its own; 0: no cap (under systemd prefer MemoryMax=)",
		set: func(c *Config, v string) error {
			n, err := quota.ParseBytes(v)
			if err != nil {
				return err
			}
			c.MemoryLimit = n
			return nil
		}},
	{Flag: "max-connections", Kind: "number", Default: "65536",
		Usage: "the most connections tracked at once; beyond it new ones are counted in their process's totals but not listed (a port scan cannot exhaust memory)",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 16 || n > 1<<24 {
				return fmt.Errorf("%q is not a number from 16 to 16777216", v)
			}
			c.MaxConns = n
			return nil
		}},
	{Flag: "metrics-top", Kind: "number", Default: "20",
		Usage: "the busiest programs given their own /metrics series (containers: 5×, remote groups: 1.6×); the rest are summed into \"other\", so scrapes stay bounded",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 10000 {
				return fmt.Errorf("%q is not a number from 1 to 10000", v)
			}
			c.MetricsTop = n
			return nil
		}},
	{Flag: "data-dir", Kind: "string", Default: "/var/lib/netmeter",
		Usage: "where 'netmeter serve' keeps the history database (history.db) that 'netmeter report' and 'netmeter quota' read",
		set:   func(c *Config, v string) error { c.DataDir = v; return nil }},
	{Flag: "timezone", Kind: "string", Default: "Local",
		Usage: "IANA time zone (e.g. Europe/Berlin) in which days, weeks, months and years of the history start; Local is the system's",
		set: func(c *Config, v string) error {
			if _, err := time.LoadLocation(v); err != nil {
				return fmt.Errorf("%q is not a time zone: %w", v, err)
			}
			c.Timezone = v
			return nil
		}},
	{Flag: "pin-path", Kind: "string", Default: "",
		Usage: "pin the eBPF engine under this BPF-filesystem directory (e.g. /sys/fs/bpf/netmeter) so the kernel keeps counting between agent runs; empty: the engine stops with netmeter",
		set:   func(c *Config, v string) error { c.PinPath = v; return nil }},
	{Flag: "billing-day", Kind: "number", Default: "1",
		Usage: "day of the month (1-28) a billing period starts",
		set: func(c *Config, v string) error {
			d, err := strconv.Atoi(v)
			if err != nil || d < 1 || d > 28 {
				return fmt.Errorf("%q is not a day from 1 to 28", v)
			}
			c.BillingDay = d
			return nil
		}},
	{Flag: "nft-counters", Kind: "bool", Default: "false",
		Usage: "also keep nftables named counters of every container's addresses (table inet netmeter, removed at exit) for firewall-level comparison; off by default: netmeter needs no firewall rules",
		set:   boolOpt(func(c *Config) *bool { return &c.NftCounters })},
	{Flag: "tcp-health", Kind: "bool", Default: "true",
		Usage: "load the TCP health hooks: per-connection RTT, windows, retransmissions (fast vs timeout), resets, and the kernel's packet drops with their reasons; nothing runs per data packet",
		set:   boolOpt(func(c *Config) *bool { return &c.TCPHealth })},
	{Flag: "rtt-samples", Kind: "bool", Default: "true",
		Usage: "with --tcp-health, take the kernel's RTT sample of every round trip (per-interval min/max/mean RTT); false keeps only the smoothed RTT",
		set:   boolOpt(func(c *Config) *bool { return &c.RTTSamples })},
	{Flag: "source", Kind: "string", Default: "auto",
		Usage: "interface counter source: auto (rtnetlink, falling back to /proc/net/dev), netlink, or procfs",
		set:   choice(func(c *Config) *string { return &c.Source }, "auto", "netlink", "procfs")},
	{Flag: "interfaces", Kind: "list", Default: "",
		Usage: "comma-separated interface name patterns to show (shell globs, e.g. eth*,veth*); empty shows all",
		set: func(c *Config, v string) error {
			c.Interfaces = nil
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p == "" {
					continue
				}
				if _, err := path.Match(p, ""); err != nil {
					return fmt.Errorf("bad pattern %q: %v", p, err)
				}
				c.Interfaces = append(c.Interfaces, p)
			}
			return nil
		}},
	{Flag: "units", Kind: "string", Default: "bytes",
		Usage: "rate units in tables and the live view: bytes (B/s, KiB/s, …) or bits (bit/s, kbit/s, …)",
		set:   choice(func(c *Config) *string { return &c.Units }, "bytes", "bits")},
	{Flag: "max-link-rate", Kind: "number", Default: "200e9",
		Usage: "highest believable interface rate in bytes/s; a counter jump implying more is discarded as a driver glitch (vnStat's MaxBandwidth)",
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f <= 0 {
				return fmt.Errorf("%q is not a positive number of bytes per second", v)
			}
			c.MaxLinkRate = f
			return nil
		}},
	{Flag: "log-level", Kind: "string", Default: "info",
		Usage: "log level: debug, info, warn or error (logs go to stderr)",
		set:   choice(func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error")},
	{Flag: "log-format", Kind: "string", Default: "text",
		Usage: "log format: text or json",
		set:   choice(func(c *Config) *string { return &c.LogFormat }, "text", "json")},
}

func choice(field func(*Config) *string, allowed ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
		}
		*field(c) = v
		return nil
	}
}

// Defaults returns the configuration with every default applied.
func Defaults() Config {
	var c Config
	for _, o := range Options {
		if err := o.set(&c, o.Default); err != nil {
			panic(fmt.Sprintf("default of %s: %v", o.Flag, err)) // a bug in the table
		}
	}
	return c
}

// flagValue lets pflag show each option's kind in --help.
type flagValue struct {
	kind, val string
}

func (f *flagValue) String() string     { return f.val }
func (f *flagValue) Set(v string) error { f.val = v; return nil }
func (f *flagValue) Type() string       { return f.kind }

// RegisterFlags adds every option, and --config, to flags.
func RegisterFlags(flags *pflag.FlagSet) {
	flags.String("config", "", "config file (YAML); default "+DefaultFile+" if it exists [env NETMETER_CONFIG]")
	for _, o := range Options {
		f := flags.VarPF(&flagValue{kind: o.Kind, val: o.Default}, o.Flag, "", fmt.Sprintf("%s [env %s]", o.Usage, o.Env()))
		if o.Kind == "bool" {
			f.NoOptDefVal = "true" // --nft-counters alone means true
		}
	}
}

// Error is a configuration error; it names the flag, variable or file key
// to change.
type Error struct {
	Where string // "flag --interval", "env NETMETER_INTERVAL", "/etc/…yaml: key interval (line 3)"
	Err   error
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %v", e.Where, e.Err) }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Load builds the effective configuration from defaults, the config file,
// the environment (getenv) and the flags that were set.
func Load(flags *pflag.FlagSet, getenv func(string) string) (Config, error) {
	c := Defaults()
	file, explicit := "", false
	if f := flags.Lookup("config"); f != nil && f.Changed {
		file, explicit = f.Value.String(), true
	} else if v := getenv("NETMETER_CONFIG"); v != "" {
		file, explicit = v, true
	} else {
		file = DefaultFile
	}
	data, err := os.ReadFile(file)
	switch {
	case err == nil:
		if err := applyFile(&c, file, data); err != nil {
			return c, err
		}
		c.ConfigFile = file
	case errors.Is(err, fs.ErrNotExist) && !explicit:
	default:
		return c, &Error{Where: "config file " + file, Err: err}
	}
	for _, o := range Options {
		if v, ok := lookupEnv(getenv, o.Env()); ok {
			if err := o.set(&c, v); err != nil {
				return c, &Error{Where: "env " + o.Env(), Err: err}
			}
		}
	}
	for _, o := range Options {
		if f := flags.Lookup(o.Flag); f != nil && f.Changed {
			if err := o.set(&c, f.Value.String()); err != nil {
				return c, &Error{Where: "flag --" + o.Flag, Err: err}
			}
		}
	}
	return c, nil
}

func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func applyFile(c *Config, file string, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &Error{Where: "config file " + file, Err: fmt.Errorf("not valid YAML: %w", err)}
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return &Error{Where: "config file " + file, Err: fmt.Errorf("line %d: want a mapping of option: value", m.Line)}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if decode, ok := sections[k.Value]; ok {
			if err := decode(c, v); err != nil {
				return &Error{Where: fmt.Sprintf("config file %s: section %q (line %d)", file, k.Value, v.Line), Err: err}
			}
			continue
		}
		o, ok := byKey(k.Value)
		if !ok {
			return &Error{Where: fmt.Sprintf("config file %s: key %q (line %d)", file, k.Value, k.Line), Err: fmt.Errorf("unknown option; known: %s", knownKeys())}
		}
		val := v.Value
		if v.Kind == yaml.SequenceNode && o.Kind == "list" {
			parts := make([]string, 0, len(v.Content))
			for _, e := range v.Content {
				parts = append(parts, e.Value)
			}
			val = strings.Join(parts, ",")
		} else if v.Kind != yaml.ScalarNode {
			return &Error{Where: fmt.Sprintf("config file %s: key %q (line %d)", file, k.Value, v.Line), Err: fmt.Errorf("want a single value")}
		}
		if err := o.set(c, val); err != nil {
			return &Error{Where: fmt.Sprintf("config file %s: key %q (line %d)", file, k.Value, v.Line), Err: err}
		}
	}
	return nil
}

// AlertsKey is the config file's section for Alerts.
const AlertsKey = "alerts"

// Alerts configures the agent's built-in alert rules and where alerts go.
type Alerts struct {
	// Rules replace the defaults (alert.Defaults) when present.
	Rules []alert.Rule `yaml:"rules"`
	// Disabled turns the evaluator off.
	Disabled bool `yaml:"disabled"`
	// Webhook receives Alertmanager-webhook-format JSON; Alertmanager is an
	// Alertmanager's base URL (POST /api/v2/alerts). Alerts are always logged.
	Webhook      string `yaml:"webhook"`
	Alertmanager string `yaml:"alertmanager"`
}

func (a Alerts) validate() error {
	for _, r := range a.Rules {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// RetentionKey is the config file's section for history.Retention.
const RetentionKey = "retention"

// QuotasKey is the config file's list of quota.Quota.
const QuotasKey = "quotas"

// HealthKey is the config file's section for health.Config.
const HealthKey = "health"

// sections decode the file's structured sections into a Config: strictly
// (unknown keys are errors) and validated.
var sections = map[string]func(*Config, *yaml.Node) error{
	AlertsKey: func(c *Config, n *yaml.Node) error {
		var al Alerts
		if err := decodeStrict(&al, n, "see docs/ALERTS.md"); err != nil {
			return err
		}
		if err := al.validate(); err != nil {
			return err
		}
		c.Alerts = al
		return nil
	},
	RetentionKey: func(c *Config, n *yaml.Node) error {
		return decodeStrict(&c.Retention, n, "keys: five_minutes, hours, days, weeks, months, years, top_days")
	},
	QuotasKey: func(c *Config, n *yaml.Node) error {
		var qs []quota.Quota
		if err := decodeStrict(&qs, n, "want a list of {name, entity, direction, limit, period, start_day, warn}"); err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, q := range qs {
			if _, err := quota.Parse(q); err != nil {
				return err
			}
			if seen[q.Name] {
				return fmt.Errorf("quota %q is defined twice", q.Name)
			}
			seen[q.Name] = true
		}
		c.Quotas = qs
		return nil
	},
	HealthKey: func(c *Config, n *yaml.Node) error {
		var hc health.Config
		if err := decodeStrict(&hc, n, "line numbers count from the section's first line"); err != nil {
			return err
		}
		if err := hc.Validate(); err != nil {
			return err
		}
		c.Health = hc
		return nil
	},
}

// decodeStrict decodes n into dst, unknown keys being errors; hint follows
// a decoding error.
func decodeStrict(dst any, n *yaml.Node, hint string) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("%w (%s)", err, hint)
	}
	return nil
}

func byKey(k string) (Option, bool) {
	for _, o := range Options {
		if o.Key() == k {
			return o, true
		}
	}
	return Option{}, false
}

func knownKeys() string {
	keys := make([]string, len(Options))
	for i, o := range Options {
		keys[i] = o.Key()
	}
	return strings.Join(keys, ", ")
}

// Markdown renders the option table for docs/CONFIG.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# netmeter configuration\n\n")
	b.WriteString("<!-- Generated from internal/config/config.go by `go test ./internal/config -update`. Do not edit. -->\n\n")
	b.WriteString("Every option can be set three ways. Precedence, lowest first: built-in default, config file,\n")
	b.WriteString("environment variable, command-line flag.\n\n")
	fmt.Fprintf(&b, "- **Config file**: YAML, one `key: value` per option; `--config FILE` or `NETMETER_CONFIG` names it, otherwise\n  `%s` is read if it exists. Unknown keys are errors (a typo never goes unnoticed).\n", DefaultFile)
	b.WriteString("  The file may also hold a `health:` section (remote groups, monitors, health-indicator thresholds;\n  see [HEALTH.md](HEALTH.md)) a `quotas:` list and a `retention:` section (see [HISTORY.md](HISTORY.md)) and an `alerts:` section\n  (see [ALERTS.md](ALERTS.md)), which have no flag or variable.\n")
	b.WriteString("- **Environment**: `NETMETER_<OPTION>`, e.g. `NETMETER_INTERVAL=500ms`.\n")
	b.WriteString("- **Flags**: `--option value`; they apply to every subcommand.\n\n")
	b.WriteString("| flag | env | file key | type | default | meaning |\n|---|---|---|---|---|---|\n")
	for _, o := range Options {
		def := o.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `--%s` | `%s` | `%s` | %s | `%s` | %s |\n", o.Flag, o.Env(), o.Key(), o.Kind, def, strings.ReplaceAll(o.Usage, "|", "\\|"))
	}
	b.WriteString("\nExample `/etc/netmeter/netmeter.yaml`:\n\n```yaml\ninterval: 1s\ninterfaces: [eth*, wl*]\nunits: bits\nlog_level: info\n```\n")
	return b.String()
}

// boolOpt parses a bool option into the field f returns.
func boolOpt(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		*f(c) = b
		return nil
	}
}
