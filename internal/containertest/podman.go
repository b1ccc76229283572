package containertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PodmanPath is Debian's podman (4.3).
const PodmanPath = "/usr/bin/podman"

// podmanSubnets is where a Podman's bridge network gets a free /24.
var podmanSubnets = netip.MustParsePrefix("10.214.0.0/16")

// Podman is a podman with private state for the tests of one package: its
// own storage (--root, --runroot), libpod tmp dir, file locks, containers.conf
// (runc, lowered ulimits: crun cannot run in this hybrid-cgroup VM) and
// network config dir, with one bridge network on its own bridge. The host's
// podman state is never read or written. Podman has no daemon: each call is a
// podman process; [Podman.ServeAPI] runs the API service.
type Podman struct {
	// Dir holds everything podman writes. Removed at shutdown.
	Dir string
	// Network is the name of the bridge network containers join by default.
	Network string
	// Bridge is its bridge's name in the host namespace (created by netavark
	// when the first container starts and deleted after the last).
	Bridge string
	// Subnet is the network's subnet and Gateway the bridge's address.
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Image is the imported busybox image ([ImageName]).
	Image string

	globals []string
	env     []string
}

// podmanBaselinePath holds what the host had before any test process of
// this package used podman: the iptables-save output of iptables and
// ip6tables and the libpod_parent cgroup directories that did not exist.
// The first test process to start a Podman writes it; the last one to stop
// restores the host to it and removes it.
const podmanBaselinePath = "/run/netmeter-test-podman.baseline"

type podmanBaseline struct {
	IPTables      map[string]string `json:"iptables"` // tool → iptables-save output
	CgroupParents []string          `json:"cgroup_parents"`
}

// takePodmanBaseline, under the host lock, records the host's state in
// podmanBaselinePath unless another live test process runs a Podman (then
// the baseline it recorded stays).
func takePodmanBaseline(self string) error {
	if otherLiveOwners("nmt-podman-*", self) {
		if _, err := os.Stat(podmanBaselinePath); err == nil {
			return nil
		}
	}
	b := podmanBaseline{IPTables: map[string]string{}, CgroupParents: missingCgroupParents("libpod_parent")}
	for _, tool := range []string{"iptables", "ip6tables"} {
		if out, err := exec.Command(tool + "-save").Output(); err == nil {
			b.IPTables[tool] = string(out)
		}
	}
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return os.WriteFile(podmanBaselinePath, data, 0o600)
}

