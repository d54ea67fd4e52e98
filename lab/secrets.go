package lab

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// secretsDir is where the lab's secrets live, relative to StateDir; the inventories
// name them with from_file, so no value is ever written into an inventory.
const secretsDir = "secrets"

// Secret file names under StateDir/secrets.
const (
	secretTomcatPassword       = "tomcat_password" // kept so the operator can log in as the account
	secretTomcatPasswordHash   = "tomcat_password_hash"
	secretAJP                  = "ajp_secret"
	secretHAProxyStatsPassword = "haproxy_stats_password"
	secretDBPassword           = "db_password"
)

// alphanumeric secrets are safe in every file they land in (server.xml attributes,
// workers.properties, haproxy.cfg, JDBC properties) without any escaping.
const secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// ensureSecrets makes every secret that does not exist yet, and leaves existing ones
// alone, so the cluster's passwords stay the same across Up runs.
func ensureSecrets(stateDir string) error {
	dir := filepath.Join(stateDir, secretsDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("lab secrets: %w", err)
	}
	for _, name := range []string{secretTomcatPassword, secretAJP, secretHAProxyStatsPassword, secretDBPassword} {
		if err := ensureSecretFile(filepath.Join(dir, name), func() ([]byte, error) {
			return randomString(secretAlphabet, 24)
		}); err != nil {
			return err
		}
	}
	// The hash is made from the kept password, so the two always agree.
	return ensureSecretFile(filepath.Join(dir, secretTomcatPasswordHash), func() ([]byte, error) {
		pw, err := os.ReadFile(filepath.Join(dir, secretTomcatPassword))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", secretTomcatPassword, err)
		}
		salt, err := randomString(cryptAlphabet, 16)
		if err != nil {
			return nil, err
		}
		h, err := SHA512Crypt(string(bytes.TrimSpace(pw)), string(salt))
		return []byte(h), err
	})
}

// ensureSecretFile writes make's value to path with mode 0600 when path does not exist.
func ensureSecretFile(path string, make func() ([]byte, error)) error {
	if _, err := os.Stat(path); err == nil {
		return os.Chmod(path, 0o600)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("lab secret %s: %w", filepath.Base(path), err)
	}
	value, err := make()
	if err != nil {
		return fmt.Errorf("lab secret %s: %w", filepath.Base(path), err)
	}
	if err := writeFileAtomic(path, value, 0o600); err != nil {
		return fmt.Errorf("lab secret %s: %w", filepath.Base(path), err)
	}
	return nil
}

// randomString returns n characters of alphabet chosen with crypto/rand, unbiased.
func randomString(alphabet string, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 64)
	limit := 256 - 256%len(alphabet)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return nil, fmt.Errorf("random: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return out, nil
}

// writeFileAtomic writes data to a temporary file beside path and renames it over path,
// so a reader never sees half a file.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeFileIfChanged writes data to path only when the file's content differs, so an
// unchanged file keeps its modification time. It reports whether it wrote.
func writeFileIfChanged(path string, data []byte, mode fs.FileMode) (bool, error) {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, data) {
		return false, os.Chmod(path, mode)
	}
	if err := writeFileAtomic(path, data, mode); err != nil {
		return false, err
	}
	return true, nil
}
