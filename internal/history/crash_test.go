package history

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

const startEnv = "NETMETER_HISTORY_TEST_START"

var crashBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// crashDeltas is Record i of the crash writer: eth0 gets 1 byte received and
// i bytes sent, and 10 of 100 processes (created over time) 1 byte each.
func crashDeltas(i int) map[Entity]Counters {
	d := map[Entity]Counters{eth0: {RxBytes: 1, TxBytes: uint64(i), RxPackets: 1}}
	for j := range crashProcs {
		d[Entity{KindProcess, fmt.Sprintf("p%03d", (i+j*7)%100)}] = Counters{RxBytes: 1}
	}
	return d
}

const crashProcs = 10

// crashWriter Records from $NETMETER_HISTORY_TEST_START on, forever, and
// prints each index once its Record has returned (stdout is unbuffered: a
// printed index is committed).
func crashWriter() {
	start, _ := strconv.Atoi(os.Getenv(startEnv))
	s, err := Open(Options{Path: os.Getenv(dbEnv), Location: time.UTC, Retention: keepAll})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := start; ; i++ {
		err := s.RecordWithState(crashBase.Add(time.Duration(i)*7*time.Second), crashDeltas(i),
			map[string][]byte{"last": []byte(strconv.Itoa(i))})
		if err != nil {
			fmt.Println("record:", err)
			os.Exit(1)
		}
		fmt.Println(i)
	}
}

// A writer process killed with SIGKILL in the middle of its Records, three
// times: the file opens, passes integrity_check, and holds every Record that
// returned before the kill — at most the one in flight is missing (or
// present, if it committed before it could say so).
func TestCrashSafetyUnderSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	rng := rand.New(rand.NewPCG(7, 7))
	next := 0
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), roleEnv+"="+roleCrashWriter, dbEnv+"="+path, startEnv+"="+strconv.Itoa(next))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		reported, lines := next-1, 0
		killAfter := 40 + rng.IntN(80)
		killed := false
		for sc.Scan() {
			i, err := strconv.Atoi(sc.Text())
			if err != nil {
				t.Fatalf("writer: %s", sc.Text())
			}
			if i != reported+1 {
				t.Fatalf("writer reported %d after %d", i, reported)
			}
			reported = i
			if lines++; lines == killAfter && !killed {
				// Somewhere inside the next Record (or the one after).
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("the writer stopped by itself after %d Records: %v", lines, err)
		}

		s, err := Open(Options{Path: path, Location: time.UTC, Retention: keepAll})
		if err != nil {
			t.Fatalf("round %d: reopening after SIGKILL: %v", round, err)
		}
		if err := s.Check(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		b, err := s.State("last")
		if err != nil {
			t.Fatal(err)
		}
		last, _ := strconv.Atoi(string(b))
		if last != reported && last != reported+1 {
			t.Fatalf("round %d: last committed Record %d, the writer reported %d", round, last, reported)
		}
		// Records 0..last, each once: rx counts them, tx sums their indices.
		n := uint64(last + 1)
		for _, res := range Resolutions {
			got := sumRows(mustQuery(t, s, Query{Entities: []Entity{eth0}, Resolution: res}))
			if got.RxBytes != n || got.RxPackets != n || got.TxBytes != n*(n-1)/2 {
				t.Errorf("round %d, %s: %+v, want %d Records (tx %d)", round, res, got, n, n*(n-1)/2)
			}
		}
		procs, err := s.Entities(KindProcess)
		if err != nil {
			t.Fatal(err)
		}
		var prx uint64
		for _, p := range procs {
			prx += sumRows(mustQuery(t, s, Query{Entities: []Entity{p}, Resolution: ResYear})).RxBytes
		}
		if prx != crashProcs*n {
			t.Errorf("round %d: processes hold %d bytes, want %d", round, prx, crashProcs*n)
		}
		t.Logf("round %d: SIGKILL after %d Records reported, %d committed in all (the one in flight too: %v)", round, lines, n, last == reported+1)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		next = last + 1
	}
}
