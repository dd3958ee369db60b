// Command mutate runs the hand-written semantic mutants of scripts/mutants
// and fails unless the tests kill every one.
//
// Each mutant is a file NN-name.mutant:
//
//	# What the mutant breaks, in a line or more.
//	test: go test -count=1 -run '^TestX$' ./ctnetlink
//	generate: yes
//	file: ctnetlink/dump.go
//	<<<
//	exact text to replace, one or more whole lines
//	===
//	the text that replaces it
//	>>>
//
// A mutant may change several files, one file: block each. "generate: yes"
// regenerates, after the change, the package of every spec file it changes
// (spec/conntrack.yaml: ctnetlink; spec/NAME.yaml: package NAME), as make
// generate does. mutate copies the repository (its tracked and untracked files, not
// .git) to a scratch directory once; for each mutant it applies the change
// there, builds, runs the test command with CTSPEC_REQUIRE_KERNEL=1, and
// puts the changed files back.
// The mutant is killed when the command fails. A mutant whose text no
// longer occurs exactly once, whose build fails, or whose regeneration
// changes nothing does not apply: it is reported loudly and fails the run,
// so a mutant never passes because the code it targets moved.
//
// Usage, from the repository root:
//
//	go run ./scripts/mutate [-run regexp] [-keep] [-check] [scripts/mutants]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// mutant is one parsed mutant file.
type mutant struct {
	name     string // file name without .mutant
	desc     string
	test     string
	generate bool
	edits    []edit
}

// edit replaces old by new in file.
type edit struct {
	file     string
	old, new string
}

func main() {
	run := flag.String("run", "", "run only the mutants whose file name matches this regexp")
	keep := flag.Bool("keep", false, "keep the scratch copy")
	timeout := flag.Duration("timeout", 15*time.Minute, "time limit of one mutant's test command")
	check := flag.Bool("check", false, "only check that every mutant's text occurs once, and run nothing")
	flag.Parse()
	dir := "scripts/mutants"
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	if err := mainErr(dir, *run, *keep, *check, *timeout); err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		os.Exit(1)
	}
}

