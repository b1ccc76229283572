// Package testnet is the test network harness used by netmeter's accuracy
// tests on the real kernel.
//
// It builds small, exact networks on the local machine and removes them when
// the test ends, even when it fails: every constructor takes a testing.TB and
// registers its teardown with t.Cleanup before the resource could leak.
//
// The pieces are:
//
//   - [Netns]: a named network namespace under /run/netns ("nmt-xxxxxx"),
//     visible to `ip netns`, with lo up. [Netns.Do] runs code on a locked OS
//     thread switched into it; sockets created there stay in it.
//   - Links: veth pairs between namespaces, addresses (IPv6 without DAD),
//     bridges, MTU, permanent neighbours and per-namespace sysctls, all through
//     netlink and /proc from inside the namespace, never by running ip(8).
//   - [Pair]: two namespaces joined by one quiet veth, with IPv4 and IPv6
//     addresses and static neighbours, so the only packets on the veth are the
//     ones the test sends. [Pair.Recreate] deletes and re-creates the veth.
//   - [Cgroup]: a fresh cgroup v2 directory with its id and an fd for
//     SysProcAttr.UseCgroupFD; teardown kills what is left in it.
//   - Child processes: [Main] from TestMain and [Command] re-execute the test
//     binary as a registered role (a traffic generator or receiver) inside a
//     namespace and/or cgroup; [StartChild] reads the role's JSON reports.
//   - Traffic generators: [SendTCP], [TCPServer], [SendUDP] and [UDPReceiver]
//     move an exact number of payload bytes, and the receiving side confirms
//     the count, so tests compare against verified ground truth.
//
// All traffic stays on loopback or inside namespaces the test created; the
// host's interfaces, addresses, routes and firewall are never changed.
//
// Tests that use this package need root. [RequirePrivileged] skips them
// otherwise, or fails them when NETMETER_REQUIRE_PRIVILEGED=1 (as in CI).
package testnet
