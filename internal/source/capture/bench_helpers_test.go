package capture

import (
	"bufio"
	"io"
)

func bufioDiscard() *bufio.Writer { return bufio.NewWriterSize(io.Discard, 256<<10) }
