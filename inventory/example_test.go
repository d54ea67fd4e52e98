package inventory_test

import (
	"fmt"
	"log"
	"os"

	"github.com/cauldron-go/cauldron/inventory"
)

// A recipe loads the inventory, picks its hosts by group, and decodes each host's merged
// variables into the struct it needs; variables it does not name are left to others.
func ExampleLoadOptions_Load() {
	// lab.yaml reads the HAProxy stats password from this variable.
	os.Setenv("CAULDRON_STATS_PASSWORD", "example-password")
	defer os.Unsetenv("CAULDRON_STATS_PASSWORD")

	// os.DevNull keeps the reader's own ~/.ssh/config out of the example.
	inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Load("../testdata/inventory/lab.yaml")
	if err != nil {
		log.Fatal(err)
	}
	type tomcatVars struct {
		User      string `yaml:"tomcat_user"`
		Heap      string `yaml:"heap"`
		JVMRoute  int    `yaml:"jvm_route"`
		AJPSecret string `yaml:"ajp_secret"`
		Ports     struct {
			AJPAdmin int `yaml:"ajp_admin"`
		} `yaml:"ports"`
	}
	hosts, err := inv.GroupHosts("tomcat")
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range hosts {
		var v tomcatVars
		if err := h.Vars.Decode(&v); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s via %s at %s: user=%s heap=%s jvm_route=%d ajp=%d secret read: %t\n",
			h.Name, h.Transport, h.Address, v.User, v.Heap, v.JVMRoute, v.Ports.AJPAdmin, v.AJPSecret != "")
	}
	fmt.Println("secrets to mask:", len(inv.Secrets()))
	// Output:
	// web1 via ssh at 172.30.0.11: user=gaia3d heap=768m jvm_route=1 ajp=8019 secret read: true
	// web2 via docker at 172.30.0.12: user=gaia3d heap=512m jvm_route=2 ajp=8019 secret read: true
	// secrets to mask: 4
}

// A recipe says which variables it reads and which of them are secrets; CheckVars names
// every other variable, with a likely spelling, and every secret written in the text.
func ExampleInventory_CheckVars() {
	type motd struct {
		Text  string `yaml:"motd_text"`
		Token string `yaml:"motd_token"`
	}
	inv, err := inventory.LoadOptions{SSHConfig: os.DevNull}.Parse("site.yaml", []byte(`vars:
  motd_txt: Welcome
  motd_token: abc123
hosts:
  here: {transport: local}
`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(inv.CheckVars(inventory.VarRules{Known: inventory.VarNames(&motd{}), Secrets: []string{"motd_token"}}))
	// Output:
	// site.yaml:2: vars.motd_txt: unknown variable (did you mean "motd_text"?)
	// site.yaml:3: vars.motd_token: a secret written in the inventory: use {from_file: PATH} or {from_env: NAME}
}
