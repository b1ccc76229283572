package tui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"

	"github.com/netmeter/netmeter/internal/snapshot"
)

// Run shows the live view on the terminal (alternate screen) until the user
// quits, ch is closed, or ctx is cancelled; all three return nil.
//
// The command waiting on ch may stay blocked after Run returns until the
// producer sends or closes ch, so producers should close ch when they stop.
func Run(ctx context.Context, ch <-chan snapshot.Snapshot, opts Options) error {
	return run(ctx, ch, opts)
}

func run(ctx context.Context, ch <-chan snapshot.Snapshot, opts Options, popts ...tea.ProgramOption) error {
	popts = append([]tea.ProgramOption{tea.WithContext(ctx)}, popts...)
	p := tea.NewProgram(New(ch, opts), popts...)
	_, err := p.Run()
	if err != nil && errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil && !errors.Is(err, tea.ErrProgramPanic) {
		return nil // cancelled by the caller: a normal stop
	}
	if err != nil {
		return fmt.Errorf("run tui: %w", err)
	}
	return nil
}
