// Command gendocs writes docs/telemetry.md from the semconv package's
// registry and Go tables. Run it through `go generate ./semconv` (see
// semconv/gen.go); it runs in the semconv package's directory.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/memlock-exporter/memlock-exporter/semconv/internal/telemetrydoc"
)

func main() {
	dir := flag.String("dir", ".", "the semconv package's directory")
	out := flag.String("o", "../docs/telemetry.md", "the file to write")
	flag.Parse()
	if err := run(*dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(dir, out string) error {
	doc, err := telemetrydoc.Generate(dir)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(out); err == nil && string(old) == string(doc) {
		return nil // current; leave its modification time alone
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".telemetry-*.md")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(doc); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
