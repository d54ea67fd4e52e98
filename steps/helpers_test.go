package steps_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"testing"
)

func fsMode(m uint32) fs.FileMode { return fs.FileMode(m) }

func writeLocal(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha256Hex(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
