// Package postgres holds the steps that manage what lives inside PostgreSQL: login roles
// and databases. They talk to the server with psql as the postgres superuser over the
// host's connection, SQL on standard input, so no password is ever on a command line.
// Before PostgreSQL is installed (a plan run ahead of the package step) they report
// everything as to be done.
package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

var sqlNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// psql runs SQL from standard input as the postgres superuser; it exits 3 where
// PostgreSQL is not installed yet (a dry run before the package step has run). It
// connects to the port of the server that runs now, found by its socket: after a change
// of the port the server moves only when its restart handler runs, after these steps.
//
// On Debian, psql on the PATH is pg_wrapper, a Perl program that reads every cluster's
// configuration before it starts the real psql: measured in the lab's db container,
// 65-75 ms of CPU per call instead of 15 ms, 0.4-0.5 s instead of 0.04-0.14 s of wall
// time at load average 19, and the two checks were the end of a converged re-check.
// The newest installed version's own psql is what pg_wrapper starts for psql; the
// PATH's psql is for hosts laid out otherwise.
//
// psql becomes the postgres user with setpriv (util-linux), which only changes its
// ids: runuser opens a PAM session for it, measured in the lab's db container at 16-18
// instead of 13-14 ms of CPU and 60-90 instead of 35-60 ms of wall time per call at
// load average 17, twice per converged re-check. Peer authentication asks only for the
// uid. runuser stays for a host without setpriv.
const psql = "p=; b=0; for c in /usr/lib/postgresql/*/bin/psql; do [ -x \"$c\" ] || continue; " +
	"v=${c#/usr/lib/postgresql/}; v=${v%%/*}; v=${v%%.*}; case $v in ''|*[!0-9]*) continue;; esac; " +
	"[ \"$v\" -gt \"$b\" ] && b=$v && p=$c; done; " +
	"[ -n \"$p\" ] || p=$(command -v psql) || exit 3; " +
	"set -- /var/run/postgresql/.s.PGSQL.*; case $1 in *'*') port=5432;; *) port=${1##*.};; esac; " +
	"set -- \"$p\" -X -A -t -q -v ON_ERROR_STOP=1 -p \"$port\" -f -; " +
	"if command -v setpriv >/dev/null 2>&1; then exec setpriv --reuid=postgres --regid=postgres --clear-groups -- \"$@\"; fi; " +
	"exec runuser -u postgres -- \"$@\""

// psqlReads joins the checks' SELECTs into one psql (steps.Joiner): each psql is a
// client and a server backend started, measured in the lab's db container at about 93
// ms of CPU each, and a converged db host's check ran two. The SQL goes in the line
// as a here-document: the reads name no secret.
type psqlReads struct{}

// Join runs queries one after another, each after a row that marks where its answer
// starts.
func (psqlReads) Join(queries []string) (string, func(string) ([]string, error)) {
	b := make([]byte, 12)
	rand.Read(b)
	token := fmt.Sprintf("cauldron-read %x", b)
	var sql strings.Builder
	for i, q := range queries {
		fmt.Fprintf(&sql, "SELECT '%s %d';\n%s", token, i, q)
	}
	line := "{ " + psql + "; } <<'CAULDRON_SQL'\n" + sql.String() + "CAULDRON_SQL"
	return line, func(out string) ([]string, error) {
		answers := make([]string, 0, len(queries))
		for _, l := range strings.SplitAfter(out, "\n") {
			if l == fmt.Sprintf("%s %d\n", token, len(answers)) {
				answers = append(answers, "")
				continue
			}
			if len(answers) == 0 {
				if l == "" {
					continue
				}
				return nil, fmt.Errorf("psql: an answer before the first mark: %q", l)
			}
			answers[len(answers)-1] += l
		}
		if len(answers) != len(queries) {
			return nil, fmt.Errorf("psql: %d of %d answers", len(answers), len(queries))
		}
		return answers, nil
	}
}

// notInstalled tells a check that PostgreSQL is not there yet: everything is to do.
func notInstalled(err error) bool { return transport.ExitStatus(err) == 3 }

// Role is a login role with a password. The password never leaves this machine in
// clear: the check compares the role's stored SCRAM-SHA-256 verifier with one computed
// here, and a change sends a new verifier over psql's standard input.
//
//	postgres.Role{Name: "mago3d", Password: dbPassword}
type Role struct {
	Name     string
	Password string
}

func (r Role) String() string { return "postgresql role " + r.Name }

// Validate rejects a name that is not a plain SQL identifier and an empty password.
func (r Role) Validate() error {
	var errs []error
	if !sqlNameRE.MatchString(r.Name) {
		errs = append(errs, fmt.Errorf("Name: %q is not a plain SQL name (a-z, 0-9, _)", r.Name))
	}
	if r.Password == "" {
		errs = append(errs, errors.New("Password: empty"))
	}
	return errors.Join(errs...)
}

