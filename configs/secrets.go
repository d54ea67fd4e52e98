package configs

import (
	"encoding/xml"
	"regexp"
	"slices"
	"strings"
)

// A secret reaches a file in the form the file's reader decodes: as it is in
// workers.properties and haproxy.cfg, XML-escaped in server.xml, backslash- and
// \uXXXX-escaped in application.properties. Masking the plain secret alone would let
// every other form through, so SecretForms gives them all, from the very encoders the
// models write with.

// valueEncoders are every way this package writes a value into a file. A model that
// writes a value through a new encoder adds it here, and its form is masked too.
var valueEncoders = []func(string) string{
	func(s string) string { return s }, // workers.properties, haproxy.cfg, setenv.sh words
	xmlAttrValue,                       // server.xml, through encoding/xml
	propertiesValue,                    // application.properties
}

// SecretForms returns every form in which the models of this package write secret,
// the secret itself first, each once. It returns nothing for an empty secret.
func SecretForms(secret string) []string {
	if secret == "" {
		return nil
	}
	var forms []string
	for _, enc := range valueEncoders {
		if f := enc(secret); f != "" && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	return forms
}

// xmlAttrValue is s as encoding/xml writes it between an attribute's quotes, which is
// how ServerXML.Render writes every attribute.
func xmlAttrValue(s string) string {
	b, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"a"`
		V       string   `xml:"v,attr"`
	}{V: s})
	if err != nil {
		// Marshal fails only for a type it cannot encode; a string it always can.
		panic("configs: xml.Marshal of a string attribute: " + err.Error())
	}
	v, _ := strings.CutPrefix(string(b), `<a v="`)
	v, _ = strings.CutSuffix(v, `"></a>`)
	return v
}

// SecretFile is a model whose file holds secrets. SecretLines are patterns of the lines
// that carry one, each with a group named "secret" around the value: a diff shows such
// a line with the value masked on both sides, whatever the value is and however it is
// written, so a secret the run does not know (the old one still on the host, after a
// rotation) is not shown either.
type SecretFile interface {
	File
	SecretLines() []*regexp.Regexp
}

var (
	// workersSecretLine is a worker's secret: mod_jk reads the rest of the line, trimmed.
	workersSecretLine = regexp.MustCompile(`^\s*worker\.[^=\s]+\.secret\s*=\s*(?P<secret>.*?)\s*$`)
	// xmlSecretAttr is a secret attribute of any element, in either quote (not
	// secretRequired, whose name goes on): Connector's AJP secret.
	xmlSecretAttr = regexp.MustCompile(`\ssecret\s*=\s*(?:"(?P<secret>[^"]*)"|'(?P<secret>[^']*)')`)
	// propertiesPasswordLine is the datasource password, with '=', ':' or blanks
	// between key and value as java.util.Properties reads them.
	propertiesPasswordLine = regexp.MustCompile(`^\s*spring\.datasource\.password(?:\s*[=:]\s*|\s+)(?P<secret>.*)$`)
	// haproxyStatsAuthLine is "stats auth user:password"; the password is one word, which
	// HAProxy lets hold quoted parts and backslash escapes.
	haproxyStatsAuthLine = regexp.MustCompile(`^\s*stats\s+auth\s+[^:\s]*:(?P<secret>(?:"[^"]*"|'[^']*'|\\.|[^\s"'\\#])+)`)
)

// SecretLines are the lines of the workers' AJP secrets.
func (w *Workers) SecretLines() []*regexp.Regexp { return []*regexp.Regexp{workersSecretLine} }

// SecretLines are the lines of the AJP connectors' secret attributes.
func (s *ServerXML) SecretLines() []*regexp.Regexp { return []*regexp.Regexp{xmlSecretAttr} }

// SecretLines are the line of the datasource password.
func (p *AppProperties) SecretLines() []*regexp.Regexp {
	return []*regexp.Regexp{propertiesPasswordLine}
}

// SecretLines are the stats page's credentials.
func (h *HAProxy) SecretLines() []*regexp.Regexp { return []*regexp.Regexp{haproxyStatsAuthLine} }
