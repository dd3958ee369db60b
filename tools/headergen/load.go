package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ctspec/ctspec/internal/spec"
)

// input is a loaded spec with the headers it depends on.
type input struct {
	specPath string
	specSrc  []byte
	spec     *spec.Spec
	include  string
	headers  []*Header
	errs     []error  // what the headers do not let us read, with file and line
	notes    []string // for -v
}

// load reads the spec and every header it depends on: its uapi-header, each
// definition's header and the header of the multicast groups.
func load(specPath, include string) (*input, error) {
	src, err := os.ReadFile(specPath)
	if err != nil {
		return nil, err
	}
	s, err := spec.Parse(specPath, src)
	if err != nil {
		return nil, err
	}
	in := &input{specPath: specPath, specSrc: src, spec: s, include: include}
	if s.UAPIHeader == "" {
		return nil, fmt.Errorf("%s: uapi-header is missing", specPath)
	}
	rels := []string{s.UAPIHeader}
	for _, d := range s.Definitions {
		if d.Header != "" {
			rels = append(rels, d.Header)
		}
	}
	rels = append(rels, groupsHeader)
	seen := map[string]bool{}
	for i, rel := range rels {
		if seen[rel] {
			continue
		}
		seen[rel] = true
		path := filepath.Join(include, rel)
		b, err := os.ReadFile(path)
		switch {
		case err != nil && i == 0:
			return nil, err
		case errors.Is(err, os.ErrNotExist):
			in.notes = append(in.notes, fmt.Sprintf("%s: not found; the spec may be newer than these headers", path))
			continue
		case err != nil:
			return nil, err
		}
		h, errs := scanHeader(path, b)
		in.errs = append(in.errs, errs...)
		in.headers = append(in.headers, h)
	}
	in.errs = append(in.errs, evalHeaders(in.headers)...)
	return in, nil
}

// uapiHeader returns the parsed uapi-header.
func (in *input) uapiHeader() *Header {
	if len(in.headers) == 0 {
		return nil
	}
	return in.headers[0]
}
