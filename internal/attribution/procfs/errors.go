package procfs

import (
	"errors"
	"os"
	"syscall"
)

// goneError reports a process that exited (or whose pid was reused) while it
// was being read. It matches os.ErrNotExist for callers and keeps the
// kernel's errno (ENOENT or ESRCH) for logs.
type goneError struct {
	op   string // "read", "readlink", "open", ...
	path string
	err  error
}

func (e *goneError) Error() string { return e.op + " " + e.path + ": " + e.err.Error() }
func (e *goneError) Unwrap() error { return e.err }

// Is makes errors.Is(err, os.ErrNotExist) true even when the kernel said
// ESRCH, which does not match os.ErrNotExist by itself.
func (e *goneError) Is(target error) bool { return target == os.ErrNotExist }

// isGone reports whether err means the process is no longer there: /proc
// answers ENOENT for a pid directory that is gone and ESRCH when the task
// behind an open /proc/<pid> descriptor has exited.
func isGone(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH)
}

// isDenied reports a permission error: without CAP_SYS_PTRACE another
// user's exe, fd/ and ns/ are not readable.
func isDenied(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}

// wrap gives err the op and path context, as a goneError when the process
// has exited.
func wrap(op, path string, err error) error {
	if pe, ok := err.(*os.PathError); ok {
		err = pe.Err
	}
	if isGone(err) {
		return &goneError{op: op, path: path, err: err}
	}
	return &os.PathError{Op: op, Path: path, Err: err}
}