func mainErr(dir, run string, keep, check bool, timeout time.Duration) error {
	re, err := regexp.Compile(run)
	if err != nil {
		return fmt.Errorf("-run: %w", err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.mutant"))
	if err != nil {
		return err
	}
	sort.Strings(paths)
	var ms []mutant
	for _, p := range paths {
		if !re.MatchString(filepath.Base(p)) {
			continue
		}
		m, err := parseFile(p)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	if len(ms) == 0 {
		return fmt.Errorf("no mutants in %s", dir)
	}
	if check {
		return checkApply(ms)
	}
	base, err := os.MkdirTemp("", "ctspec-mutate-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(base)
	}
	src := filepath.Join(base, "src")
	if err := copyRepo(".", src); err != nil {
		return err
	}

	// Every mutant runs in the same directory, restored from src after
	// each, so that the build cache holds for the packages it leaves alone.
	work := filepath.Join(base, "work")
	if err := exec.Command("cp", "-a", src, work).Run(); err != nil {
		return fmt.Errorf("copying the repository: %w", err)
	}
	start := time.Now()
	var killed, lived, broken []string
	for _, m := range ms {
		t0 := time.Now()
		status, detail := runMutant(m, work, timeout)
		if err := restore(m, src, work); err != nil {
			return fmt.Errorf("restoring after mutant %s: %w", m.name, err)
		}
		fmt.Printf("%-9s %s (%s)\n    %s\n", status, m.name, time.Since(t0).Round(time.Second), m.desc)
		switch status {
		case "KILLED":
			killed = append(killed, m.name)
		case "LIVED":
			lived = append(lived, m.name)
			fmt.Printf("    test command passed: %s\n", m.test)
		default:
			broken = append(broken, m.name)
			fmt.Printf("    %s\n", detail)
		}
	}
	fmt.Printf("\nhand-written mutants: %d killed, %d lived, %d do not apply, of %d; score %.1f%% (%s)\n",
		len(killed), len(lived), len(broken), len(ms), 100*float64(len(killed))/float64(len(ms)), time.Since(start).Round(time.Second))
	if keep {
		fmt.Printf("scratch copy kept in %s\n", base)
	}
	if len(lived) > 0 || len(broken) > 0 {
		return fmt.Errorf("lived: %v; do not apply: %v", lived, broken)
	}
	return nil
}

// changedPkgs returns the package patterns of the Go files m changes, and
// the packages it regenerates, so that their tests compile as well.
func changedPkgs(m mutant) []string {
	seen := map[string]bool{}
	var pkgs []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			pkgs = append(pkgs, p)
		}
	}
	for _, e := range m.edits {
		if strings.HasSuffix(e.file, ".go") {
			add("./" + filepath.Dir(e.file))
		}
	}
	for _, g := range genTargets(m) {
		add("./" + g.pkg)
	}
	if len(pkgs) == 0 {
		add("./...")
	}
	return pkgs
}

// restore puts back in work the files that m or the generator changed.
func restore(m mutant, src, work string) error {
	files := []string{}
	for _, e := range m.edits {
		files = append(files, e.file)
	}
	for _, t := range genTargets(m) {
		gen, err := filepath.Glob(filepath.Join(src, t.pkg, "zz_generated_*"))
		if err != nil {
			return err
		}
		for _, g := range gen {
			files = append(files, filepath.Join(t.pkg, filepath.Base(g)))
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(work, f), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runMutant applies m to the copy of the repository at dst and runs its
// test. It returns KILLED, LIVED or "NO APPLY" with the reason.
func runMutant(m mutant, dst string, timeout time.Duration) (status, detail string) {
	noApply := func(format string, args ...any) (string, string) {
		return "NO APPLY", fmt.Sprintf("mutant %s does not apply: ", m.name) + fmt.Sprintf(format, args...)
	}
	for _, e := range m.edits {
		p := filepath.Join(dst, e.file)
		b, err := os.ReadFile(p)
		if err != nil {
			return noApply("%v", err)
		}
		if n := bytes.Count(b, []byte(e.old)); n != 1 {
			return noApply("its text occurs %d times in %s, want once: the code moved, update the mutant", n, e.file)
		}
		if err := os.WriteFile(p, bytes.Replace(b, []byte(e.old), []byte(e.new), 1), 0o644); err != nil {
			return noApply("%v", err)
		}
	}
	if m.generate && len(genTargets(m)) == 0 {
		return noApply("generate: yes, but it changes no spec/*.yaml")
	}
	for _, t := range genTargets(m) {
		before, _ := snapshot(filepath.Join(dst, t.pkg))
		line := fmt.Sprintf("go run ./gen -spec %s -out %s -pkg %s", t.spec, t.pkg, t.pkg)
		if out, err := command(dst, 10*time.Minute, line); err != nil {
			return noApply("regenerating %s: %v\n%s", t.pkg, err, out)
		}
		after, _ := snapshot(filepath.Join(dst, t.pkg))
		if before == after {
			return noApply("regenerating %s from the changed spec changed no generated file", t.pkg)
		}
	}
	if out, err := command(dst, 10*time.Minute, "go build ./... && go vet "+strings.Join(changedPkgs(m), " ")); err != nil {
		return noApply("it does not build or vet:\n%s", out)
	}
	out, err := command(dst, timeout, m.test)
	if err == nil {
		return "LIVED", ""
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "KILLED", "timed out:\n" + out
	}
	return "KILLED", out
}

// genTarget is a spec file and the package generated from it.
type genTarget struct{ spec, pkg string }

// genTargets returns the specs that m changes and their packages, when m
// regenerates: spec/conntrack.yaml makes ctnetlink, spec/NAME.yaml makes
// package NAME (the Makefile's SPECS).
func genTargets(m mutant) []genTarget {
	if !m.generate {
		return nil
	}
	var ts []genTarget
	for _, e := range m.edits {
		dir, file := filepath.Split(e.file)
		name, ok := strings.CutSuffix(file, ".yaml")
		if filepath.Clean(dir) != "spec" || !ok || slices.ContainsFunc(ts, func(t genTarget) bool { return t.spec == e.file }) {
			continue
		}
		pkg := name
		if name == "conntrack" {
			pkg = "ctnetlink"
		}
		ts = append(ts, genTarget{spec: e.file, pkg: pkg})
	}
	return ts
}

// checkApply reports every mutant whose text does not occur exactly once
// in the work tree.
func checkApply(ms []mutant) error {
	bad := 0
	for _, m := range ms {
		for _, e := range m.edits {
			b, err := os.ReadFile(e.file)
			if err != nil {
				return err
			}
			if n := bytes.Count(b, []byte(e.old)); n != 1 {
				fmt.Printf("mutant %s does not apply: its text occurs %d times in %s, want once\n", m.name, n, e.file)
				bad++
			}
		}
	}
	fmt.Printf("%d mutants, %d edits that do not apply\n", len(ms), bad)
	if bad > 0 {
		return fmt.Errorf("%d edits do not apply", bad)
	}
	return nil
}

// command runs a shell command line in dir with CTSPEC_REQUIRE_KERNEL=1.
func command(dir string, timeout time.Duration, line string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", line)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CTSPEC_REQUIRE_KERNEL=1", "CTSPEC_SKIP_KERNEL=")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), ctx.Err()
	}
	return string(out), err
}

// snapshot returns the concatenated contents of the zz_generated files in
// dir, to tell whether regeneration changed them.
func snapshot(dir string) (string, error) {
	ps, err := filepath.Glob(filepath.Join(dir, "zz_generated_*"))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range ps {
		c, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		b.Write(c)
	}
	return b.String(), nil
}

// copyRepo copies the tracked and untracked, not ignored, files of the git
// repository at root to dst.
func copyRepo(root, dst string) error {
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		return fmt.Errorf("listing the repository's files: %w", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree
		}
		if err != nil {
			return err
		}
		st, err := os.Stat(filepath.Join(root, f))
		if err != nil {
			return err
		}
		p := filepath.Join(dst, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, st.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

// parseFile reads a mutant file.
func parseFile(path string) (mutant, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return mutant{}, err
	}
	m, err := parse(string(b))
	if err != nil {
		return mutant{}, fmt.Errorf("%s: %w", path, err)
	}
	m.name = strings.TrimSuffix(filepath.Base(path), ".mutant")
	return m, nil
}

// parse parses the text of a mutant file.
func parse(s string) (mutant, error) {
	var m mutant
	var desc []string
	lines := strings.SplitAfter(s, "\n")
	file := ""
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\n")
		switch {
		case strings.HasPrefix(l, "#"):
			desc = append(desc, strings.TrimSpace(strings.TrimPrefix(l, "#")))
		case strings.HasPrefix(l, "test:"):
			m.test = strings.TrimSpace(strings.TrimPrefix(l, "test:"))
		case strings.HasPrefix(l, "generate:"):
			m.generate = strings.TrimSpace(strings.TrimPrefix(l, "generate:")) == "yes"
		case strings.HasPrefix(l, "file:"):
			file = strings.TrimSpace(strings.TrimPrefix(l, "file:"))
		case l == "<<<":
			if file == "" {
				return m, fmt.Errorf("line %d: <<< before file:", i+1)
			}
			var old, new strings.Builder
			cur := &old
			j := i + 1
			for ; j < len(lines) && strings.TrimRight(lines[j], "\n") != ">>>"; j++ {
				if strings.TrimRight(lines[j], "\n") == "===" {
					cur = &new
					continue
				}
				cur.WriteString(lines[j])
			}
			if j == len(lines) || cur != &new {
				return m, fmt.Errorf("line %d: want <<< old === new >>>", i+1)
			}
			if old.Len() == 0 {
				return m, fmt.Errorf("line %d: empty text to replace", i+1)
			}
			m.edits = append(m.edits, edit{file: file, old: old.String(), new: new.String()})
			i = j
		case strings.TrimSpace(l) == "":
		default:
			return m, fmt.Errorf("line %d: unexpected %q", i+1, l)
		}
	}
	m.desc = strings.Join(desc, " ")
	switch {
	case m.test == "":
		return m, errors.New("no test: line")
	case len(m.edits) == 0:
		return m, errors.New("no change")
	case m.desc == "":
		return m, errors.New("no description")
	}
	return m, nil
}
