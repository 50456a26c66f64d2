package telemetrydoc

import (
	"regexp"
	"strings"
)

var (
	wsRE   = regexp.MustCompile(`\s+`)
	linkRE = regexp.MustCompile(`^\[[^\[\]` + "`" + `]*\]\([^()\s]*\)`)
)

// normalize folds every run of white space, newlines included, into one
// space: the registry's folded YAML strings become one line.
func normalize(s string) string { return strings.TrimSpace(wsRE.ReplaceAllString(s, " ")) }

// text escapes prose from the registry (briefs and notes) for a Markdown
// paragraph or table cell. Code spans (`...`) and inline links ([text](url))
// are kept; every other character Markdown would interpret (emphasis, HTML
// such as "/proc/<pid>/exe", brackets, pipes) is escaped. The result is one
// line.
func text(s string) string {
	s = normalize(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '`':
			n := run(s, i, '`')
			if end := closingRun(s, i+n, n); end >= 0 {
				b.WriteString(strings.ReplaceAll(s[i:end+n], "|", `\|`))
				i = end + n
				continue
			}
			for range n {
				b.WriteString("\\`")
			}
			i += n
			continue
		case c == '[':
			if m := linkRE.FindString(s[i:]); m != "" {
				b.WriteString(strings.ReplaceAll(m, "|", `\|`))
				i += len(m)
				continue
			}
			b.WriteString(`\[`)
		case c == '&':
			b.WriteString("&amp;")
		case strings.IndexByte(`\*<>]~|`, c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '_' && !(i > 0 && alnum(s[i-1]) && i+1 < len(s) && alnum(s[i+1])):
			b.WriteString(`\_`)
		case i == 0 && strings.IndexByte("#+-=", c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		case i > 0 && (c == '.' || c == ')') && allDigits(s[:i]):
			// "1. text" at the start would be an ordered list.
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
		i++
	}
	return b.String()
}

// code renders s as an inline code span, safe in a table cell: a fence
// longer than any run of backticks in s, and pipes escaped (GitHub's table
// syntax splits cells on unescaped pipes even inside code spans, and shows
// `\|` as a pipe there).
func code(s string) string {
	s = normalize(s)
	if s == "" {
		return ""
	}
	longest := 0
	for i := 0; i < len(s); {
		if s[i] == '`' {
			n := run(s, i, '`')
			longest = max(longest, n)
			i += n
			continue
		}
		i++
	}
	fence := strings.Repeat("`", longest+1)
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return fence + pad + strings.ReplaceAll(s, "|", `\|`) + pad + fence
}

func run(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

// closingRun returns the index of the first run of exactly n backticks at
// or after from, or -1.
func closingRun(s string, from, n int) int {
	for i := from; i < len(s); {
		if s[i] == '`' {
			m := run(s, i, '`')
			if m == n {
				return i
			}
			i += m
			continue
		}
		i++
	}
	return -1
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// table writes a Markdown table. Cells must already be escaped (text,
// code); a cell that is empty is written as "—" so no row has a blank cell.
func table(b *strings.Builder, header []string, rows [][]string) {
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			if c == "" {
				c = "—"
			}
			b.WriteString(" " + c + " |")
		}
		b.WriteString("\n")
	}
	line(header)
	b.WriteString("|")
	for range header {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
	for _, r := range rows {
		line(r)
	}
	b.WriteString("\n")
}

// sentences joins pieces of prose, ending each with a full stop unless it
// ends with punctuation already; empty pieces are skipped.
func sentences(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p == "" {
			continue
		}
		if !strings.ContainsAny(p[len(p)-1:], ".!?:") {
			p += "."
		}
		out = append(out, p)
	}
	return strings.Join(out, " ")
}
