package cauldron

// The root package holds only what must live at the root: the embedded sources of the
// demo web apps, because go:embed cannot reach testdata/ from a package below it.

import (
	"embed"
	"io/fs"
)

// appSources is testdata/apps/demo, the one source tree of both demo apps.
//
//go:embed testdata/apps/demo
var appSources embed.FS

// AppSources returns the embedded testdata/apps tree; its paths start with "demo/".
// lab.BuildAppWAR turns it into the apps' WARs.
func AppSources() fs.FS {
	sub, err := fs.Sub(appSources, "testdata/apps")
	if err != nil {
		// fs.Sub fails only for an invalid directory name, and this one is a constant.
		return appSources
	}
	return sub
}
