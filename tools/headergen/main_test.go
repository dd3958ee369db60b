package main

import (
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunCommandLine(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // "" for flag.ErrHelp
	}{
		{name: "no subcommand", args: nil, wantErr: "want a subcommand, check or sync"},
		{name: "unknown subcommand", args: []string{"gen"}, wantErr: "want a subcommand, check or sync"},
		{name: "help", args: []string{"-h"}},
		{name: "subcommand help", args: []string{"check", "-h"}},
		{name: "extra arguments", args: []string{"check", "x"}, wantErr: `unexpected arguments ["x"]`},
		{name: "-kernel is for sync", args: []string{"check", "-kernel", "6.19"}, wantErr: "flag provided but not defined: -kernel"},
		{name: "missing spec", args: []string{"check", "-spec", filepath.Join("testdata", "none.yaml")}, wantErr: "no such file or directory"},
		{name: "missing uapi-header", args: []string{"check", "-spec", filepath.Join("testdata", "spec.yaml"), "-include", "testdata"}, wantErr: "nfnetlink_conntrack.h: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runTool(tt.args...)
			switch {
			case tt.wantErr == "":
				if !errors.Is(err, flag.ErrHelp) {
					t.Errorf("run(%q) = %v, want flag.ErrHelp", tt.args, err)
				}
			case err == nil || !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}
