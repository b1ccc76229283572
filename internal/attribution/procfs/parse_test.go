package procfs

import (
	"maps"
	"strings"
	"testing"
	"time"
)

// statLine is a /proc/<pid>/stat line as kernel 6.18 prints it.
func statLine(pid int, comm string, ppid int, flags uint64, start uint64) string {
	return strings.Join([]string{
		itoa(pid), "(" + comm + ")", "S", itoa(ppid), "4242 4200 0 -1", utoa(flags),
		"1 0 0 0 0 0 0 0 20 0 3 0", utoa(start),
		"3133440 375 18446744073709551615 1 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 1 1 1 1 1 1 1 0\n",
	}, " ")
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr string
	}{
		{"plain", statLine(7, "cat", 1, 4194304, 213065),
			procStat{PID: 7, Comm: "cat", State: 'S', PPID: 1, Flags: 4194304, StartTicks: 213065}, ""},
		{"parens and spaces", statLine(4242, "my (weird) prog", 4200, 0, 9),
			procStat{PID: 4242, Comm: "my (weird) prog", State: 'S', PPID: 4200, StartTicks: 9}, ""},
		{"comm looks like fields", statLine(3, ") R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 (", 2, 0, 5),
			procStat{PID: 3, Comm: ") R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 (", State: 'S', PPID: 2, StartTicks: 5}, ""},
		{"newline in comm", statLine(3, "a\nb", 2, 0, 5),
			procStat{PID: 3, Comm: "a\nb", State: 'S', PPID: 2, StartTicks: 5}, ""},
		{"empty comm", statLine(3, "", 2, 0, 5),
			procStat{PID: 3, State: 'S', PPID: 2, StartTicks: 5}, ""},
		{"kernel thread", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 25 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
			procStat{PID: 2, Comm: "kthreadd", State: 'S', PPID: 0, Flags: 2129984, StartTicks: 25}, ""},
		{"empty", "", procStat{}, "no (comm) field"},
		{"no close paren", "1 (abc S 0", procStat{}, "no (comm) field"},
		{"close before open", "1 )x( S", procStat{}, "no (comm) field"},
		{"truncated", "4244 (trunc) S 1 4244\n", procStat{}, "fields after comm"},
		{"bad pid", strings.Replace(statLine(7, "x", 1, 0, 1), "7", "-7", 1), procStat{}, "bad pid"},
		{"no pid", "(x) S 1", procStat{}, "bad pid"},
		{"bad state", strings.Replace(statLine(7, "x", 1, 0, 1), ") S ", ") SS ", 1), procStat{}, "bad state"},
		{"bad ppid", statLine(7, "x", -1, 0, 1), procStat{}, "bad ppid"},
		{"bad start", strings.Replace(statLine(7, "x", 1, 0, 77), " 77 ", " 7x7 ", 1), procStat{}, "bad starttime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseStat(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseStat(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("parseStat(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseStatusUID(t *testing.T) {
	tests := []struct {
		in      string
		want    uint32
		wantErr string
	}{
		{"Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n", 1000, ""},
		{"Uid:\t4294967294\t0\t0\t0", 4294967294, ""},
		{"Name:\tUid:\t5\nUid:\t7\t7\t7\t7\n", 7, ""}, // a comm "Uid:" is escaped only in name
		{"", 0, "no Uid line"},
		{"Name:\tx\n", 0, "no Uid line"},
		{"Uid:\n", 0, "empty Uid line"},
		{"Uid:\t-1\t0\n", 0, "bad uid"},
		{"Uid:\t4294967296\n", 0, "bad uid"},
	}
	for _, tt := range tests {
		got, err := parseStatusUID([]byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseStatusUID(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseStatusUID(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

const dockerID = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100"

func TestParseCgroup(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		v2      string
		v1      map[string]string
		wantErr string
	}{
		{"hybrid host", "9:name=systemd:/\n4:memory:/process_api/5c86\n2:cpu,cpuacct:/\n0::/\n",
			"/", map[string]string{"name=systemd": "/", "memory": "/process_api/5c86", "cpu": "/", "cpuacct": "/"}, ""},
		{"docker", "11:memory:/docker/" + dockerID + "\n0::/docker/" + dockerID + "\n",
			"/docker/" + dockerID, map[string]string{"memory": "/docker/" + dockerID}, ""},
		{"pure v2", "0::/system.slice/ssh.service\n", "/system.slice/ssh.service", nil, ""},
		{"no trailing newline", "0::/a", "/a", nil, ""},
		{"colon in path", "0::/a:b:c\n", "/a:b:c", nil, ""},
		{"deleted v2", "0::/gone (deleted)\n", "/gone (deleted)", nil, ""},
		{"newline in name", "4:memory:/x\ny\n0::/a\nb\n", "/a\nb", map[string]string{"memory": "/x\ny"}, ""},
		{"empty", "", "", nil, ""},
		{"garbage", "hello\n0::/\n", "", nil, "bad line"},
		{"bad id", "x:memory:/\n", "", nil, "bad line"},
		{"one colon", "0:/\n", "", nil, "bad line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v2, v1, err := parseCgroup([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseCgroup(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseCgroup(%q): %v", tt.in, err)
			}
			if v2 != tt.v2 || !maps.Equal(v1, tt.v1) {
				t.Errorf("parseCgroup(%q) = %q, %v; want %q, %v", tt.in, v2, v1, tt.v2, tt.v1)
			}
		})
	}
}

func TestParseCmdline(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "",
		"sleep\x0030\x00":         "sleep 30",
		"sleep\x0030":             "sleep 30",
		"a\x00\x00b\x00":          "a  b",
		"nginx: worker process":   "nginx: worker process", // setproctitle: one arg, spaces
		"/bin/x\x00arg one\x00":   "/bin/x arg one",
		"\x00\x00\x00":            "",
		" lead\x00trail \x00\x00": "lead trail",
	} {
		if got := parseCmdline([]byte(in)); got != want {
			t.Errorf("parseCmdline(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseBootTime(t *testing.T) {
	got, err := parseBootTime([]byte("cpu 1 2 3\nintr 5 6\nbtime 1795429442\nprocesses 9\n"))
	if err != nil || !got.Equal(time.Unix(1795429442, 0)) {
		t.Errorf("parseBootTime = %v, %v; want %v", got, err, time.Unix(1795429442, 0))
	}
	for _, in := range []string{"", "cpu 1\n", "btime\n", "btime x\n", "btime -5\n", "xbtime 5\n"} {
		if _, err := parseBootTime([]byte(in)); err == nil {
			t.Errorf("parseBootTime(%q) succeeded, want an error", in)
		}
	}
}

func TestStartTime(t *testing.T) {
	boot := time.Unix(1700000000, 0)
	if got, want := startTime(boot, 123456), boot.Add(1234*time.Second+560*time.Millisecond); !got.Equal(want) {
		t.Errorf("startTime(boot, 123456) = %v, want %v", got, want)
	}
	// task_struct->start_boottime of 1234.5678 s is 123456 ticks.
	if got := StartTicksFromBoottime(1234_567_800_000); got != 123456 {
		t.Errorf("StartTicksFromBoottime = %d, want 123456", got)
	}
	if got := BoottimeFromStartTicks(123456); got != 1234_560_000_000 || StartTicksFromBoottime(got) != 123456 {
		t.Errorf("BoottimeFromStartTicks = %d, want 1234560000000 (and back)", got)
	}
}

func TestParseSocketLink(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"socket:[12345]", 12345, true},
		{"socket:[0]", 0, true},
		{"socket:[18446744073709551615]", 18446744073709551615, true},
		{"socket:[18446744073709551616]", 0, false},
		{"socket:[]", 0, false},
		{"socket:[12a]", 0, false},
		{"socket:[12", 0, false},
		{"pipe:[12345]", 0, false},
		{"/tmp/socket:[1]", 0, false},
		{"anon_inode:[eventpoll]", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSocketLink([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseSocketLink(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func BenchmarkParseStat(b *testing.B) {
	line := []byte(statLine(4242, "my (weird) prog", 4200, 4194560, 123456))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseStat(line); err != nil {
			b.Fatal(err)
		}
	}
}
