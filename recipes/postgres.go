package recipes

import (
	"path"

	"github.com/cauldron-go/cauldron/configs"
	"github.com/cauldron-go/cauldron/inventory"
	"github.com/cauldron-go/cauldron/steps"
	"github.com/cauldron-go/cauldron/steps/postgres"
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
		postgres.Role{Name: c.Role, Password: c.Password},
		postgres.Database{Name: c.Database, Owner: c.Role},
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
