//go:build mage

// cauldron deploys a load-balanced, session-clustered Tomcat stack (HAProxy, Apache
// mod_jk or Nginx, Tomcat, PostgreSQL) over SSH or docker exec, idempotently.
package main

// This file is thin on purpose: the targets live in the ordinary package
// github.com/cauldron-go/cauldron/targets, where they can be read, tested and reused.
import (
	//mage:import
	_ "github.com/cauldron-go/cauldron/targets"
)
