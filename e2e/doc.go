// Package e2e holds the end-to-end checks of the whole cluster against the real Docker
// lab: its tests (package e2e_test) bring up their own labs, deploy through the library
// as deploy:cluster does, over docker exec and over SSH, and then probe the running
// stack through HAProxy the way a user would. It has no code of its own.
//
// Run with: go test -timeout 40m ./e2e/  (CAULDRON_E2E_KEEP=1 keeps the labs up).
package e2e
