package main

import (
	"errors"
	"fmt"
)

// This file reads kernel UAPI headers well enough to list their enums and
// integer #defines. It is not a C compiler: it knows enum bodies, #define
// lines, comments and integer constant expressions, and skips everything else.
// It never panics on input; what it cannot understand it reports with the file
// and line, and it keeps going.

// Header is what one header file declares.
type Header struct {
	File    string
	Enums   []*Enum
	Defines []*Define // integer constants; a #define naming an enumerator becomes a member of its enum
}

// Enum is one enum declaration.
type Enum struct {
	Name    string // the tag without "enum "; "" for an anonymous enum
	Line    int
	Members []*Enumerator
}

// Enumerator is one member of an enum, or a #define naming one.
type Enumerator struct {
	Name     string
	Value    int64
	Known    bool   // Value was evaluated; false after an error
	Explicit bool   // the value is written out ("= expr") or it is a #define alias
	AliasOf  string // the member this one names, as in "A = B," or "#define A B"
	Define   bool   // this alias is a #define
	Sentinel bool   // a bound such as __CTA_MAX, not a real member
	Line     int
	Doc      string // comments above and beside the member, as doc candidates

	file  string
	expr  []token
	prev  *Enumerator
	state evalState
	err   error
}

// Define is one object-like #define.
type Define struct {
	Name     string
	Value    int64
	Known    bool // the body is an integer constant expression we could evaluate
	Sentinel bool // a bound such as CTA_MAX (__CTA_MAX - 1)
	Run      int  // #defines with only comments between them share a Run
	Line     int
	Doc      string

	file  string
	body  []token
	enum  *Enum // the enum whose body holds the #define, if any
	index int   // members of enum parsed before the #define
	state evalState
}

type evalState uint8

const (
	unevaluated evalState = iota
	evaluating
	evaluated
)

// posError is a problem at a line of a header.
type posError struct {
	File string
	Line int
	Msg  string
}

func (e *posError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// parseHeader parses and evaluates one header on its own. It returns what it
// could read even when it also returns an error.
func parseHeader(file string, src []byte) (*Header, error) {
	h, errs := scanHeader(file, src)
	errs = append(errs, evalHeaders([]*Header{h})...)
	return h, errors.Join(errs...)
}
