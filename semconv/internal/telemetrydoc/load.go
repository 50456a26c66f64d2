package telemetrydoc

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// RegistryPath is the registry file, relative to the semconv package's
// directory.
const RegistryPath = "registry/memlock.yaml"

// stdPrefix is the import path prefix of the Go packages of the standard
// semantic conventions (go.opentelemetry.io/otel/semconv/v1.43.0).
const stdPrefix = "go.opentelemetry.io/otel/semconv/v"

// Source is what the document is made from besides the semconv package's
// exported tables, which Render reads directly.
type Source struct {
	// Registry is the content of RegistryPath.
	Registry []byte
	// StdPackage is the import path of the standard semantic-conventions
	// package semconv re-exports keys from.
	StdPackage string
	// Standard describes the standard attribute keys StdPackage defines, by
	// key ("process.pid").
	Standard map[string]StandardInfo
}

// StandardInfo describes one standard attribute.
type StandardInfo struct {
	// Type is the value type as the registry spells types ("string", "int",
	// "string[]"); for an enum, the type of its values.
	Type string
	// Stability is the upstream stability ("stable", "release candidate",
	// "development").
	Stability string
	// Brief is how memlock-exporter uses the attribute (the doc comment of
	// its re-exported constant in package semconv) or, without one, the
	// upstream brief.
	Brief string
}

// Generate loads the sources from dir, the semconv package's directory, and
// renders the document: what `go generate ./semconv` writes to
// docs/telemetry.md.
func Generate(dir string) ([]byte, error) {
	src, err := Load(dir)
	if err != nil {
		return nil, err
	}
	return Render(src)
}

// Load reads the registry in dir (the semconv package's directory), finds
// the standard semantic-conventions package that semconv's Go files import,
// and reads the type, stability and brief of its attributes from its source
// (the module as the go command resolves it: module cache or vendor
// directory), with semconv's own doc comments taking precedence for briefs.
func Load(dir string) (*Source, error) {
	reg, err := os.ReadFile(filepath.Join(dir, RegistryPath))
	if err != nil {
		return nil, err
	}
	ours, err := parseDir(dir)
	if err != nil {
		return nil, err
	}
	stdPath, alias, err := stdImport(ours)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", stdPath)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %s: %v: %s", stdPath, err, strings.TrimSpace(stderr.String()))
	}
	upstream, err := parseDir(strings.TrimSpace(string(out)))
	if err != nil {
		return nil, err
	}
	std := upstreamAttributes(upstream)
	// Prefer what semconv.go says about how we use a standard key.
	for ident, doc := range reexportDocs(ours, alias) {
		for key, u := range std {
			if u.ident == ident && doc != "" {
				u.Brief = doc
				std[key] = u
			}
		}
	}
	src := &Source{Registry: reg, StdPackage: stdPath, Standard: map[string]StandardInfo{}}
	for key, u := range std {
		src.Standard[key] = u.StandardInfo
	}
	return src, nil
}

// parseDir parses the non-test Go files of one directory, with comments,
// in file-name order.
func parseDir(dir string) ([]*ast.File, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no Go files", dir)
	}
	return files, nil
}

// stdImport returns the one standard semantic-conventions package the files
// import, and the name they import it under.
func stdImport(files []*ast.File) (path, name string, err error) {
	for _, f := range files {
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(p, stdPrefix) || strings.Contains(p[len(stdPrefix):], "/") {
				continue
			}
			n := "semconv"
			if imp.Name != nil {
				n = imp.Name.Name
			}
			if path != "" && (p != path || n != name) {
				return "", "", fmt.Errorf("semconv imports two standard semantic-conventions packages (%s as %s, %s as %s); the document needs one", path, name, p, n)
			}
			path, name = p, n
		}
	}
	if path == "" {
		return "", "", fmt.Errorf("semconv imports no %s* package", stdPrefix)
	}
	return path, name, nil
}

