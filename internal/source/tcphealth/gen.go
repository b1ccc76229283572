package tcphealth

// Regenerate with `go generate ./internal/source/tcphealth/` (or ./... from the repo root); see bpf/README.md.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -Wpadded" -target amd64 -type health_record -type health -type drop_key -type drop_count -type health_stat -type health_flag health ../../../bpf/health.c
