package pcapfilter

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

type tokKind int

const (
	tEOF    tokKind = iota
	tWord           // keyword, number, address, range or name
	tLParen         // (
	tRParen         // )
	tNot            // !
	tAnd            // &&
	tOr             // ||
	tSlash          // /
	tOther          // any other punctuation: relational and arithmetic operators, [ ], …
)

type token struct {
	kind      tokKind
	text      string // as written (for an escaped word, without the backslash)
	line, col int
	escaped   bool // a word written with a leading backslash (\tcp)
}

// shown is the token as the user wrote it, for error messages.
func (t token) shown() string {
	if t.kind == tEOF {
		return ""
	}
	if t.escaped {
		return `\` + t.text
	}
	return t.text
}

func isWordRune(r rune) bool {
	return r == '_' || r == '.' || r == ':' || r == '-' || r == '%' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// lex splits expr into tokens, ending with a tEOF token. It fails only on a
// lone backslash.
func lex(expr string) ([]token, error) {
	if !utf8.ValidString(expr) {
		line, col := 1, 1
		for i, r := range expr {
			if r == utf8.RuneError {
				if _, size := utf8.DecodeRuneInString(expr[i:]); size == 1 {
					return nil, &Error{Line: line, Col: col, Token: fmt.Sprintf("%+q", expr[i:i+1]), kind: kindSyntax,
						Msg: "the expression is not valid UTF-8"}
				}
			}
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
	}
	rs := []rune(expr)
	var toks []token
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for range n {
			if rs[i] == '\n' {
				line++
				col = 1
			} else {
				col++
			}
			i++
		}
	}
	for i < len(rs) {
		r := rs[i]
		if unicode.IsSpace(r) {
			adv(1)
			continue
		}
		t := token{line: line, col: col}
		two := ""
		if i+1 < len(rs) {
			two = string(rs[i : i+2])
		}
		switch {
		case r == '(':
			t.kind, t.text = tLParen, "("
			adv(1)
		case r == ')':
			t.kind, t.text = tRParen, ")"
			adv(1)
		case r == '/':
			t.kind, t.text = tSlash, "/"
			adv(1)
		case two == "&&":
			t.kind, t.text = tAnd, two
			adv(2)
		case two == "||":
			t.kind, t.text = tOr, two
			adv(2)
		case two == "!=" || two == "<=" || two == ">=" || two == "==" || two == "<<" || two == ">>":
			t.kind, t.text = tOther, two
			adv(2)
		case r == '!':
			t.kind, t.text = tNot, "!"
			adv(1)
		case r == '\\':
			j := i + 1
			for j < len(rs) && isWordRune(rs[j]) {
				j++
			}
			if j == i+1 {
				return nil, &Error{Line: line, Col: col, Token: `\`, kind: kindSyntax,
					Msg: `a backslash escapes a keyword used as a name, as in 'ip proto \tcp'`}
			}
			t.kind, t.text, t.escaped = tWord, string(rs[i+1:j]), true
			adv(j - i)
		case isWordRune(r):
			j := i
			for j < len(rs) && isWordRune(rs[j]) {
				j++
			}
			t.kind, t.text = tWord, string(rs[i:j])
			adv(j - i)
		default:
			t.kind, t.text = tOther, string(r)
			adv(1)
		}
		toks = append(toks, t)
	}
	return append(toks, token{kind: tEOF, line: line, col: col}), nil
}
