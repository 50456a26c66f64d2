package telemetrydoc

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The part of weaver's registry format the document shows. Decoding is
// lenient: semconv_test.go checks the file strictly; the document must not
// break while someone adds a field.
type registryFile struct {
	Groups []group `yaml:"groups"`
}

type group struct {
	ID          string    `yaml:"id"`
	Type        string    `yaml:"type"`
	DisplayName string    `yaml:"display_name"`
	Brief       string    `yaml:"brief"`
	Note        string    `yaml:"note"`
	Stability   string    `yaml:"stability"`
	Name        yaml.Node `yaml:"name"`
	Body        *body     `yaml:"body"`
	MetricName  string    `yaml:"metric_name"`
	Instrument  string    `yaml:"instrument"`
	Unit        string    `yaml:"unit"`
	SpanKind    string    `yaml:"span_kind"`
	Events      []string  `yaml:"events"`
	Attributes  []attr    `yaml:"attributes"`
	// EntityAssociations names, on a signal, the entities whose resource
	// its telemetry sits under.
	EntityAssociations []string `yaml:"entity_associations"`
}

type body struct {
	ID               string    `yaml:"id"`
	Type             string    `yaml:"type"`
	Stability        string    `yaml:"stability"`
	RequirementLevel yaml.Node `yaml:"requirement_level"`
	Brief            string    `yaml:"brief"`
	Note             string    `yaml:"note"`
	Examples         yaml.Node `yaml:"examples"`
}

type attr struct {
	ID               string    `yaml:"id"`
	Ref              string    `yaml:"ref"`
	Type             yaml.Node `yaml:"type"`
	Stability        string    `yaml:"stability"`
	Brief            string    `yaml:"brief"`
	Note             string    `yaml:"note"`
	Examples         yaml.Node `yaml:"examples"`
	RequirementLevel yaml.Node `yaml:"requirement_level"`
	// Role is an entity attribute's: "identifying" (the default) or
	// "descriptive".
	Role string `yaml:"role"`
}

type member struct {
	ID        string    `yaml:"id"`
	Value     yaml.Node `yaml:"value"`
	Brief     string    `yaml:"brief"`
	Note      string    `yaml:"note"`
	Stability string    `yaml:"stability"`
}

// definition is an attribute defined in an attribute group, with its type
// worked out.
type definition struct {
	attr
	typ     string // "string", "int", "string[]", ...; for an enum, its values' type
	enum    bool
	members []member
}

// signal is an event, metric, span or entity group, named.
type signal struct {
	group
	name string
}

type model struct {
	defs     map[string]definition
	entities []signal
	events   []signal
	metrics  []signal
	spans    []signal
}

func parseRegistry(data []byte) (*model, error) {
	var f registryFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %v", RegistryPath, err)
	}
	m := &model{defs: map[string]definition{}}
	for _, g := range f.Groups {
		switch g.Type {
		case "attribute_group":
			for _, a := range g.Attributes {
				if a.Ref != "" {
					continue // a reference, defined elsewhere
				}
				if a.ID == "" {
					return nil, fmt.Errorf("%s: group %s: attribute without id", RegistryPath, g.ID)
				}
				if _, dup := m.defs[a.ID]; dup {
					return nil, fmt.Errorf("%s: attribute %s defined twice", RegistryPath, a.ID)
				}
				d, err := define(a)
				if err != nil {
					return nil, err
				}
				m.defs[a.ID] = d
			}
		case "event":
			m.events = append(m.events, signal{g, scalarOr(g.Name, strings.TrimPrefix(g.ID, "event."))})
		case "metric":
			name := g.MetricName
			if name == "" {
				name = strings.TrimPrefix(g.ID, "metric.")
			}
			m.metrics = append(m.metrics, signal{g, name})
		case "span":
			m.spans = append(m.spans, signal{g, scalarOr(g.Name, strings.TrimPrefix(g.ID, "span."))})
		case "entity":
			m.entities = append(m.entities, signal{g, scalarOr(g.Name, strings.TrimPrefix(g.ID, "entity."))})
		default:
			return nil, fmt.Errorf("%s: group %s: type %q is not shown by semconv/internal/telemetrydoc; teach it that type", RegistryPath, g.ID, g.Type)
		}
	}
	for _, list := range [][]signal{m.entities, m.events, m.metrics, m.spans} {
		seen := map[string]bool{}
		for _, s := range list {
			if seen[s.name] {
				return nil, fmt.Errorf("%s: %s %s defined twice", RegistryPath, s.Type, s.name)
			}
			seen[s.name] = true
		}
	}
	return m, nil
}

