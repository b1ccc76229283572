package procfs

import (
	"net/netip"
	"os"
	"strings"
	"testing"
)

func TestParseNetSockets(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		file  string
		proto uint8
		want  []NetSocket
	}{
		{"tcp", 6, []NetSocket{
			{6, ap("0.0.0.0:2024"), ap("0.0.0.0:0"), 10, 0, 1061},
			{6, ap("127.0.0.1:40000"), ap("127.0.0.1:8080"), 1, 1000, 48213},
			{6, ap("192.0.2.2:36736"), ap("203.0.113.80:443"), 6, 0, 0},
		}},
		{"tcp6", 6, []NetSocket{
			{6, ap("[::]:8080"), ap("[::]:0"), 10, 0, 5501},
			{6, ap("127.0.0.1:8080"), ap("127.0.0.1:40001"), 1, 0, 5502}, // a v4 peer of a dual-stack socket
			{6, ap("[::1]:37310"), ap("[::1]:45369"), 1, 1000, 5503},
		}},
		{"udp", 17, []NetSocket{
			{17, ap("0.0.0.0:68"), ap("0.0.0.0:0"), 7, 0, 17204},
			{17, ap("127.0.0.1:57505"), ap("127.0.0.1:53"), 1, 101, 90001},
		}},
	}
	for _, tt := range tests {
		b, err := os.ReadFile("testdata/net/" + tt.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseNetSockets(b, tt.proto, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%s: got %d sockets %+v, want %d", tt.file, len(got), got, len(tt.want))
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s line %d: got %+v, want %+v", tt.file, i+2, got[i], tt.want[i])
			}
		}
	}
}

func TestParseNetSocketsErrors(t *testing.T) {
	const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	good := "   0: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 48213 1\n"
	for name, line := range map[string]string{
		"short":           "   0: 0100007F:9C40 0100007F:1F90 01\n",
		"bad hex":         strings.Replace(good, "0100007F:9C40", "0100007G:9C40", 1),
		"mixed families":  strings.Replace(good, "0100007F:1F90", "00000000000000000000000001000000:1F90", 1),
		"port too long":   strings.Replace(good, "0100007F:9C40", "0100007F:9C401", 1),
		"inode not digit": strings.Replace(good, "48213", "48x13", 1),
		"no sl colon":     strings.Replace(good, "0:", "0 ", 1),
	} {
		got, err := ParseNetSockets([]byte(header+good+line+good), 6, nil)
		if err == nil || !strings.Contains(err.Error(), "line 3") || len(got) != 1 {
			t.Errorf("%s: got %v, %v; want the first socket and an error naming line 3", name, got, err)
		}
	}
	if got, err := ParseNetSockets([]byte(header), 6, nil); err != nil || len(got) != 0 {
		t.Errorf("header only: %v, %v", got, err)
	}
}

func BenchmarkParseNetSockets(b *testing.B) {
	data, err := os.ReadFile("testdata/net/tcp")
	if err != nil {
		b.Fatal(err)
	}
	var dst []NetSocket
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = ParseNetSockets(data, 6, dst[:0])
	}
}
