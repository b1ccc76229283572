package selflimit

import (
	"os"
	"syscall"
)

// cgroupFS is the kernel boundary: /proc and the cgroup file systems, by
// absolute path. The tests replace it with a fake that enforces the cgroup
// v2 rules, since a host has either v1 or v2 controllers, never both.
type cgroupFS interface {
	ReadFile(name string) ([]byte, error)
	// WriteFile writes data in one write(2) to an existing file (cgroup
	// interface files take one value per write and cannot be created).
	WriteFile(name, data string) error
	Mkdir(name string) error
	Rmdir(name string) error
}

// osFS is the real cgroupFS.
type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (osFS) WriteFile(name, data string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Mkdir(name string) error { return os.Mkdir(name, 0o755) }

func (osFS) Rmdir(name string) error {
	if err := syscall.Rmdir(name); err != nil {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}
