package history

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const secondsEnv = "NETMETER_HISTORY_TEST_SECONDS"

// readQueries runs every kind of read once and returns the first error.
func readQueries(s *Store, i int) error {
	set := []Entity{eth0, {KindProcess, "p" + strconv.Itoa(i%20)}}
	if _, err := s.Query(Query{Entities: set, Resolution: Resolutions[i%len(Resolutions)]}); err != nil {
		return err
	}
	if _, err := s.Top(set, 10); err != nil {
		return err
	}
	if _, err := s.Percentile(set, time.Now().Add(-time.Hour), time.Time{}, 95); err != nil {
		return err
	}
	if _, err := s.Entities(""); err != nil {
		return err
	}
	if _, err := s.State("last"); err != nil {
		return err
	}
	_, err := s.Gaps(time.Time{}, time.Time{})
	return err
}

// readerProcess is the other-process reader of
// TestReadersNeverSeeDatabaseLocked: `netmeter report` while `serve` writes.
// It prints "reads N errors M" and the first errors.
func readerProcess() {
	secs, _ := strconv.Atoi(os.Getenv(secondsEnv))
	s, err := Open(Options{Path: os.Getenv(dbEnv)})
	if err != nil {
		fmt.Println("reads 0 errors 1")
		fmt.Println(err)
		os.Exit(0)
	}
	var n, bad int
	var first []string
	for end := time.Now().Add(time.Duration(secs) * time.Second); time.Now().Before(end); n++ {
		if err := readQueries(s, n); err != nil {
			bad++
			if len(first) < 5 {
				first = append(first, err.Error())
			}
		}
	}
	fmt.Printf("reads %d errors %d\n", n, bad)
	for _, e := range first {
		fmt.Println(e)
	}
	s.Close()
	os.Exit(0)
}

// One writer Records (with state, gaps and prunes) for a few seconds while
// readers in this process and in another one query in loops: no error at
// all, in particular no "database is locked".
func TestReadersNeverSeeDatabaseLocked(t *testing.T) {
	const secs = 3
	path := filepath.Join(t.TempDir(), "history.db")
	s := openTest(t, Options{Path: path})
	mustRecord(t, s, time.Now(), map[Entity]Counters{eth0: {RxBytes: 1}})

	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), roleEnv+"="+roleReader, dbEnv+"="+path, secondsEnv+"="+strconv.Itoa(secs))
	var childOut bytes.Buffer
	child.Stdout, child.Stderr = &childOut, &childOut
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}

	stop := time.Now().Add(secs * time.Second)
	var writes, reads atomic.Int64
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 10 {
			errs = append(errs, err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; time.Now().Before(stop); i++ {
			d := map[Entity]Counters{eth0: {RxBytes: 1500, TxBytes: 100, RxPackets: 1, TxPackets: 1}}
			for j := range 20 {
				d[Entity{KindProcess, "p" + strconv.Itoa(j)}] = Counters{RxBytes: uint64(i + j)}
			}
			if err := s.RecordWithState(time.Now(), d, map[string][]byte{"last": []byte(strconv.Itoa(i))}); err != nil {
				fail(fmt.Errorf("record %d: %w", i, err))
			}
			writes.Add(1)
			if i%50 == 0 {
				if err := s.Prune(time.Now()); err != nil {
					fail(err)
				}
				if err := s.AddGap(Gap{time.Now().Add(-time.Second), time.Now(), "test"}); err != nil {
					fail(err)
				}
			}
		}
	})
	for range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				if err := readQueries(s, i); err != nil {
					fail(fmt.Errorf("read: %w", err))
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	if err := child.Wait(); err != nil {
		t.Errorf("reader process: %v\n%s", err, childOut.String())
	}
	for _, err := range errs {
		t.Error(err)
	}
	var childReads, childErrs int
	if _, err := fmt.Sscanf(childOut.String(), "reads %d errors %d", &childReads, &childErrs); err != nil || childErrs != 0 || childReads < 10 {
		t.Errorf("reader process: %s", strings.TrimSpace(childOut.String()))
	}
	t.Logf("%d Records, %d read rounds here and %d in another process, no error", writes.Load(), reads.Load(), childReads)
	if writes.Load() < 10 || reads.Load() < 10 {
		t.Errorf("too little happened: %d writes, %d reads", writes.Load(), reads.Load())
	}
}
