package inventory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
)

// VarRules say which variables a set of recipes reads, for CheckVars.
type VarRules struct {
	// Known are the names the recipes read. Any other variable is a mistake: a
	// misspelled name would otherwise be ignored and its default used without a word.
	Known []string
	// Secrets are the names whose values must come from from_file or from_env: written
	// in the inventory's text, a secret is in every copy and every diff of the file.
	Secrets []string
}

// CheckVars reports every variable of the inventory (global, a group's or a host's) that
// rules.Known does not name, with a likely spelling, and every variable of rules.Secrets
// written inline, each as an *Error at the file, line and key path where it is set.
// Nothing is reported twice: a global variable is named once, not once per host.
func (inv *Inventory) CheckVars(rules VarRules) error {
	type named struct {
		name string
		v    Var
	}
	var all []named
	seen := map[string]bool{}
	add := func(vs Vars) {
		for _, name := range vs.Names() {
			v := vs[name]
			if key := v.File + "\x00" + v.where(name); !seen[key] {
				seen[key] = true
				all = append(all, named{name, v})
			}
		}
	}
	add(inv.Vars)
	for _, g := range inv.Groups {
		add(g.Vars)
	}
	for _, h := range inv.Hosts {
		add(h.Vars)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].v.Line < all[j].v.Line })
	var errs []error
	for _, n := range all {
		v, path := n.v, n.v.where(n.name)
		switch {
		case !contains(rules.Known, n.name):
			msg := "unknown variable"
			if s := suggestVar(n.name, rules.Known); s != "" {
				msg += s
			} else {
				msg += " (no recipe reads it; a recipe of your own declares the variables it reads)"
			}
			errs = append(errs, &Error{File: v.File, Line: v.Line, Path: path, Msg: msg})
		case contains(rules.Secrets, n.name) && !v.Secret && v.Value != nil:
			errs = append(errs, &Error{File: v.File, Line: v.Line, Path: path,
				Msg: "a secret written in the inventory: use {from_file: PATH} or {from_env: NAME}"})
		}
	}
	return errors.Join(errs...)
}

// where is the key path the variable is set at; name when it has none.
func (v Var) where(name string) string {
	if v.path != "" {
		return v.path
	}
	return name
}

// VarNames returns the variable names Decode fills in the struct into points to (or is):
// each exported field's yaml name, those of ",inline" structs included.
func VarNames(into any) []string {
	t := reflect.TypeOf(into)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" && opts == "" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			if f.Type.Kind() == reflect.Struct && (f.IsExported() || f.Anonymous) {
				names = append(names, VarNames(reflect.New(f.Type).Interface())...)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		names = append(names, name)
	}
	return names
}

// LocalPath resolves a path on the control machine written in the inventory as the
// inventory's own paths are: ~/ is the home folder, and a relative path is relative to
// the inventory file's folder, not to the working directory.
func (inv *Inventory) LocalPath(p string) (string, error) {
	switch {
	case p == "":
		return "", nil
	case p == "~" || strings.HasPrefix(p, "~/"):
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot expand ~: %w", err)
		}
		return filepath.Join(home, p[1:]), nil
	case strings.HasPrefix(p, "~"):
		return "", fmt.Errorf("only ~/ is expanded, not ~user/: %q", p)
	case filepath.IsAbs(p):
		return filepath.Clean(p), nil
	}
	dir := inv.dir
	if dir == "" {
		dir = filepath.Dir(inv.File)
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
	}
	return filepath.Join(dir, p), nil
}

// Errorf returns an *Error at the file, line and key path where the variable called
// name is set, for a recipe that finds its value wrong. The message must not quote a
// secret's value.
func (v Var) Errorf(name, format string, args ...any) *Error {
	return &Error{File: v.File, Line: v.Line, Path: v.where(name), Msg: fmt.Sprintf(format, args...)}
}

// suggestVar is suggest for variable names, which are words joined by '_': besides a
// likely typo, a known name that is the start or the end of got (heap for heap_size),
// or that got is the start or end of (haproxy_stats_password for stats_password).
func suggestVar(got string, known []string) string {
	if s := suggest(got, known); s != "" {
		return s
	}
	best := ""
	for _, k := range known {
		if strings.HasPrefix(got, k+"_") || strings.HasSuffix(got, "_"+k) ||
			strings.HasPrefix(k, got+"_") || strings.HasSuffix(k, "_"+got) {
			if len(k) > len(best) {
				best = k
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
