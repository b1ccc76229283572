// Package netmeter is the Go SDK of netmeter, a Linux network traffic monitor.
//
// The SDK grows with the engine: today it exposes nothing beyond the command
// line tool in cmd/netmeter; the collection pipeline lives under internal/ and
// flows sources → attribution → aggregation → sinks (see docs/ARCHITECTURE.md).
package netmeter
