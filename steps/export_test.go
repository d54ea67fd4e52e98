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

// ParsePrefetch is the parse of a prefetch's answer: each content read's content by
// path, or the error.
func ParsePrefetch(out string, paths, contents []string) (map[string][]byte, error) {
	states, err := parsePrefetch(out, paths, contents)
	if err != nil {
		return nil, err
	}
	got := map[string][]byte{}
	for _, p := range contents {
		got[p] = states[p].Content
	}
	return got, nil
}

// ErrChangedWhileRead is a prefetch's error for a file that changed as it was read.
var ErrChangedWhileRead = errChangedWhileRead
