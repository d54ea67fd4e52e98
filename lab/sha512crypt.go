package lab

import (
	"crypto/sha512"
	"fmt"
	"strings"
)

// The SHA-512 crypt scheme ($6$) as glibc's crypt(3) and `openssl passwd -6` compute it
// (Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"). It is written here because
// the lab has no mkpasswd and a password must never be passed on a command line.

const (
	sha512CryptRounds = 5000 // the default, written without a rounds= field
	cryptAlphabet     = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// SHA512Crypt returns the "$6$salt$hash" string for password. salt is cut to 16
// characters and must only hold characters of the crypt alphabet [./0-9A-Za-z].
func SHA512Crypt(password, salt string) (string, error) {
	if len(salt) > 16 {
		salt = salt[:16]
	}
	for _, r := range salt {
		if !strings.ContainsRune(cryptAlphabet, r) {
			return "", fmt.Errorf("sha512-crypt: salt has %q, outside [./0-9A-Za-z]", r)
		}
	}
	pw, s := []byte(password), []byte(salt)

	b := sha512.New()
	b.Write(pw)
	b.Write(s)
	b.Write(pw)
	digestB := b.Sum(nil)

	a := sha512.New()
	a.Write(pw)
	a.Write(s)
	a.Write(repeatTo(digestB, len(pw)))
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			a.Write(digestB)
		} else {
			a.Write(pw)
		}
	}
	digestA := a.Sum(nil)

	dp := sha512.New()
	for range len(pw) {
		dp.Write(pw)
	}
	p := repeatTo(dp.Sum(nil), len(pw))

	ds := sha512.New()
	for range 16 + int(digestA[0]) {
		ds.Write(s)
	}
	sBytes := repeatTo(ds.Sum(nil), len(s))

	c := digestA
	for i := range sha512CryptRounds {
		h := sha512.New()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sBytes)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(nil)
	}

	var out strings.Builder
	out.WriteString("$6$")
	out.WriteString(salt)
	out.WriteByte('$')
	// The digest's bytes are written in this fixed shuffled order, three at a time.
	order := [][3]int{
		{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4}, {47, 5, 26}, {6, 27, 48},
		{28, 49, 7}, {50, 8, 29}, {9, 30, 51}, {31, 52, 10}, {53, 11, 32}, {12, 33, 54},
		{34, 55, 13}, {56, 14, 35}, {15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60},
		{40, 61, 19}, {62, 20, 41},
	}
	for _, o := range order {
		cryptBase64(&out, uint(c[o[0]])<<16|uint(c[o[1]])<<8|uint(c[o[2]]), 4)
	}
	cryptBase64(&out, uint(c[63]), 2)
	return out.String(), nil
}

// repeatTo returns digest repeated and cut to n bytes.
func repeatTo(digest []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, digest[:min(len(digest), n-len(out))]...)
	}
	return out
}

// cryptBase64 writes the low 6*n bits of v, least significant first.
func cryptBase64(b *strings.Builder, v uint, n int) {
	for range n {
		b.WriteByte(cryptAlphabet[v&0x3f])
		v >>= 6
	}
}
