package recipes

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
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/transport"
)

// Handlers of PostgreSQL: listen_addresses needs a restart, pg_hba.conf a reload.
const (
	PostgresRestart = "restart postgresql"
	PostgresReload  = "reload postgresql"
)

// PostgresConfig is the database host.
type PostgresConfig struct {
	// Version is the major version the distribution's package installs ("15").
	Version string
	Listen  *configs.PostgresListen
	HBA     *configs.PgHBA
	// Database, Role and Password are the apps' database and login.
	Database, Role, Password string
}

// PostgreSQL returns the recipe of the database host: Debian's postgresql, listening
// on the private network, pg_hba.conf letting only the web nodes in, and the apps'
// role and database. The role's password travels as a SCRAM verifier computed here,
// over standard input: never on a command line, never in plain text on the host.
func PostgreSQL(c PostgresConfig) (*steps.Recipe, error) {
	listen, err := c.Listen.Render()
	if err != nil {
		return nil, err
	}
	hba, err := c.HBA.Render()
	if err != nil {
		return nil, err
	}
	confDir := path.Join("/etc/postgresql", c.Version, "main")
	r := steps.NewRecipe("postgresql",
		steps.Packages{Names: []string{"postgresql"}},
		steps.Notify(steps.File{Path: path.Join(confDir, "conf.d", "cauldron.conf"), Content: steps.Bytes(listen),
			Mode: 0o644, Owner: "postgres", Group: "postgres"}, PostgresRestart),
		steps.Notify(steps.File{Path: path.Join(confDir, "pg_hba.conf"), Content: steps.Bytes(hba),
			Mode: 0o640, Owner: "postgres", Group: "postgres"}, PostgresReload),
		steps.Service{Name: "postgresql.service", Enabled: ptr(true), State: steps.Started},
		PostgresRole{Name: c.Role, Password: c.Password},
		PostgresDatabase{Name: c.Database, Owner: c.Role},
	)
	r.Handle(PostgresRestart, steps.Restart{Name: "postgresql.service"})
	r.Handle(PostgresReload, steps.Reload{Name: "postgresql.service"})
	return r, nil
}

func (t *Topology) postgresRecipe(h *inventory.Host) (*steps.Recipe, error) {
	v, err := t.Vars(h)
	if err != nil {
		return nil, err
	}
	listen := configs.NewPostgresListen(h.Address)
	// The apps' JDBC URL names db_port: the server must listen there. The default stays
	// unwritten, so a cluster made before db_port existed sees no change.
	if v.DBPort != 5432 {
		listen.Port = v.DBPort
	}
	return PostgreSQL(PostgresConfig{
		Version: v.PostgresVersion, Listen: listen,
		HBA:      configs.NewPgHBA(t.Cluster, v.DBName, v.DBUser),
		Database: v.DBName, Role: v.DBUser, Password: v.DBPassword,
	})
}

var sqlNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// psql runs SQL from standard input as the postgres superuser; it exits 3 where
// PostgreSQL is not installed yet (a dry run before the package step has run). It
// connects to the port of the server that runs now, found by its socket: after a change
// of db_port the server moves only when its restart handler runs, after these steps.
const psql = "command -v psql >/dev/null || exit 3; " +
	"set -- /var/run/postgresql/.s.PGSQL.*; case $1 in *'*') port=5432;; *) port=${1##*.};; esac; " +
	"runuser -u postgres -- psql -X -A -t -q -v ON_ERROR_STOP=1 -p \"$port\" -f -"

// notInstalled tells a check that PostgreSQL is not there yet: everything is to do.
func notInstalled(err error) bool { return transport.ExitStatus(err) == 3 }

// PostgresRole is a login role with a password.
type PostgresRole struct {
	Name     string
	Password string
}

func (r PostgresRole) String() string { return "postgresql role " + r.Name }

// Validate rejects a name that is not a plain SQL identifier and an empty password.
func (r PostgresRole) Validate() error {
	var errs []error
	if !sqlNameRE.MatchString(r.Name) {
		errs = append(errs, fmt.Errorf("Name: %q is not a plain SQL name (a-z, 0-9, _)", r.Name))
	}
	if r.Password == "" {
		errs = append(errs, errors.New("Password: empty"))
	}
	return errors.Join(errs...)
}

// Check compares the role's stored SCRAM verifier with one computed here from the
// password and the stored salt, so the password never leaves this machine.
func (r PostgresRole) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	out, err := transport.OutputWithInput(ctx, c, psql, strings.NewReader(
		"SELECT rolcanlogin, coalesce(rolpassword, '') FROM pg_authid WHERE rolname = '"+r.Name+"';\n"))
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

// PostgresDatabase is a database owned by a role.
type PostgresDatabase struct {
	Name, Owner string
}

func (d PostgresDatabase) String() string { return "postgresql database " + d.Name }

// Validate rejects names that are not plain SQL identifiers.
func (d PostgresDatabase) Validate() error {
	if !sqlNameRE.MatchString(d.Name) || !sqlNameRE.MatchString(d.Owner) {
		return fmt.Errorf("Name %q and Owner %q must be plain SQL names (a-z, 0-9, _)", d.Name, d.Owner)
	}
	return nil
}

// Check reads the database's owner.
func (d PostgresDatabase) Check(ctx context.Context, c transport.Conn) (*steps.Change, error) {
	out, err := transport.OutputWithInput(ctx, c, psql, strings.NewReader(
		"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '"+d.Name+"';\n"))
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
