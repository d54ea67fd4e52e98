module github.com/cauldron-go/cauldron

go 1.26.8

require (
	github.com/aymanbagabas/go-udiff v0.4.1
	github.com/bitfield/script v0.25.2
	github.com/kevinburke/ssh_config v1.6.0
	github.com/magefile/mage v1.17.2
	github.com/pkg/sftp v1.13.12
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/crypto v0.59.0
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
)

require (
	github.com/itchyny/gojq v0.12.13 // indirect
	github.com/itchyny/timefmt-go v0.1.5 // indirect
	github.com/kr/fs v0.1.0 // indirect
	mvdan.cc/sh/v3 v3.7.0 // indirect
)
