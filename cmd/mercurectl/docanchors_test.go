package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docCitation matches a citation of a page of docs/, with an optional
// anchor and further anchors of the same page: "docs/cli.md",
// "docs/protocol.md#subscribe-cursors", "docs/protocol.md#cors and
// #response-headers", "docs/protocol.md#cors, #heartbeats and
// #response-headers", also across the lines of a comment.
var docCitation = regexp.MustCompile(`docs/([A-Za-z0-9_-]+\.md)(?:#([A-Za-z0-9_-]+)((?:(?:(?:,| and)[ \t]*(?:\n[ \t]*//)?[ \t]*|[ \t]*\n[ \t]*//[ \t]*and[ \t]+)#[A-Za-z0-9_-]+)*))?`)

// docMoreAnchors matches the further anchors of a citation.
var docMoreAnchors = regexp.MustCompile(`#([A-Za-z0-9_-]+)`)

// docAnchor matches an explicit anchor, <a id="name"></a>.
var docAnchor = regexp.MustCompile(`<a id="([^"]+)"></a>`)

// docLocalLink matches a Markdown link inside docs/: "(#anchor)" or
// "(cli.md#anchor)".
var docLocalLink = regexp.MustCompile(`\]\(([A-Za-z0-9_-]+\.md)?#([A-Za-z0-9_-]+)\)`)

// headingSlug is the anchor GitHub gives a Markdown heading.
func headingSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 0x7f:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// docAnchors returns the anchors of every page of dir: explicit ones and
// heading slugs.
func docAnchors(dir string) (map[string]map[string]bool, error) {
	pages, err := filepath.Glob(filepath.Join(dir, "*.md"))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		anchors := map[string]bool{}
		for _, m := range docAnchor.FindAllStringSubmatch(string(b), -1) {
			anchors[m[1]] = true
		}
		inFence := false
		for line := range strings.SplitSeq(string(b), "\n") {
			if strings.HasPrefix(line, "```") {
				inFence = !inFence
			}
			if !inFence && strings.HasPrefix(line, "#") {
				anchors[headingSlug(strings.TrimLeft(line, "#"))] = true
			}
		}
		out[filepath.Base(p)] = anchors
	}
	return out, nil
}

// docCitationErrors checks, under the repository root, that every docs/
// page and anchor cited from a .go or .txtar file or from README.md exists,
// and that the links between the pages of docs/ resolve. It returns one
// message per broken citation.
func docCitationErrors(root string) ([]string, error) {
	anchors, err := docAnchors(filepath.Join(root, "docs"))
	if err != nil {
		return nil, err
	}
	var errs []string
	check := func(where, page, anchor string) {
		a, ok := anchors[page]
		switch {
		case !ok:
			errs = append(errs, fmt.Sprintf("%s: docs/%s does not exist", where, page))
		case anchor != "" && !a[anchor]:
			errs = append(errs, fmt.Sprintf("%s: docs/%s has no anchor #%s", where, page, anchor))
		}
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "dist" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		isDoc := filepath.Dir(rel) == "docs" && strings.HasSuffix(name, ".md")
		if !isDoc && !strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, ".txtar") && rel != "README.md" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := string(b)
		for _, loc := range docCitation.FindAllStringSubmatchIndex(text, -1) {
			where := fmt.Sprintf("%s:%d", filepath.ToSlash(rel), 1+strings.Count(text[:loc[0]], "\n"))
			page, anchor := text[loc[2]:loc[3]], ""
			if loc[4] >= 0 {
				anchor = text[loc[4]:loc[5]]
			}
			check(where, page, anchor)
			if loc[6] >= 0 {
				for _, m := range docMoreAnchors.FindAllStringSubmatch(text[loc[6]:loc[7]], -1) {
					check(where, page, m[1])
				}
			}
		}
		for i, line := range strings.Split(text, "\n") {
			where := fmt.Sprintf("%s:%d", filepath.ToSlash(rel), i+1)
			if isDoc {
				for _, m := range docLocalLink.FindAllStringSubmatch(line, -1) {
					page := m[1]
					if page == "" {
						page = name
					}
					check(where, page, m[2])
				}
			}
		}
		return nil
	})
	return errs, err
}

// Every docs/ anchor that code, tests, scripts or the README cite exists, so
// that a comment such as "see docs/protocol.md#subscribe-cursors" always
// leads somewhere, also after the docs are edited.
func TestDocAnchorsExist(t *testing.T) {
	t.Parallel()
	errs, err := docCitationErrors(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range errs {
		t.Error(e)
	}
}

// The checker itself finds missing pages and anchors, in code and in the
// links between docs pages, and accepts explicit anchors and heading slugs.
func TestDocCitationErrors(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	// The fixture writes "@D/" for the docs directory, so that this file
	// does not cite pages that do not exist.
	files := map[string]string{
		"@D/a.md": "<a id=\"explicit\"></a>\n## A heading, with `code`\n```\n# not a heading\n```\n" +
			"[ok](#explicit) [ok](#a-heading-with-code) [bad](#nowhere) [bad](b.md#x) [bad](#not-a-heading)\n",
		"x.go":                  "// see @D/a.md#explicit and @D/a.md#a-heading-with-code and @D/a.md\n// @D/a.md#missing @D/gone.md#x\n",
		"t/testdata/s.txtar":    "# @D/a.md#also-missing\n",
		"y.go":                  "// @D/a.md#explicit and #more-missing, also\n// @D/a.md#explicit, #a-heading-with-code and\n// #wrapped-missing.\n",
		"README.md":             "[x](@D/a.md#readme-missing)\n",
		"other.md":              "@D/a.md#not-checked\n",
		".git/ignored.go":       "// @D/a.md#ignored\n",
		"docs/sub/ignored.txt":  "@D/a.md#ignored\n",
		"cmd/testdata/ok.txtar": "@D/a.md#explicit\n",
	}
	for name, text := range files {
		p := filepath.Join(root, filepath.FromSlash(strings.ReplaceAll(name, "@D/", "do"+"cs/")))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "@D/", "do"+"cs/")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	errs, err := docCitationErrors(root)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(errs)
	want := []string{
		"README.md:1: @D/a.md has no anchor #readme-missing",
		"@D/a.md:6: @D/a.md has no anchor #not-a-heading",
		"@D/a.md:6: @D/a.md has no anchor #nowhere",
		"@D/a.md:6: @D/b.md does not exist",
		"t/testdata/s.txtar:1: @D/a.md has no anchor #also-missing",
		"x.go:2: @D/a.md has no anchor #missing",
		"x.go:2: @D/gone.md does not exist",
		"y.go:1: @D/a.md has no anchor #more-missing",
		"y.go:2: @D/a.md has no anchor #wrapped-missing",
	}
	for i := range want {
		want[i] = strings.ReplaceAll(want[i], "@D/", "do"+"cs/")
	}
	if !slices.Equal(errs, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
}
