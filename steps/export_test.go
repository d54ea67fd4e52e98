package steps

// ForgetProvedPlainTars makes the next PlainTar prove its cache entry again, as a new
// process would: a test's way to corrupt an entry in place, as a disk or a person can,
// without changing what identifies the file.
func ForgetProvedPlainTars() {
	plainTars.Lock()
	defer plainTars.Unlock()
	clear(plainTars.proved)
	clear(plainTars.sums)
	clear(plainTars.entries)
	clear(plainTars.loaded)
}

// PlainTarHashes is how many files the plain-tar cache has read whole to hash them
// since the process started.
func PlainTarHashes() int {
	plainTars.Lock()
	defer plainTars.Unlock()
	return plainTars.hashes
}
