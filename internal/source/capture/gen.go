package capture

// Regenerate with `go generate ./internal/source/capture/` (or ./... from the repo root); see bpf/README.md.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -Wpadded" -target amd64 -type cap_config -type owner -type cap_record -type conn_key -type cap_direction -type cap_stat capture ../../../bpf/capture.c
