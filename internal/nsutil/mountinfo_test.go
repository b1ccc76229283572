package nsutil

import (
	"strings"
	"testing"
)

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:            "/plain",
		`/a\040b`:           "/a b",
		`/tab\011nl\012`:    "/tab\tnl\n",
		`/back\134slash`:    `/back\slash`,
		`/short\04`:         `/short\04`,
		`/not\999octal`:     `/not\999octal`,
		`/overflow\400`:     `/overflow\400`,
		`/end\`:             `/end\`,
		`/two\040\040space`: "/two  space",
	} {
		if got := UnescapeMountinfo(in); got != want {
			t.Errorf("UnescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzUnescapeMountinfo(f *testing.F) {
	f.Add(`/a\040b`)
	f.Add(`\134\`)
	f.Fuzz(func(t *testing.T, in string) {
		out := UnescapeMountinfo(in)
		if len(out) > len(in) {
			t.Fatalf("UnescapeMountinfo(%q) = %q grew", in, out)
		}
		if !strings.Contains(in, `\`) && out != in {
			t.Fatalf("UnescapeMountinfo(%q) = %q changed a string without escapes", in, out)
		}
	})
}
