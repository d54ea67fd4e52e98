// Package cauldron deploys a load-balanced, session-clustered Tomcat stack (HAProxy,
// then Apache with mod_jk or Nginx, then Tomcat nodes that replicate their sessions,
// then PostgreSQL) onto your servers over SSH, or onto local Docker containers over
// docker exec, and keeps it as the code says: every step checks the host first and
// changes only what is off, so a second run changes nothing, and the plan a dry run
// shows is the plan applied.
//
// # How to start
//
// On a Debian machine with Go and Docker:
//
//	go run mage.go deploy:cluster          # bring up the local lab and deploy the cluster onto it
//	go run mage.go deploy:cluster -dryrun  # the plan, with a diff for every file
//	go run mage.go deploy:cluster -inventory=prod.yaml -report=deploy.json
//	go run mage.go verify                  # build, vet, every test, fuzzing
//
// Your own servers are an inventory file (see package inventory and the README). A
// recipe of your own is a mage target that calls deploy.Run with its plays (the
// README's "A custom recipe" is a complete one, and Example_customRecipe runs it).
//
// # Where each room is
//
//   - steps: the Step (check, then a Change with its diff and Apply), recipes and
//     handlers, and the built-in steps: AddUser, Visudo, Dir, File, Upload, Untar,
//     UnpackWAR, LineInFile, Packages, InstallUnit, Service, Restart, Command, ...
//     steps/postgres holds the PostgreSQL role and database.
//   - configs: typed models of the cluster's files (server.xml, workers.properties,
//     the Apache and Nginx sites, haproxy.cfg, pg_hba.conf, setenv.sh, the unit),
//     each validated before it is rendered; golden files in configs/testdata.
//   - recipes: the cluster's recipes, composed of steps and configs only
//     (TomcatNode, WriteServerXML, NullCatalinaOut, Apache, Nginx,
//     ConfigureHAProxy, PostgreSQL, and Cluster for the whole of it).
//   - inventory: the YAML inventory (hosts, groups, vars, secrets, ~/.ssh/config),
//     with file:line:key errors before anything connects.
//   - runner: plays over hosts in parallel, one connection per host, plan or
//     apply, handlers, fail-fast, live lines, recap and the JSON report.
//   - deploy: the front door, runner and inventory together with the flags,
//     Ctrl-C and masking that deploy:cluster and your own targets share.
//   - transport: the connection a step talks through; transport/sshconn,
//     transport/docker and transport/local implement it. shell quotes every
//     command line.
//   - lab: the local Docker lab (systemd containers, artifacts, demo apps);
//     e2e: the end-to-end checks against it.
//   - targets: the mage targets (magefiles/ only imports them; mage.go is the
//     zero-install bootstrap).
//
// This root package itself only embeds the demo apps' sources (AppSources), for the lab.
package cauldron
