package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"text/template"

	"github.com/bitfield/script"
)

// Content is what a File holds, produced when the step is checked (not when the recipe is
// built), so a template sees the data as it is at that moment and an error surfaces as
// the step's error.
type Content interface {
	Bytes(ctx context.Context) ([]byte, error)
}

// Text is content given as a string.
func Text(s string) Content { return literal(s) }

// Bytes is content given as bytes.
func Bytes(b []byte) Content { return literal(b) }

type literal []byte

func (l literal) Bytes(context.Context) ([]byte, error) { return bytes.Clone(l), nil }

// Template is content rendered from t with data.
func Template(t *template.Template, data any) Content { return templateContent{t, data} }

type templateContent struct {
	t    *template.Template
	data any
}

func (c templateContent) Bytes(context.Context) ([]byte, error) {
	if c.t == nil {
		return nil, errors.New("template: nil template")
	}
	var b bytes.Buffer
	if err := c.t.Execute(&b, c.data); err != nil {
		return nil, fmt.Errorf("template %s: %w", c.t.Name(), err)
	}
	return b.Bytes(), nil
}

// Pipe is content produced by a bitfield/script pipe, built afresh by newPipe at each
// check; an error anywhere along the pipe is reported once, at the end.
func Pipe(newPipe func() *script.Pipe) Content { return pipeContent(newPipe) }

type pipeContent func() *script.Pipe

func (f pipeContent) Bytes(context.Context) ([]byte, error) {
	if f == nil {
		return nil, errors.New("pipe: nil function")
	}
	p := f()
	if p == nil {
		return nil, errors.New("pipe: the function returned no pipe")
	}
	b, err := p.Bytes()
	if err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	return b, nil
}
