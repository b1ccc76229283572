// Package netmeter is the Go SDK of netmeter, a Linux network traffic
// monitor: per interface, per process, per connection, counted in the kernel
// with eBPF and attributed through each socket.
//
//	m, err := netmeter.New(netmeter.WithInterval(time.Second))
//	if err != nil { … }
//	if err := m.Start(ctx); err != nil { … } // needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)
//	defer m.Stop()
//	for _, p := range m.ProcessRank(10, 30*time.Second) {
//		fmt.Println(p.PID, p.Comm, p.TxBytes, p.RxBytes)
//	}
//
// A Monitor reads its sources once per interval and publishes one immutable
// Snapshot per interval: to Snapshot, to ProcessRank and Connections, and to
// every Subscribe channel. Byte kinds are documented on Traffic.
package netmeter