// valueSpecs calls fn for every name = value in the files' const and var
// declarations, with the doc comment of that spec (or of its declaration
// when that declares only it).
func valueSpecs(files []*ast.File, fn func(name *ast.Ident, value ast.Expr, doc *ast.CommentGroup)) {
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || (gd.Tok != token.CONST && gd.Tok != token.VAR) {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				doc := vs.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						fn(n, vs.Values[i], doc)
					}
				}
			}
		}
	}
}

type upstreamAttr struct {
	StandardInfo
	ident string
}

var (
	typeRE      = regexp.MustCompile(`(?m)^Type: (.+)$`)
	stabilityRE = regexp.MustCompile(`(?m)^Stability: (.+)$`)
	representRE = regexp.MustCompile(`(?s)It represents (.*?)(?:\n\n|$)`)
)

// upstreamAttributes reads the standard package's key declarations:
//
//	// ProcessPIDKey is the attribute Key conforming to the "process.pid" semantic
//	// conventions. It represents the process identifier (PID).
//	//
//	// Type: int
//	// Stability: Release_Candidate
//	ProcessPIDKey = attribute.Key("process.pid")
//
// and, for enums, the type of the values (ErrorTypeOther =
// ErrorTypeKey.String("_OTHER")).
func upstreamAttributes(files []*ast.File) map[string]upstreamAttr {
	attrs := map[string]upstreamAttr{}
	enumType := map[string]string{}
	valueSpecs(files, func(name *ast.Ident, value ast.Expr, doc *ast.CommentGroup) {
		call, ok := value.(*ast.CallExpr)
		if !ok {
			return
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return
		}
		if x.Name != "attribute" || sel.Sel.Name != "Key" {
			// An enum value: <Key>.String(...), <Key>.Int(...).
			if t, ok := map[string]string{"String": "string", "Int": "int", "Int64": "int", "Float64": "double", "Bool": "boolean"}[sel.Sel.Name]; ok {
				enumType[x.Name] = t
			}
			return
		}
		if len(call.Args) != 1 {
			return
		}
		lit, ok := call.Args[0].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return
		}
		key, err := strconv.Unquote(lit.Value)
		if err != nil {
			return
		}
		a := upstreamAttr{ident: name.Name}
		if doc != nil {
			t := doc.Text()
			if m := typeRE.FindStringSubmatch(t); m != nil {
				a.Type = strings.TrimSpace(m[1])
			}
			if m := stabilityRE.FindStringSubmatch(t); m != nil {
				a.Stability = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(m[1])), "_", " ")
			}
			if m := representRE.FindStringSubmatch(t); m != nil {
				a.Brief = sentence(m[1])
			}
		}
		attrs[key] = a
	})
	for key, a := range attrs {
		if strings.EqualFold(a.Type, "enum") {
			a.Type = enumType[a.ident]
			if a.Type == "" {
				a.Type = "string"
			}
			attrs[key] = a
		}
	}
	return attrs
}

// reexportDocs returns, by the standard package's identifier, the doc
// comment of each constant of ours defined as <alias>.<Ident>, with the
// Go-doc subject ("ProcessPIDKey is") taken off: "ProcessPIDKey is the
// calling process's id." becomes "The calling process's id.".
func reexportDocs(files []*ast.File, alias string) map[string]string {
	docs := map[string]string{}
	valueSpecs(files, func(name *ast.Ident, value ast.Expr, doc *ast.CommentGroup) {
		sel, ok := value.(*ast.SelectorExpr)
		if !ok || doc == nil {
			return
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != alias {
			return
		}
		t := normalize(doc.Text())
		t, ok = strings.CutPrefix(t, name.Name+" ")
		if !ok {
			return
		}
		t = strings.TrimPrefix(t, "is ")
		docs[sel.Sel.Name] = sentence(t)
	})
	return docs
}

// sentence normalises white space and capitalises the first letter.
func sentence(s string) string {
	s = normalize(s)
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}
