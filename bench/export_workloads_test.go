package bench

import "github.com/cauldron-go/cauldron/inventory"

// WriteTomcatWorkload writes the Tomcat node workload's files (the playbook, the
// rendered server.xml of each host, ...) into dir.
func WriteTomcatWorkload(dir string, a Artifacts, hosts []*inventory.Host) error {
	_, err := tomcatWorkload(dir, a, hosts)
	return err
}