func scalarOr(n yaml.Node, def string) string {
	if n.Kind == yaml.ScalarNode && n.Value != "" {
		return n.Value
	}
	return def
}

func define(a attr) (definition, error) {
	d := definition{attr: a}
	switch a.Type.Kind {
	case yaml.ScalarNode:
		d.typ = a.Type.Value
	case yaml.MappingNode:
		var e struct {
			Members []member `yaml:"members"`
		}
		if err := a.Type.Decode(&e); err != nil {
			return d, fmt.Errorf("%s: attribute %s: enum type: %v", RegistryPath, a.ID, err)
		}
		d.enum, d.members, d.typ = true, e.Members, "string"
		for _, m := range e.Members {
			if m.Value.Tag == "!!int" {
				d.typ = "int"
			}
		}
	default:
		return d, fmt.Errorf("%s: attribute %s: no type", RegistryPath, a.ID)
	}
	return d, nil
}

// Requirement levels, in the order attributes are listed.
const (
	levelRequired = iota
	levelConditional
	levelRecommended
	levelOptIn
)

// requirement returns the rank and the wording of a requirement_level;
// weaver's default is recommended.
func requirement(n yaml.Node) (int, string) {
	names := map[string]struct {
		rank int
		text string
	}{
		"required":               {levelRequired, "Required"},
		"conditionally_required": {levelConditional, "Conditionally required"},
		"recommended":            {levelRecommended, "Recommended"},
		"opt_in":                 {levelOptIn, "Opt-in"},
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if l, ok := names[n.Value]; ok {
			return l.rank, l.text
		}
		return levelRecommended, text(n.Value)
	case yaml.MappingNode:
		if len(n.Content) >= 2 {
			k, v := n.Content[0].Value, n.Content[1].Value
			l, ok := names[k]
			if !ok {
				l.rank, l.text = levelRecommended, text(k)
			}
			if strings.TrimSpace(v) == "" {
				return l.rank, l.text
			}
			return l.rank, l.text + ": " + text(v)
		}
	}
	return levelRecommended, "Recommended"
}

// examples renders an examples node as code spans: a list of scalars, one
// scalar, a list of arrays or, for an array type, one array.
func examples(n yaml.Node, typ string) []string {
	var values []*yaml.Node
	switch {
	case n.Kind == 0:
		return nil
	case n.Kind == yaml.SequenceNode && (!strings.HasSuffix(typ, "[]") || len(n.Content) > 0 && n.Content[0].Kind == yaml.SequenceNode):
		values = n.Content
	default:
		values = []*yaml.Node{&n}
	}
	var out []string
	for _, v := range values {
		out = append(out, code(literal(v)))
	}
	return out
}

// literal spells a YAML value: a scalar as written, a sequence as a JSON
// array (strings quoted).
func literal(n *yaml.Node) string {
	if n.Kind != yaml.SequenceNode {
		return n.Value
	}
	parts := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		if e.Kind == yaml.ScalarNode && e.Tag == "!!str" {
			q, _ := json.Marshal(e.Value)
			parts = append(parts, string(q))
			continue
		}
		parts = append(parts, literal(e))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

var unitNoteRE = regexp.MustCompile("^\\s*Unit: `[^`]*`\\.?\\s*")

// noteWithoutUnit drops the "Unit: `By`." prefix by which the registry
// records a custom attribute's unit: the document shows it in its own
// column.
func noteWithoutUnit(note string) string {
	return unitNoteRE.ReplaceAllString(note, "")
}

var unitInNoteRE = regexp.MustCompile("Unit: `([^`]*)`")

func unitFromNote(note string) string {
	if m := unitInNoteRE.FindStringSubmatch(note); m != nil {
		return m[1]
	}
	return ""
}
