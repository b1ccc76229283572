package tui

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// headless runs the program without a terminal.
var headless = []tea.ProgramOption{
	tea.WithInput(strings.NewReader("")),
	tea.WithOutput(io.Discard),
	tea.WithWindowSize(80, 24),
	tea.WithoutSignals(),
}

func runAsync(ctx context.Context, ch <-chan snapshot.Snapshot) <-chan error {
	done := make(chan error, 1)
	go func() { done <- run(ctx, ch, Options{}, headless...) }()
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("program did not stop")
		return nil
	}
}

func TestRunStopsWhenChannelCloses(t *testing.T) {
	ch := make(chan snapshot.Snapshot)
	done := runAsync(t.Context(), ch)
	for _, s := range series(3) {
		ch <- s // blocks until the model has re-armed the wait
	}
	close(ch)
	if err := wait(t, done); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ch := make(chan snapshot.Snapshot)
	defer close(ch) // releases the pending wait command
	done := runAsync(ctx, ch)
	ch <- series(1)[0]
	cancel()
	if err := wait(t, done); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}