// restorePodmanBaseline, under the host lock and only when no other live
// test process runs a Podman, deletes the NETAVARK rules and chains and the
// libpod_parent cgroup directories that were not there at the baseline.
func restorePodmanBaseline() error {
	data, err := os.ReadFile(podmanBaselinePath)
	if err != nil {
		return fmt.Errorf("read podman baseline: %w", err)
	}
	var b podmanBaseline
	if err := json.Unmarshal(data, &b); err != nil {
		return fmt.Errorf("parse %s: %w", podmanBaselinePath, err)
	}
	var errs []string
	for tool, out := range b.IPTables {
		if err := removeNewChains(tool, parseIPTablesSave(out), "NETAVARK"); err != nil {
			errs = append(errs, err.Error())
		}
	}
	removeCgroupDirs(b.CgroupParents)
	_ = os.Remove(podmanBaselinePath)
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

var sharedPodman shared[Podman]

// RequirePodman returns the package's private podman, setting it up if no
// test holds it (about 0.2 s: config files and the image import), and keeps
// it for t. It skips t unless it runs as root with podman and runc installed
// (fails instead with NETMETER_REQUIRE_PRIVILEGED=1).
func RequirePodman(t testing.TB) *Podman {
	t.Helper()
	requireTools(t, "podman", PodmanPath, "/usr/sbin/runc", "/usr/bin/conmon", "/usr/lib/podman/netavark", Busybox)
	return sharedPodman.acquire(t, startPodman)
}

func startPodman() (p *Podman, stop func(func(string, ...any)), err error) {
	_ = withHostLock(func() error {
		reapStale("nmt-podman-*", func(f string, a ...any) { fmt.Fprintf(os.Stderr, "containertest: "+f+"\n", a...) })
		return nil
	})
	dir, err := os.MkdirTemp("", "nmt-podman-")
	if err != nil {
		return nil, nil, err
	}
	track(dir)
	p = &Podman{
		Dir:     dir,
		Network: "nmt",
		Bridge:  "nmtp-" + randHex(4),
		Image:   ImageName,
	}
	track(p.Bridge)
	stop = func(logf func(string, ...any)) {
		if err := p.shutdown(logf); err != nil {
			logf("stop podman: %v", err)
		}
	}
	defer func() {
		if err != nil {
			stop(func(string, ...any) {})
		}
	}()
	for _, d := range []string{"root", "runroot", "tmp", "networks"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, nil, err
		}
	}
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = %[1]q

[network]
network_backend = "netavark"
network_config_dir = %[2]q
`, filepath.Join(dir, "tmp"), filepath.Join(dir, "networks"))
	storage := fmt.Sprintf("[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "runroot"))
	for name, body := range map[string]string{"containers.conf": conf, "storage.conf": storage, "registries.conf": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return nil, nil, err
		}
	}
	p.env = append(os.Environ(),
		"CONTAINERS_CONF="+filepath.Join(dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(dir, "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF="+filepath.Join(dir, "registries.conf"),
	)
	p.globals = []string{
		"--root", filepath.Join(dir, "root"),
		"--runroot", filepath.Join(dir, "runroot"),
		"--tmpdir", filepath.Join(dir, "tmp"),
		"--network-config-dir", filepath.Join(dir, "networks"),
		"--storage-driver", "overlay",
		"--cgroup-manager", "cgroupfs",
		"--events-backend", "file",
		"--runtime", "runc",
	}
	err = withHostLock(func() error {
		// What podman and netavark add to the host, to remove at shutdown.
		if err := takePodmanBaseline(dir); err != nil {
			return err
		}
		sub, err := freeSubnet(podmanSubnets)
		if err != nil {
			return err
		}
		p.Subnet, p.Gateway = sub, sub.Addr().Next()
		if err := writeOwner(dir, p.Bridge); err != nil {
			return err
		}
		// The network is written as netavark's config file: podman 4.3's
		// `network create` cannot name the bridge.
		netConf := map[string]any{
			"name":              p.Network,
			"id":                randHex(32),
			"driver":            "bridge",
			"network_interface": p.Bridge,
			"created":           time.Now().UTC().Format(time.RFC3339Nano),
			"subnets":           []map[string]string{{"subnet": sub.String(), "gateway": p.Gateway.String()}},
			"ipv6_enabled":      false,
			"internal":          false,
			"dns_enabled":       false,
			"ipam_options":      map[string]string{"driver": "host-local"},
		}
		b, _ := json.MarshalIndent(netConf, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "networks", p.Network+".json"), b, 0o644); err != nil {
			return err
		}
		// Hold the subnet until netavark takes the bridge over.
		return addHostBridge(p.Bridge, netip.PrefixFrom(p.Gateway, sub.Bits()))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("podman network: %w", err)
	}
	rootfs, err := busyboxRootfs()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := p.Command(ctx, "import", "--change", `CMD ["/bin/sh"]`, "-", p.Image)
	cmd.Stdin = bytes.NewReader(rootfs)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("podman import: %w: %s", err, out)
	}
	return p, stop, nil
}

// missingCgroupParents returns the directories named name, in the cgroup2
// mount and each v1 hierarchy, that do not exist yet.
func missingCgroupParents(name string) []string {
	var out []string
	mounts, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, m := range append(mounts, "/sys/fs/cgroup") {
		if _, err := os.Stat(filepath.Join(m, "cgroup.procs")); err != nil {
			continue
		}
		d := filepath.Join(m, name)
		if _, err := os.Stat(d); os.IsNotExist(err) {
			out = append(out, d)
		}
	}
	return out
}

// Name returns "podman".
func (p *Podman) Name() string { return "podman" }

// Command returns a podman command with the private state's flags and
// environment.
func (p *Podman) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, PodmanPath, append(append([]string(nil), p.globals...), args...)...)
	cmd.Env = p.env
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// CLI runs podman with the private state and returns its stdout; the error
// includes its stderr.
func (p *Podman) CLI(ctx context.Context, args ...string) ([]byte, error) {
	cmd := p.Command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("podman %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Run runs a container from the busybox image (podman run -d) on the
// private bridge network (or the host's with Network "host") and registers
// its removal (podman rm -f -t 0) with t.Cleanup. It fails t on error.
func (p *Podman) Run(t testing.TB, opts RunOpts) *Container {
	t.Helper()
	opts.defaults()
	network := opts.Network
	if network == "bridge" {
		network = p.Network
	}
	args := []string{"run", "-d", "--name", opts.Name, "--network", network}
	for _, k := range sortedKeys(opts.Labels) {
		args = append(args, "--label", k+"="+opts.Labels[k])
	}
	if opts.Network != "host" {
		for _, cp := range sortedIntKeys(opts.Publish) {
			hps := ""
			if hp := opts.Publish[cp]; hp != 0 {
				hps = strconv.Itoa(hp)
			}
			args = append(args, "-p", fmt.Sprintf("127.0.0.1:%s:%d/tcp", hps, cp))
		}
	}
	args = append(args, p.Image)
	args = append(args, opts.Cmd...)
	ctx := context.WithoutCancel(t.Context())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := p.CLI(ctx, "rm", "-f", "-t", "0", opts.Name); err != nil && !strings.Contains(err.Error(), "no such container") {
			t.Errorf("remove container %s: %v", opts.Name, err)
		}
	})
	out, err := p.CLI(ctx, args...)
	if err != nil {
		t.Fatalf("run container: %v", err)
	}
	id := strings.TrimSpace(string(out))
	track(id)
	out, err = p.CLI(ctx, "inspect", "--type", "container", id)
	if err != nil {
		t.Fatalf("inspect container %s: %v", id, err)
	}
	c, err := containerFromInspect(out)
	if err != nil {
		t.Fatalf("inspect container %s: %v", id, err)
	}
	c.Runtime = "podman"
	if opts.Network != "host" && !c.Gateway.IsValid() {
		c.Gateway = p.Gateway
	}
	c.Labels = opts.Labels
	c.command = func(ctx context.Context, args ...string) *exec.Cmd {
		return p.Command(ctx, append([]string{"exec", c.ID}, args...)...)
	}
	return c
}

// ServeAPI runs podman's Docker-compatible (and libpod) API service for the
// private state, `podman system service --time=0 unix://<socket>`, waits
// until it answers /_ping, and returns the socket's path (for a Docker client:
// DOCKER_HOST=unix://<path>). The service is stopped by its pid at t's
// cleanup.
func (p *Podman) ServeAPI(t testing.TB) (socketPath string) {
	t.Helper()
	sock := filepath.Join(p.Dir, "api-"+randHex(4)+".sock")
	logf, err := os.Create(sock + ".log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := p.Command(context.Background(), "system", "service", "--time=0", "unix://"+sock)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start podman system service: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if err := stopPID(cmd, done, 10*time.Second); err != nil {
			t.Errorf("stop podman system service: %v", err)
		}
		_ = os.Remove(sock)
		_ = os.Remove(sock + ".log")
	})
	c := unixHTTPClient(sock)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get("http://podman/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return sock
			}
		}
		select {
		case <-done:
			b, _ := os.ReadFile(sock + ".log")
			t.Fatalf("podman system service exited: %v\n%s", cmd.ProcessState, b)
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(sock + ".log")
			t.Fatalf("podman API on %s not ready after 15 s: %v\n%s", sock, err, b)
		}
	}
}

