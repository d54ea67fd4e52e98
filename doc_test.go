package cauldron_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// go doc shows a doc comment under the name it documents: one that starts with another
// name (a renamed function's old one) misleads. Every exported function, method and
// type of the module's packages that has a doc comment starts it with its own name
// (or "A", "An" or "The" and the name, or "Deprecated:").
func TestEveryDocCommentStartsWithTheNameItDocuments(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		check := func(name string, doc *ast.CommentGroup, pos token.Pos) {
			if !ast.IsExported(name) || doc == nil {
				return
			}
			text := doc.Text()
			for _, lead := range []string{"", "A ", "An ", "The "} {
				if strings.HasPrefix(text, lead+name+" ") || strings.HasPrefix(text, lead+name+",") ||
					strings.HasPrefix(text, lead+name+"'") || strings.HasPrefix(text, lead+name+"\n") {
					return
				}
			}
			first, _, _ := strings.Cut(text, "\n")
			t.Errorf("%s: the doc of %s starts %q", fset.Position(pos), name, first)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				check(d.Name.Name, d.Doc, d.Pos())
			case *ast.GenDecl:
				if d.Tok != token.TYPE {
					continue
				}
				for _, s := range d.Specs {
					ts := s.(*ast.TypeSpec)
					doc := ts.Doc
					if doc == nil && len(d.Specs) == 1 {
						doc = d.Doc
					}
					check(ts.Name.Name, doc, ts.Pos())
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
