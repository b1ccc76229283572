package bpfload

import (
	"golang.org/x/sys/unix"
)

// currentState reads the calling process's effective capabilities and
// memlock limit. If capget fails every capability counts as present, so
// the kernel's own answer decides.
func currentState() state {
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	capsKnown := unix.Capget(&hdr, &data[0]) == nil

	var lim unix.Rlimit
	finite := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim) == nil && lim.Cur != unix.RLIM_INFINITY

	return state{
		effective: func(c Capability) bool {
			if !capsKnown {
				return true
			}
			return data[c/32].Effective&(1<<(uint(c)%32)) != 0
		},
		memlockFinite: finite,
	}
}