// shutdown removes every container, kills what is left of podman's processes
// (conmon, API services), deletes the bridge, the iptables rules and chains
// netavark added and the cgroup parents podman created, and removes the
// directory.
func (p *Podman) shutdown(logf func(string, ...any)) error {
	var errs []string
	if p.globals != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if out, err := p.CLI(ctx, "ps", "-aq"); err == nil && len(bytes.TrimSpace(out)) > 0 {
			if _, err := p.CLI(ctx, append([]string{"rm", "-f", "-t", "0"}, strings.Fields(string(out))...)...); err != nil {
				errs = append(errs, err.Error())
			}
		}
		cancel()
	}
	if left := pidsUnder(p.Dir); len(left) > 0 {
		logf("podman: killing leftover processes %v", left)
		killPIDs(left)
	}
	if err := delHostLink(p.Bridge); err != nil {
		errs = append(errs, "delete bridge "+p.Bridge+": "+err.Error())
	}
	// The last test process out restores the host; the lock makes that
	// decision atomic between processes stopping at the same time.
	err := withHostLock(func() error {
		if err := removeTree(p.Dir); err != nil {
			return err
		}
		if otherLiveOwners("nmt-podman-*", p.Dir) {
			return nil
		}
		return restorePodmanBaseline()
	})
	if err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// otherLiveOwners reports whether another live test process owns a daemon
// directory matching pattern (other than self): then shared host state, like
// netavark's chains, is still in use.
func otherLiveOwners(pattern, self string) bool {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), pattern))
	for _, dir := range dirs {
		if dir == self {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 && syscall.Kill(pid, 0) == nil {
			return true
		}
	}
	return false
}

// removeCgroupDirs removes each cgroup directory in dirs with its empty
// subdirectories (like libpod_parent/conmon), deepest first. Directories
// still in use stay.
func removeCgroupDirs(dirs []string) {
	for _, d := range dirs {
		var sub []string
		_ = filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				sub = append(sub, p)
			}
			return nil
		})
		for i := len(sub) - 1; i >= 0; i-- {
			_ = syscall.Rmdir(sub[i])
		}
	}
}
