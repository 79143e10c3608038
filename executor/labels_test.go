package executor

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// Every label key labels.go declares is one an image may not carry: a key
// added there without being added to isObjectLabel fails here.
func TestEveryDeclaredLabelIsAnObjectLabel(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "labels.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := 0
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Values) != 1 {
			return true
		}
		bin, ok := spec.Values[0].(*ast.BinaryExpr)
		if !ok {
			return true
		}
		prefix, isPrefix := bin.X.(*ast.Ident)
		lit, isLit := bin.Y.(*ast.BasicLit)
		if !isPrefix || prefix.Name != "labelPrefix" || !isLit {
			return true
		}
		suffix, _ := strconv.Unquote(lit.Value)
		declared++
		if key := labelPrefix + suffix; !isObjectLabel(key) {
			t.Errorf("%s (%s) is declared in labels.go but isObjectLabel does not list it", spec.Names[0].Name, key)
		}
		return true
	})
	if declared < 20 {
		t.Errorf("found only %d label declarations in labels.go: the test no longer reads it right", declared)
	}
	for _, key := range []string{"io.dind-executor.test.image", "org.opencontainers.image.source", strings.TrimSuffix(labelPrefix, ".")} {
		if isObjectLabel(key) {
			t.Errorf("isObjectLabel(%q) = true, want false", key)
		}
	}
}
