package history

func crashWriter()       {}
func readerProcess()     {}
func cleanupBenchStore() {}
