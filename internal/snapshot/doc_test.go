package snapshot

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestJSONFieldsDocumented keeps docs/IFSTAT_JSON.md and docs/TOP_JSON.md
// complete: every JSON field of the Snapshot must be named in one of them.
func TestJSONFieldsDocumented(t *testing.T) {
	var doc []byte
	for _, f := range []string{"../../docs/IFSTAT_JSON.md", "../../docs/TOP_JSON.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc = append(doc, b...)
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Slice || typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ.PkgPath() != reflect.TypeFor[Snapshot]().PkgPath() {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no JSON name", typ.Name(), f.Name)
				continue
			}
			if !strings.Contains(string(doc), "`"+name+"`") {
				t.Errorf("docs/IFSTAT_JSON.md and TOP_JSON.md do not document %s (%s.%s)", name, typ.Name(), f.Name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Snapshot]())
}
