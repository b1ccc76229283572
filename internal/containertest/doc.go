// Package containertest runs real containers for netmeter's privileged tests
// and removes everything they made when the test ends, even when it fails.
//
// Three kinds of container share one [Container] type:
//
//   - Docker: [RequireDocker] starts a private dockerd (Debian's 20.10) with
//     its own socket, data root, exec root, daemon.json and bridge, imports
//     a busybox image built from the host's static busybox ([ImageName]),
//     and [Docker.Run] runs containers in it (cgroup /docker/<id>).
//   - Podman: [RequirePodman] gives a podman (4.3, runc) with private
//     --root/--runroot/--tmpdir, containers.conf, storage.conf, file locks
//     and network config dir, and one bridge network on its own bridge;
//     [Podman.Run] runs containers (cgroup /libpod_parent/libpod-<id>) and
//     [Podman.ServeAPI] serves its Docker-compatible API on a socket.
//   - Hand-made: [HandMade] builds a container without a runtime: a cgroup v2
//     directory with a runtime-like path (/netmeter-test/docker/<id>) and a
//     network namespace wired by a veth to a bridge in a separate
//     "host-side" test namespace ([HandMadeNet]); the host is not touched.
//
// Docker and Podman both implement [Runtime].
//
// # Moving an exact number of bytes
//
// Every container has busybox, and [Container.Exec] runs a command inside it
// as the container's own process (docker exec, podman exec, or a process
// started in the hand-made container's cgroup and namespace). On top of it:
//
//   - [Container.Sink] listens on a port inside the container, counts what
//     one connection sends until it half-closes, replies with the count as a
//     decimal line ("N\n", [ReplyLen] bytes) and reports it to the test.
//   - [Container.Send] sends exactly n bytes from inside the container and
//     returns the count the peer replied with.
//   - [ListenCount] is the same counting server on the host side, and
//     [SendCount] the same sender from the test process.
//
// So a transfer is confirmed by its receiver, and the reverse direction
// carries exactly ReplyLen(n) bytes. [Container.StartRole] runs one of
// internal/testnet's traffic roles in the container's network namespace and
// cgroups instead; that process is attributed to the container's cgroup but is
// not one of the container runtime's own processes.
//
// # Sharing a daemon
//
// Starting dockerd and importing the image takes about 0.35 s here (ready
// in ~0.13 s, import ~0.2 s). All tests of a package share one
// daemon of each kind: the first Require call starts it and each test holds a
// reference. Without more, the daemon stops when the last test holding it
// ends, so sequential tests restart it. To keep it for the whole package and
// stop it once at the end, call [Main] from TestMain:
//
//	func TestMain(m *testing.M) { containertest.Main(m) }
//
// Main also runs internal/testnet's child roles, so it replaces testnet.Main.
//
// # What is touched on the host
//
// dockerd runs with --iptables=false --ip6tables=false --ip-forward=false
// --ip-masq=false: it never changes the firewall or sysctls, and published
// ports (bound to 127.0.0.1 only) go through docker-proxy. Its bridge
// (nmtd-<hex>) is created by this package in a free 10.213.X.0/24 and deleted
// at the end. Podman's bridge (nmtp-<hex>) gets a free 10.214.X.0/24.
// netavark cannot run without a firewall: while podman containers run it adds
// iptables rules (NETAVARK chains, published ports are DNAT rules, not a
// proxy). At shutdown the NETAVARK rules and chains that did not exist before
// are deleted, and so are the cgroup parents podman created (libpod_parent,
// libpod_parent/conmon), unless another live test process still runs a
// podman of this package. A dockerd or podman someone else runs is never
// touched: every daemon is stopped by the pid this package started, and
// every path and interface name is private to one test process. The
// directories hold an owner file, so a later run removes what a test binary
// that died without its cleanups (a panic, a kill) left behind.
//
// Tests need root; they skip otherwise, or fail when
// NETMETER_REQUIRE_PRIVILEGED=1 (as in CI). CI installs the packages with
// .ci/containers-setup.sh.
package containertest
