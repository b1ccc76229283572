package procfs

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statLine(4242, "my (weird) prog", 4200, 4194560, 123456)), "x")
	f.Add([]byte("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 25 0"), ")(")
	f.Add([]byte("4244 (trunc) S 1 4244\n"), "a\nb")
	f.Add([]byte("1 )x("), "")
	f.Fuzz(func(t *testing.T, data []byte, comm string) {
		if s, err := parseStat(data); err == nil {
			if s.PID <= 0 || !bytes.Contains(data, []byte("("+s.Comm+")")) {
				t.Errorf("parseStat(%q) = %+v", data, s)
			}
		}
		// Whatever the process named itself, the fields after it parse.
		if len(comm) > 64 {
			comm = comm[:64]
		}
		s, err := parseStat([]byte(statLine(9, comm, 8, 7, 6)))
		if err != nil || s.Comm != comm || s.PPID != 8 || s.Flags != 7 || s.StartTicks != 6 {
			t.Errorf("comm %q: parseStat = %+v, %v", comm, s, err)
		}
	})
}

func FuzzParseStatusUID(f *testing.F) {
	f.Add([]byte("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n"))
	f.Add([]byte("Uid:\n"))
	f.Add([]byte("Uid:"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := parseStatusUID(data); err == nil && !bytes.Contains(data, []byte("Uid:")) {
			t.Errorf("parseStatusUID(%q) found a uid without a Uid line", data)
		}
	})
}

func FuzzParseCgroup(f *testing.F) {
	f.Add([]byte("12:cpu,cpuacct:/docker/" + dockerID + "\n10:name=systemd:/\n0::/docker/" + dockerID + "\n"))
	f.Add([]byte("0::/a\nb\n"))
	f.Add([]byte("1::\n:\n::\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v2, v1, err := parseCgroup(data)
		if err != nil {
			return
		}
		if v2 != "" && !bytes.Contains(data, []byte(strings.SplitN(v2, "\n", 2)[0])) {
			t.Errorf("parseCgroup(%q) v2 = %q, not in the input", data, v2)
		}
		for k := range v1 {
			if !bytes.Contains(data, []byte(k)) {
				t.Errorf("parseCgroup(%q) invented controller %q", data, k)
			}
		}
	})
}

func FuzzParseBootTime(f *testing.F) {
	f.Add([]byte("cpu 1\nbtime 1700000000\n"))
	f.Add([]byte("btime 99999999999999999999"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if bt, err := parseBootTime(data); err == nil && bt.Unix() < 0 {
			t.Errorf("parseBootTime(%q) = %v", data, bt)
		}
	})
}

func FuzzParseSocketLink(f *testing.F) {
	f.Add([]byte("socket:[12345]"))
	f.Add([]byte("socket:[]"))
	f.Add([]byte("pipe:[1]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ino, ok := parseSocketLink(data)
		if ok && string(data) != "socket:["+utoa(ino)+"]" && !bytes.HasPrefix(data, []byte("socket:[0")) {
			t.Errorf("parseSocketLink(%q) = %d", data, ino)
		}
	})
}

func FuzzParseNetSockets(f *testing.F) {
	for _, name := range []string{"tcp", "tcp6", "udp"} {
		if b, err := os.ReadFile("testdata/net/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("h\n 0: 0100007F:0 0:0 0 0 0 0 0 0 0\n"))
	f.Add([]byte("h\n0: :"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseNetSockets(data, 6, nil)
		for _, s := range got {
			if !s.Local.IsValid() || !s.Remote.IsValid() || s.Local.Addr().Is4() != s.Remote.Addr().Is4() {
				t.Errorf("ParseNetSockets(%q) returned %+v", data, s)
			}
		}
		// Every line that parsed parses again the same way on its own.
		if err == nil && len(got) > 0 && bytes.Count(data, []byte("\n")) == 0 {
			t.Errorf("sockets from a header-only input %q", data)
		}
	})
}