// read is whether the role may log in and its stored verifier; it names no secret
// (the verifier comes back on standard output, as every answer does).
func (r Role) read() string {
	return "SELECT rolcanlogin, coalesce(rolpassword, '') FROM pg_authid WHERE rolname = '" + r.Name + "';\n"
}

// JoinedReads is the check's one read, joined with the host's other PostgreSQL reads.
func (r Role) JoinedReads() []steps.JoinedRead {
	return []steps.JoinedRead{{Joiner: psqlReads{}, Query: r.read()}}
}

// Check compares the role's stored SCRAM verifier with one computed here from the
// password and the stored salt, so the password never leaves this machine.
func (r Role) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	out, err := steps.JoinedOutput(ctx, c, psqlReads{}, r.read())
	if notInstalled(err) {
		out, err = "", nil
	}
	if err != nil {
		return nil, fmt.Errorf("read role %s: %w", r.Name, err)
	}
	out = strings.TrimSpace(out)
	verb := ""
	switch login, stored, _ := strings.Cut(out, "|"); {
	case out == "":
		verb = "CREATE"
	case login != "t" || !scramMatches(stored, r.Password):
		verb = "ALTER"
	default:
		return nil, nil
	}
	summary := map[string]string{"CREATE": "create login role " + r.Name, "ALTER": "set login and password of role " + r.Name}[verb]
	return &steps.Change{Summary: summary, Apply: func(ctx context.Context) error {
		verifier, err := scramVerifier(r.Password)
		if err != nil {
			return err
		}
		sql := fmt.Sprintf("%s ROLE %q LOGIN PASSWORD '%s';\n", verb, r.Name, verifier)
		if _, err := transport.OutputWithInput(ctx, c, psql, strings.NewReader(sql)); err != nil {
			return fmt.Errorf("%s role %s: %w", strings.ToLower(verb), r.Name, err)
		}
		return nil
	}}, nil
}

// Database is a database owned by a role: created when missing, given to Owner when
// another role owns it.
//
//	postgres.Database{Name: "mago3d", Owner: "mago3d"}
type Database struct {
	Name, Owner string
}

func (d Database) String() string { return "postgresql database " + d.Name }

// Validate rejects names that are not plain SQL identifiers.
func (d Database) Validate() error {
	if !sqlNameRE.MatchString(d.Name) || !sqlNameRE.MatchString(d.Owner) {
		return fmt.Errorf("Name %q and Owner %q must be plain SQL names (a-z, 0-9, _)", d.Name, d.Owner)
	}
	return nil
}

// read is the database's owner.
func (d Database) read() string {
	return "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '" + d.Name + "';\n"
}

// JoinedReads is the check's one read, joined with the host's other PostgreSQL reads.
func (d Database) JoinedReads() []steps.JoinedRead {
	return []steps.JoinedRead{{Joiner: psqlReads{}, Query: d.read()}}
}

// Check reads the database's owner.
func (d Database) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	out, err := steps.JoinedOutput(ctx, c, psqlReads{}, d.read())
	if notInstalled(err) {
		out, err = "", nil
	}
	if err != nil {
		return nil, fmt.Errorf("read database %s: %w", d.Name, err)
	}
	var sql, summary string
	switch owner := strings.TrimSpace(out); owner {
	case d.Owner:
		return nil, nil
	case "":
		sql = fmt.Sprintf("CREATE DATABASE %q OWNER %q;\n", d.Name, d.Owner)
		summary = "create database " + d.Name + " owned by " + d.Owner
	default:
		sql = fmt.Sprintf("ALTER DATABASE %q OWNER TO %q;\n", d.Name, d.Owner)
		summary = "change the owner of database " + d.Name + " from " + owner + " to " + d.Owner
	}
	return &steps.Change{Summary: summary, Apply: func(ctx context.Context) error {
		if _, err := transport.OutputWithInput(ctx, c, psql, strings.NewReader(sql)); err != nil {
			return fmt.Errorf("%s: %w", summary, err)
		}
		return nil
	}}, nil
}

const scramIterations = 4096

// scramVerifier is PostgreSQL's stored form of a SCRAM-SHA-256 password (RFC 5802,
// RFC 7677): SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return scramWith(password, salt, scramIterations)
}

func scramWith(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// scramMatches tells whether stored is the verifier of password.
func scramMatches(stored, password string) bool {
	rest, ok := strings.CutPrefix(stored, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	iterSalt, _, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iter, salt64, ok := strings.Cut(iterSalt, ":")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1 {
		return false
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return false
	}
	want, err := scramWith(password, salt, n)
	return err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(stored)) == 1
}
