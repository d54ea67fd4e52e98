package inventory

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Lookup returns the variable key and whether it is set.
func (vs Vars) Lookup(key string) (Var, bool) {
	v, ok := vs[key]
	return v, ok
}

// String returns the variable key as written when it is a scalar (a number reads as its
// digits, null as ""), and false when it is unset, a list or a mapping.
func (vs Vars) String(key string) (string, bool) {
	v, ok := vs[key]
	if !ok {
		return "", false
	}
	switch x := v.Value.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case []any, map[string]any:
		return "", false
	}
	if v.node != nil && v.node.Kind == yaml.ScalarNode {
		return v.node.Value, true
	}
	return fmt.Sprint(v.Value), true
}

// Names returns the variables' names, sorted.
func (vs Vars) Names() []string {
	names := make([]string, 0, len(vs))
	for k := range vs {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func (vs Vars) overlay(other Vars) {
	for k, v := range other {
		vs[k] = v
	}
}

// String prints the value, or "<secret>" when it holds a secret, so a Var (or Vars) put
// through fmt does not leak one.
func (v Var) String() string {
	if v.Secret {
		return "<secret>"
	}
	return fmt.Sprint(v.Value)
}

// GoString is String for %#v.
func (v Var) GoString() string {
	value := fmt.Sprintf("%#v", v.Value)
	if v.Secret {
		value = `"<secret>"`
	}
	return fmt.Sprintf("inventory.Var{Value:%s, File:%q, Line:%d, Secret:%t}", value, v.File, v.Line, v.Secret)
}

// Decode stores the variables into the struct (or map with string keys) that into points
// to, matching yaml tags as go.yaml.in/yaml/v3 does, ",inline" included. Variables no
// field names are ignored: several recipes share one inventory's variables. Each value that
// does not fit its field is an *Error naming the file, line and variable; errors never
// quote a value, so a secret cannot leak through them.
func (vs Vars) Decode(into any) error {
	rv := reflect.ValueOf(into)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("inventory: Vars.Decode needs a non-nil pointer to a struct or map, got %T", into)
	}
	ev := rv.Elem()
	switch {
	case ev.Kind() == reflect.Struct:
		var errs []error
		vs.decodeStruct(ev, &errs)
		return errors.Join(errs...)
	case ev.Kind() == reflect.Map && ev.Type().Key().Kind() == reflect.String:
		if ev.IsNil() {
			ev.Set(reflect.MakeMap(ev.Type()))
		}
		var errs []error
		for _, name := range vs.Names() {
			elem := reflect.New(ev.Type().Elem())
			if err := vs[name].decode(name, elem.Interface()); err != nil {
				errs = append(errs, err)
				continue
			}
			ev.SetMapIndex(reflect.ValueOf(name).Convert(ev.Type().Key()), elem.Elem())
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("inventory: Vars.Decode needs a pointer to a struct or map, got %T", into)
}

func (vs Vars) decodeStruct(sv reflect.Value, errs *[]error) {
	t := sv.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			if f.Type.Kind() == reflect.Struct && (f.IsExported() || f.Anonymous) {
				vs.decodeStruct(sv.Field(i), errs)
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		v, ok := vs[name]
		if !ok {
			continue
		}
		if err := v.decode(name, sv.Field(i).Addr().Interface()); err != nil {
			*errs = append(*errs, err)
		}
	}
}

// decode decodes one variable into out, rewriting YAML's errors to name the file, line and
// variable and to drop the value YAML quotes.
func (v Var) decode(name string, out any) error {
	node := v.node
	if node == nil {
		node = &yaml.Node{}
		if err := node.Encode(v.Value); err != nil {
			return &Error{File: v.File, Line: v.Line, Path: v.where(name), Msg: fmt.Sprintf("cannot decode into %T", out)}
		}
	}
	target := reflect.TypeOf(out).Elem().String()
	if line, ok := fractionIntoInteger(node, reflect.TypeOf(out).Elem()); ok {
		// YAML would cut 2.7 to 2: a value the user did not write.
		return &Error{File: v.File, Line: line, Path: v.where(name), Msg: "cannot decode a number with a fraction into " + target + ": write a whole number"}
	}
	err := node.Decode(out)
	if err == nil {
		return nil
	}
	return decodeError(err, v.File, v.Line, v.where(name), target, v.Secret)
}

// fractionIntoInteger finds a number written with a fraction or an exponent (2.7, 1e3)
// where t, or an element of t, is an integer, and returns its line.
func fractionIntoInteger(n *yaml.Node, t reflect.Type) (int, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			if n.ShortTag() == "!!float" {
				return n.Line, true
			}
		}
	case yaml.SequenceNode:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for _, e := range n.Content {
				if line, ok := fractionIntoInteger(e, t.Elem()); ok {
					return line, true
				}
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			var et reflect.Type
			switch t.Kind() {
			case reflect.Map:
				et = t.Elem()
			case reflect.Struct:
				if f, ok := structFieldByYAMLName(t, n.Content[i].Value); ok {
					et = f.Type
				}
			}
			if et == nil {
				continue
			}
			if line, ok := fractionIntoInteger(n.Content[i+1], et); ok {
				return line, true
			}
		}
	}
	return 0, false
}

// structFieldByYAMLName finds the field of t that yaml fills from key.
func structFieldByYAMLName(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			if g, ok := structFieldByYAMLName(f.Type, key); ok {
				return g, true
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if name == key && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

var (
	unmarshalMsg = regexp.MustCompile("^line (\\d+): cannot unmarshal (\\S+)(?: `.*`)? into (.+)$")
	lineMsg      = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
)

// decodeError turns an error from yaml's Decode into *Errors. YAML quotes up to seven
// characters of a value that does not fit; that quote is always dropped, and any other
// message is dropped when the value holds a secret.
func decodeError(err error, file string, line int, name, target string, secret bool) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		msg := "cannot decode into " + target
		if !secret {
			msg += ": " + strings.TrimPrefix(err.Error(), "yaml: ")
		}
		return &Error{File: file, Line: line, Path: name, Msg: msg}
	}
	var errs []error
	for _, m := range te.Errors {
		e := &Error{File: file, Line: line, Path: name, Msg: "cannot decode into " + target}
		if sm := unmarshalMsg.FindStringSubmatch(m); sm != nil {
			e.Line, _ = strconv.Atoi(sm[1])
			e.Msg = "cannot decode " + describeTag(sm[2]) + " into " + sm[3]
		} else if lm := lineMsg.FindStringSubmatch(m); lm != nil && !secret {
			e.Line, _ = strconv.Atoi(lm[1])
			e.Msg = lm[2]
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// vars reads a vars mapping. Its values are free-form, but secrets in them are resolved
// and each value is copied with its aliases expanded, so Decode sees plain values.
func (p *parser) vars(n *yaml.Node, path string) Vars {
	vs := Vars{}
	pairs, ok := p.mapping(n, path)
	if !ok {
		return vs
	}
	for _, kv := range pairs {
		vp := join(path, kv.key)
		p.varPath, p.varLine = vp, kv.keyN.Line
		node, secret, ok := p.materialize(kv.value, vp, 0)
		if !ok {
			continue
		}
		var value any
		if err := node.Decode(&value); err != nil {
			p.errs = append(p.errs, decodeError(err, p.file, kv.keyN.Line, vp, "a value", secret))
			continue
		}
		vs[kv.key] = Var{Value: value, File: p.file, Line: kv.keyN.Line, Secret: secret, path: vp, node: node}
	}
	return vs
}

var secretKeys = []string{"from_file", "from_env"}

// materialize copies n with aliases expanded and every {from_file: ...} or
// {from_env: ...} mapping replaced by the secret's string. secret reports whether any
// was.
func (p *parser) materialize(n *yaml.Node, path string, depth int) (out *yaml.Node, secret, ok bool) {
	if depth > maxDepth {
		p.errorf(p.varLine, p.varPath, "nested too deeply (more than %d levels, or an alias that contains itself)", maxDepth)
		return nil, false, false
	}
	if !p.spend(p.varLine, p.varPath) {
		return nil, false, false
	}
	c := *n
	c.Anchor, c.Alias, c.Content = "", nil, nil
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			p.errorf(n.Line, path, "alias to nothing")
			return nil, false, false
		}
		return p.materialize(n.Alias, path, depth+1)
	case yaml.ScalarNode:
		return &c, false, true
	case yaml.SequenceNode:
		ok = true
		for i, e := range n.Content {
			m, s, good := p.materialize(e, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if !good {
				ok = false
				continue
			}
			secret = secret || s
			c.Content = append(c.Content, m)
		}
		return &c, secret, ok
	case yaml.MappingNode:
		if v, isSecret, good := p.secretMapping(n, path); isSecret {
			return v, true, good
		}
		ok = true
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			kp := path
			if kd := deref(k); kd != nil && kd.Kind == yaml.ScalarNode {
				kp = join(path, kd.Value)
				if kd.Value != "<<" || kd.Tag == "!!str" {
					if first, dup := seen[kd.Value]; dup {
						p.errorf(k.Line, kp, "duplicate key (first at line %d)", first)
						ok = false
						continue
					}
					seen[kd.Value] = k.Line
				}
			}
			mk, sk, good1 := p.materialize(k, kp, depth+1)
			mv, sv, good2 := p.materialize(v, kp, depth+1)
			if !good1 || !good2 {
				ok = false
				continue
			}
			secret = secret || sk || sv
			c.Content = append(c.Content, mk, mv)
		}
		return &c, secret, ok
	}
	p.errorf(n.Line, path, "unexpected YAML node")
	return nil, false, false
}

// secretMapping resolves n when it is a secret: a mapping whose one key is from_file or
// from_env. isSecret is false for any other mapping.
func (p *parser) secretMapping(n *yaml.Node, path string) (out *yaml.Node, isSecret, ok bool) {
	var kind string
	for i := 0; i+1 < len(n.Content); i += 2 {
		if kd := deref(n.Content[i]); kd != nil && kd.Kind == yaml.ScalarNode && contains(secretKeys, kd.Value) {
			kind = kd.Value
		}
	}
	if kind == "" {
		return nil, false, false
	}
	if len(n.Content) != 2 {
		p.errorf(n.Line, path, "a secret is {from_file: PATH} or {from_env: NAME} with no other keys")
		return nil, true, false
	}
	kp := join(path, kind)
	name, good := p.str(n.Content[1], kp)
	if !good {
		return nil, true, false
	}
	if name == "" {
		p.errorf(n.Content[1].Line, kp, "empty value")
		return nil, true, false
	}
	var value string
	if kind == "from_env" {
		value, good = p.fromEnv(n.Content[1], path, name)
	} else {
		var abs string
		if abs, good = p.localPath(n.Content[1], path, name); good {
			value, good = p.fromFile(n.Content[1], path, name, abs)
		}
	}
	if !good {
		return nil, true, false
	}
	p.secrets = append(p.secrets, value)
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Line: n.Line, Column: n.Column}, true, true
}
