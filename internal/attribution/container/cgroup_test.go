package container

import (
	"strings"
	"testing"
)

var id = strings.Repeat("0123456789abcdef", 4)

func TestFromPath(t *testing.T) {
	uid := "5f2d3c1a-1111-2222-3333-444455556666"
	uidU := strings.ReplaceAll(uid, "-", "_")
	for _, tc := range []struct {
		path string
		want Ref
	}{
		{"/docker/" + id, Ref{Runtime: Docker, ID: id}},
		{"/system.slice/docker-" + id + ".scope", Ref{Runtime: Docker, ID: id}},
		{"/kubepods/burstable/pod" + uid + "/" + id, Ref{ID: id, PodUID: uid}},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + id + ".scope", Ref{Runtime: Containerd, ID: id, PodUID: uid}},
		{"/kubepods.slice/kubepods-pod" + uidU + ".slice/crio-" + id + ".scope", Ref{Runtime: CRIO, ID: id, PodUID: uid}},
		{"/kubepods.slice/kubepods-pod" + uidU + ".slice/crio-conmon-" + id + ".scope", Ref{}},
		{"/machine.slice/libpod-" + id + ".scope", Ref{Runtime: Podman, ID: id}},
		{"/machine.slice/libpod-" + id + ".scope/container", Ref{Runtime: Podman, ID: id}},
		{"/libpod_parent/libpod-" + id, Ref{Runtime: Podman, ID: id}},
		{"/machine.slice/libpod-conmon-" + id + ".scope", Ref{}},
		{"/machine.slice/machine-web\\x2d1.scope", Ref{Runtime: Nspawn, ID: "web-1"}},
		{"/lxc/db", Ref{Runtime: LXC, ID: "db"}},
		{"/lxc.payload.db/init.scope", Ref{Runtime: LXC, ID: "db"}},
		{"/", Ref{}},
		{"/user.slice/user-0.slice/session-1.scope", Ref{}},
		{"/system.slice/docker.service", Ref{}},
		{"/docker/" + id[:63], Ref{}},
		{"/docker/" + strings.ToUpper(id), Ref{}},
		{"/system.slice/containerd.service", Ref{}},
	} {
		if got := FromPath(tc.path); got != tc.want {
			t.Errorf("FromPath(%q) = %+v, want %+v", tc.path, got, tc.want)
		}
	}
}

func TestFromCgroupFileHybrid(t *testing.T) {
	// A hybrid host: the runtime placed the container only in v1
	// controllers; the v2 line is the root.
	data := "12:pids:/docker/" + id + "\n11:memory:/docker/" + id + "\n1:name=systemd:/docker/" + id + "\n0::/\n"
	if got := FromCgroupFile([]byte(data)); got != (Ref{Runtime: Docker, ID: id}) {
		t.Fatalf("got %+v", got)
	}
	if got := FromCgroupFile([]byte("0::/user.slice\n")); !got.IsZero() {
		t.Fatalf("host process named a container: %+v", got)
	}
}

func FuzzFromCgroupFile(f *testing.F) {
	f.Add([]byte("0::/docker/" + id + "\n"))
	f.Add([]byte("1:name=systemd:/machine.slice/machine-a\\x2.scope\n"))
	f.Add([]byte("::\n:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := FromCgroupFile(b)
		if r.ID != "" && !strings.Contains(string(b), r.ID) && r.Runtime != Nspawn {
			t.Fatalf("id %q not in input", r.ID)
		}
	})
}
