package engine

// Regenerate with `go generate ./internal/source/engine/` (or ./... from the repo root); see bpf/README.md.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -Wpadded" -target amd64 -type sock_record -type tuple -type owner -type counts -type bucket_key -type traffic_bucket -type tw_key -type record_kind -type engine_stat -type tcp_role -type http_method engine ../../../bpf/engine.c
