package diagnose

import (
	"strings"
	"testing"
)

const snmpFixture = `Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 1234
Tcp: RtoAlgorithm MaxConn RetransSegs
Tcp: 1 -1 17
Udp: InDatagrams RcvbufErrors
Udp: 99 18446744073709551615
`

func TestParseSNMP(t *testing.T) {
	m, err := ParseSNMP([]byte(snmpFixture))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]uint64{"Ip.InReceives": 1234, "Tcp.MaxConn": 0, "Tcp.RetransSegs": 17, "Udp.RcvbufErrors": 1<<64 - 1} {
		if m[k] != want {
			t.Errorf("%s = %d, want %d", k, m[k], want)
		}
	}
	for _, bad := range []string{
		"Ip: A B\nIp: 1\n",        // short values
		"Ip: A\n",                 // names without values
		"Ip A\nIp 1\n",            // no colon
		"Ip: A\nIp: x\n",          // not a number
		"Ip: A\nTcp: B\nTcp: 1\n", // group without values
	} {
		if _, err := ParseSNMP([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseSNMP6(t *testing.T) {
	m := ParseSNMP6([]byte("Ip6InReceives 5\nUdp6RcvbufErrors    7\ngarbage\nUdp6X y\n"))
	if m["Udp6RcvbufErrors"] != 7 || m["Ip6InReceives"] != 5 || len(m) != 2 {
		t.Errorf("%v", m)
	}
}

func FuzzParseSNMP(f *testing.F) {
	f.Add([]byte(snmpFixture))
	f.Add([]byte("TcpExt: A B\nTcpExt: 1 2\nIpExt: C\nIpExt: 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseSNMP(b)
		if err == nil {
			for k := range m {
				if !strings.Contains(k, ".") {
					t.Fatalf("key %q without group", k)
				}
			}
		}
		_ = ParseSNMP6(b)
	})
}

func TestNICKeep(t *testing.T) {
	for name, want := range map[string]bool{
		"rx_missed_errors": true, "rx_no_buffer_count": true, "rx_fifo_errors": true, "rx_dropped": true,
		"port.rx_discards": true, "rx_out_of_buffer": true, "rx_bytes": false, "tx_packets": false, "rx_missed_bytes": false,
	} {
		if nicKeep(name) != want {
			t.Errorf("nicKeep(%q) = %v", name, !want)
		}
	}
}
