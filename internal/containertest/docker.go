package containertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Paths of Debian's docker.io binaries. The CLI is Debian's 20.10 one, which
// matches the daemon; a newer docker in /usr/local/bin is not used.
const (
	DockerdPath   = "/usr/sbin/dockerd"
	DockerCLIPath = "/usr/bin/docker"
)

// dockerSubnets is where the private dockerd's bridge gets a free /24.
var dockerSubnets = netip.MustParsePrefix("10.213.0.0/16")

// Runtime is what Docker and Podman have in common: running a container
// from the busybox image, removed at t's cleanup.
type Runtime interface {
	// Name is "docker" or "podman".
	Name() string
	// Run runs a container and fails t on error.
	Run(t testing.TB, opts RunOpts) *Container
}

var (
	_ Runtime = (*Docker)(nil)
	_ Runtime = (*Podman)(nil)
)

// Name returns "docker".
func (d *Docker) Name() string { return "docker" }

// Docker is a private dockerd started for the tests of one package. See the
// package documentation for how it is shared and what it touches.
type Docker struct {
	// Dir holds everything the daemon writes: data root, exec root, socket,
	// pid file, log and CLI config. Removed at shutdown.
	Dir string
	// Socket is the daemon's API socket; Host is it as DOCKER_HOST.
	Socket, Host string
	// Bridge is the name of the daemon's bridge, in the host namespace.
	Bridge string
	// Subnet is the bridge's subnet and Gateway its address on the host.
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Image is the imported busybox image ([ImageName]).
	Image string
	// PID is dockerd's pid.
	PID int

	cmd  *exec.Cmd
	done chan struct{}
}

var sharedDocker shared[Docker]

// RequireDocker returns the package's private dockerd, starting it if no
// test holds it (about 1 s plus the image import), and keeps it for t. It
// skips t unless it runs as root with Debian's docker.io installed (fails
// instead with NETMETER_REQUIRE_PRIVILEGED=1).
func RequireDocker(t testing.TB) *Docker {
	t.Helper()
	requireTools(t, "docker", DockerdPath, DockerCLIPath, "/usr/sbin/docker-proxy", "/usr/bin/containerd", "/usr/sbin/runc", Busybox)
	return sharedDocker.acquire(t, startDocker)
}

func startDocker() (d *Docker, stop func(func(string, ...any)), err error) {
	start := time.Now()
	_ = withHostLock(func() error {
		reapStale("nmt-docker-*", func(f string, a ...any) { fmt.Fprintf(os.Stderr, "containertest: "+f+"\n", a...) })
		return nil
	})
	dir, err := os.MkdirTemp("", "nmt-docker-")
	if err != nil {
		return nil, nil, err
	}
	track(dir)
	d = &Docker{
		Dir:    dir,
		Socket: filepath.Join(dir, "docker.sock"),
		Bridge: "nmtd-" + randHex(4),
		Image:  ImageName,
	}
	d.Host = "unix://" + d.Socket
	track(d.Bridge)
	stop = func(logf func(string, ...any)) {
		if err := d.shutdown(logf); err != nil {
			logf("stop docker: %v", err)
		}
	}
	defer func() {
		if err != nil {
			stop(func(string, ...any) {})
		}
	}()
	err = withHostLock(func() error {
		sub, err := freeSubnet(dockerSubnets)
		if err != nil {
			return err
		}
		d.Subnet, d.Gateway = sub, sub.Addr().Next()
		if err := writeOwner(dir, d.Bridge); err != nil {
			return err
		}
		return addHostBridge(d.Bridge, netip.PrefixFrom(d.Gateway, sub.Bits()))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("docker bridge: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		return nil, nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(DockerdPath,
		"--host", d.Host,
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--bridge", d.Bridge,
		"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--userland-proxy=true",
		"--shutdown-timeout", "2",
		"--log-level", "warn",
	)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "cli"))
	// dockerd's managed containerd and the shims stay in their own process
	// group; if the test binary dies, SIGTERM lets dockerd stop them.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start dockerd: %w", err)
	}
	d.PID = d.cmd.Process.Pid
	d.done = make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	if err := d.waitReady(15 * time.Second); err != nil {
		return nil, nil, fmt.Errorf("dockerd not ready: %w; log:\n%s", err, d.Log())
	}
	ready := time.Since(start)
	rootfs, err := busyboxRootfs()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := d.cliIn(ctx, bytes.NewReader(rootfs), "import", "--change", `CMD ["/bin/sh"]`, "-", d.Image); err != nil {
		return nil, nil, fmt.Errorf("import busybox image: %w", err)
	}
	if os.Getenv("NETMETER_CONTAINERTEST_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "containertest: dockerd pid %d ready in %v, image in %v\n", d.PID, ready, time.Since(start))
	}
	return d, stop, nil
}

