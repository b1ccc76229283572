package pktcount

// Regenerate with `go generate ./internal/source/pktcount/` (or ./... from the repo root); see bpf/README.md.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -Wpadded" -target amd64 -type counters -type direction pktcount ../../../bpf/pktcount.c
