// Package nsutil runs code inside another network namespace.
//
// Sockets (netlink included) belong to the namespace of the thread that
// creates them, so a reader of another namespace opens its sockets inside Do
// and uses them afterwards from any goroutine.
package nsutil

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Do runs fn on a locked OS thread that has joined the network namespace at
// path (e.g. /run/netns/NAME or /proc/PID/ns/net). An empty path runs fn in
// the current namespace. If the thread cannot be returned to its original
// namespace it stays locked, so the Go runtime discards it.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer unix.Close(target)

	runtime.LockOSThread()
	orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current netns: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", path, err)
	}
	fnErr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with this goroutine.
		return fmt.Errorf("return from netns %s: %w", path, err)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Inode returns the inode number that identifies the network namespace at
// path, or of the caller's namespace when path is empty.
func Inode(path string) (uint64, error) {
	if path == "" {
		path = "/proc/self/ns/net"
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, fmt.Errorf("stat netns: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("stat netns %s: no inode", path)
	}
	return st.Ino, nil
}

// NamedPath returns the bind-mount path of a named namespace (as created by
// `ip netns add`), or "" for the empty name.
func NamedPath(name string) string {
	if name == "" {
		return ""
	}
	return "/run/netns/" + name
}