// waitReady polls the API's /_ping until it answers OK.
func (d *Docker) waitReady(timeout time.Duration) error {
	c := d.HTTPClient()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return fmt.Errorf("dockerd exited: %v", d.cmd.ProcessState)
		default:
		}
		resp, err := c.Get("http://docker/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("ping: %s", resp.Status)
		}
		last = err
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("after %v: %v", timeout, last)
}

// HTTPClient returns an HTTP client that talks to the daemon's socket (any
// host name in the URL).
func (d *Docker) HTTPClient() *http.Client { return unixHTTPClient(d.Socket) }

func unixHTTPClient(sock string) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", sock)
		}},
	}
}

// Log returns dockerd's log so far.
func (d *Docker) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dockerd.log"))
	return string(b)
}

// CLI runs the docker CLI against the daemon and returns its stdout; the
// error includes its stderr.
func (d *Docker) CLI(ctx context.Context, args ...string) ([]byte, error) {
	return d.cliIn(ctx, nil, args...)
}

func (d *Docker) cliIn(ctx context.Context, stdin *bytes.Reader, args ...string) ([]byte, error) {
	cmd := d.cliCommand(ctx, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

func (d *Docker) cliCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, DockerCLIPath, append([]string{"--host", d.Host}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"), "DOCKER_HOST="+d.Host)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Run runs a container from the busybox image (docker run -d) and registers
// its removal (docker rm -f) with t.Cleanup. It fails t on error.
func (d *Docker) Run(t testing.TB, opts RunOpts) *Container {
	t.Helper()
	opts.defaults()
	args := []string{"run", "-d", "--name", opts.Name, "--network", opts.Network}
	for _, k := range sortedKeys(opts.Labels) {
		args = append(args, "--label", k+"="+opts.Labels[k])
	}
	if opts.Network != "host" {
		for _, cp := range sortedIntKeys(opts.Publish) {
			hp := opts.Publish[cp]
			hps := ""
			if hp != 0 {
				hps = strconv.Itoa(hp)
			}
			args = append(args, "-p", fmt.Sprintf("127.0.0.1:%s:%d/tcp", hps, cp))
		}
	}
	args = append(args, d.Image)
	args = append(args, opts.Cmd...)
	ctx := context.WithoutCancel(t.Context())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := d.CLI(ctx, "rm", "-f", "-v", opts.Name); err != nil && !strings.Contains(err.Error(), "No such container") {
			t.Errorf("remove container %s: %v", opts.Name, err)
		}
	})
	out, err := d.CLI(ctx, args...)
	if err != nil {
		t.Fatalf("run container: %v", err)
	}
	id := strings.TrimSpace(string(out))
	track(id)
	c, err := d.inspect(ctx, id)
	if err != nil {
		t.Fatalf("inspect container %s: %v", id, err)
	}
	c.Labels = opts.Labels
	return c
}

type inspectJSON struct {
	ID     string `json:"Id"`
	Name   string
	State  struct{ Pid int }
	Config struct{ Labels map[string]string }
	// NetworkSettings of docker and podman inspect.
	NetworkSettings struct {
		IPAddress string
		Gateway   string
		Ports     map[string][]struct{ HostIP, HostPort string }
		Networks  map[string]struct{ IPAddress, Gateway string }
	}
}

func (d *Docker) inspect(ctx context.Context, id string) (*Container, error) {
	out, err := d.CLI(ctx, "inspect", id)
	if err != nil {
		return nil, err
	}
	c, err := containerFromInspect(out)
	if err != nil {
		return nil, err
	}
	c.Runtime = "docker"
	if !c.Gateway.IsValid() {
		c.Gateway = d.Gateway
	}
	c.command = func(ctx context.Context, args ...string) *exec.Cmd {
		return d.cliCommand(ctx, append([]string{"exec", c.ID}, args...)...)
	}
	return c, nil
}

// containerFromInspect parses `docker inspect` / `podman inspect` output.
func containerFromInspect(out []byte) (*Container, error) {
	var ins []inspectJSON
	if err := json.Unmarshal(out, &ins); err != nil {
		return nil, fmt.Errorf("parse inspect: %w", err)
	}
	if len(ins) != 1 {
		return nil, fmt.Errorf("inspect returned %d containers", len(ins))
	}
	in := ins[0]
	c := &Container{
		ID:     in.ID,
		Name:   strings.TrimPrefix(in.Name, "/"),
		PID:    in.State.Pid,
		Labels: in.Config.Labels,
		Ports:  map[int]int{},
	}
	if c.PID <= 0 {
		return nil, fmt.Errorf("container %s has no pid (not running?)", c.ID)
	}
	c.Netns = fmt.Sprintf("/proc/%d/ns/net", c.PID)
	ip, gw := in.NetworkSettings.IPAddress, in.NetworkSettings.Gateway
	for _, n := range in.NetworkSettings.Networks {
		if ip == "" {
			ip, gw = n.IPAddress, n.Gateway
		}
	}
	if a, err := netip.ParseAddr(ip); err == nil {
		c.IP = a
	}
	if a, err := netip.ParseAddr(gw); err == nil {
		c.Gateway = a
	}
	var cports []int
	for spec, binds := range in.NetworkSettings.Ports {
		p, proto, _ := strings.Cut(spec, "/")
		cp, err := strconv.Atoi(p)
		if err != nil || (proto != "" && proto != "tcp") || len(binds) == 0 {
			continue
		}
		hp, err := strconv.Atoi(binds[0].HostPort)
		if err != nil {
			continue
		}
		c.Ports[cp] = hp
		cports = append(cports, cp)
	}
	if len(cports) > 0 {
		sort.Ints(cports)
		c.HostPort = c.Ports[cports[0]]
	}
	if err := c.readCgroups(); err != nil {
		return nil, err
	}
	return c, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// shutdown removes every container, stops dockerd by its pid, kills what is
// left of its process tree, and deletes the bridge and the directory.
func (d *Docker) shutdown(logf func(string, ...any)) error {
	var errs []string
	if d.cmd != nil && d.cmd.Process != nil {
		select {
		case <-d.done:
		default:
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			if out, err := d.CLI(ctx, "ps", "-aq"); err == nil && len(bytes.TrimSpace(out)) > 0 {
				ids := strings.Fields(string(out))
				if _, err := d.CLI(ctx, append([]string{"rm", "-f", "-v"}, ids...)...); err != nil {
					errs = append(errs, err.Error())
				}
			}
			cancel()
		}
		if err := stopPID(d.cmd, d.done, 10*time.Second); err != nil {
			errs = append(errs, "dockerd: "+err.Error())
		}
	}
	if left := pidsUnder(d.Dir); len(left) > 0 {
		logf("docker: killing leftover processes %v", left)
		killPIDs(left)
	}
	if err := delHostLink(d.Bridge); err != nil {
		errs = append(errs, "delete bridge "+d.Bridge+": "+err.Error())
	}
	if err := removeTree(d.Dir); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func sortedIntKeys(m map[int]int) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}
