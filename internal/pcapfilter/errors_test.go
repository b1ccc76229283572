package pcapfilter

import (
	"errors"
	"strings"
	"testing"
)

func TestErrorsPointAtTheToken(t *testing.T) {
	for _, tc := range []struct {
		expr        string
		want        string // the error starts with this
		also        string // and contains this
		unsupported bool
	}{
		// libpcap syntax we do not compile.
		{"gateway foo", "unsupported: 'gateway' at 1:1; supported: host, net, port, portrange, ", "", true},
		{"ether host 00:11:22:33:44:55", "unsupported: 'ether' at 1:1; link-layer addresses", "supported: host", true},
		{"tcp[13] & 2 != 0", "unsupported: '[' at 1:4; byte-offset", "supported: host", true},
		{"len > 100", "unsupported: 'len' at 1:1;", "", true},
		{"greater 100", "unsupported: 'greater' at 1:1; packet length tests", "", true},
		{"tcp and\n  vlan", "unsupported: 'vlan' at 2:3;", "", true},
		{"igmp", "unsupported: 'igmp' at 1:1; write 'ip proto 2'", "", true},
		{"ip broadcast", "unsupported: 'broadcast' at 1:4;", "", true},
		{"host foo", "unsupported: 'foo' at 1:6; host names are not resolved", "", true},
		{"host 10.0.0.1 or foo.example", "unsupported: 'foo.example' at 1:18; host names", "", true},
		{"port http", "unsupported: 'http' at 1:6; port names are not resolved", "", true},
		{"ip proto \\gre", "unsupported: '\\gre' at 1:10; protocol names", "", true},
		{"host fe80::1%eth0", "unsupported: 'fe80::1%eth0' at 1:6; IPv6 zones (%eth0)", "", true},
		{"protochain 6", "unsupported: 'protochain' at 1:1;", "", true},
		// Values out of range or malformed.
		{"port 70000", "invalid: '70000' at 1:6; port numbers are 0 to 65535", "", false},
		{"port 08", "invalid: '08' at 1:6; a number with a leading 0 is octal", "", false},
		{"portrange 1-70000", "invalid: '1-70000' at 1:11;", "", false},
		{"ip proto 300", "invalid: '300' at 1:10; protocol numbers are 0 to 255", "", false},
		{"net 10.0.0.1/8", "invalid: '10.0.0.1' at 1:5; non-network bits set in '10.0.0.1/8'", "", false},
		{"net 10.0.0.1 mask 255.0.0.0", "invalid: '10.0.0.1' at 1:5; non-network bits set", "", false},
		{"net ::1/64", "invalid: '::1' at 1:5; non-network bits set in '::1/64'", "", false},
		{"net 10.0.0.0/33", "invalid: '33' at 1:14; an IPv4 prefix length is 0 to 32", "", false},
		{"net 2001:db8::/129", "invalid: '129' at 1:16; an IPv6 prefix length is 0 to 128", "", false},
		{"net fe80:: mask ffff::", "invalid: 'ffff::' at 1:17; 'mask' takes IPv4 networks", "", false},
		{"host 1.2.3.256", "invalid: '1.2.3.256' at 1:6; IPv4 address bytes are 0 to 255", "", false},
		{"host 10.1", "invalid: '10.1' at 1:6; not a full address; write 'net 10.1'", "", false},
		{"host 10", "invalid: '10' at 1:6; a bare number is not an address", "", false},
		{"host 10.0.0.0/8", "invalid: '10.0.0.0' at 1:6; host takes one address", "", false},
		{"host 1:2:3", "invalid: '1:2:3' at 1:6; not an IPv6 address", "", false},
		// Qualifiers that do not go together (libpcap refuses them too).
		{"tcp host 1.2.3.4", "invalid: 'tcp' at 1:1; 'tcp' cannot qualify a host", "", false},
		{"ip6 host 1.2.3.4", "invalid: 'ip6' at 1:1; 'ip6' cannot qualify the IPv4 address", "", false},
		{"ip host ::1", "invalid: 'ip' at 1:1; 'ip' cannot qualify the IPv6 address", "", false},
		{"ip port 80", "invalid: 'ip' at 1:1; 'ip' cannot qualify port", "", false},
		{"icmp proto 6", "invalid: 'icmp' at 1:1; 'icmp' cannot qualify proto", "", false},
		{"src proto 6", "syntax error: 'proto' at 1:5; 'proto' takes no direction", "", false},
		// Syntax.
		{"ip proto tcp", "syntax error: 'tcp' at 1:10; a protocol name after 'proto' is escaped: write '\\tcp'", "", false},
		{"port 1000-2000", "syntax error: '1000-2000' at 1:6; a range needs 'portrange 1000-2000'", "", false},
		{"(tcp", "syntax error: end of expression at 1:5; expected ')' to close the '(' at 1:1", "", false},
		{"tcp)", "syntax error: ')' at 1:4; no '(' to close", "", false},
		{"host", "syntax error: end of expression at 1:5; expected an IPv4 or IPv6 address", "", false},
		{"tcp or 443", "syntax error: '443' at 1:8; a value needs a qualifier", "", false},
		{"10.0.0.1", "syntax error: '10.0.0.1' at 1:1; a value needs a qualifier", "", false},
		{"host 1.2.3.4 5.6.7.8", "syntax error: '5.6.7.8' at 1:14; expected 'and', 'or' or the end", "", false},
		{"and", "syntax error: 'and' at 1:1; expected a primitive", "", false},
		{"not", "syntax error: end of expression at 1:4; expected a primitive", "", false},
		{"port 80 or (443 or tcp)", "syntax error: 'tcp' at 1:20; expected a port number", "", false},
		{"\\", "syntax error: '\\' at 1:1;", "", false},
		{"tcp port 80 and ü", "unsupported: 'ü' at 1:17; port names", "", true}, // columns count characters
		{"HOST 10.0.0.1", "syntax error: 'HOST' at 1:1; keywords are lower case: write 'host'", "", false},
		{"host 10.0.0.1 and (port 80) or 443", "invalid: '443' at 1:32; a bare number is not an address", "", false}, // libpcap: host 0.0.1.187
		{"héllo and tcp", "syntax error: 'héllo' at 1:1;", "", false},
		{"tcp and\n\xffhost", "syntax error: '\"\\xff\"' at 2:1; the expression is not valid UTF-8", "", false},
	} {
		_, err := Compile(tc.expr, LinkTypeEthernet, 0)
		if err == nil {
			t.Errorf("%q: compiled; want error %q", tc.expr, tc.want)
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: error %v is a %T, not *Error", tc.expr, err, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.also) {
			t.Errorf("%q:\n got %q\nwant %q…%q", tc.expr, err, tc.want, tc.also)
		}
		if got := errors.Is(err, ErrUnsupported); got != tc.unsupported {
			t.Errorf("%q: errors.Is(err, ErrUnsupported) = %v, want %v (%v)", tc.expr, got, tc.unsupported, err)
		}
	}
}

func TestOtherErrors(t *testing.T) {
	if _, err := Compile("tcp", LinkType(9999), 0); err == nil || !strings.Contains(err.Error(), "LinkType(9999): not supported") {
		t.Errorf("unknown link type: %v", err)
	}
	if _, err := Compile("arp", LinkTypeRaw, 0); err == nil || !strings.Contains(err.Error(), "rejects all packets") {
		t.Errorf("arp on raw IP: %v", err)
	}
	for _, e := range []string{"ip and ip6", "icmp and icmp6", "arp and port 80", "ip6 and host 10.0.0.1 and ip", "not ip and icmp"} {
		if _, err := Compile(e, LinkTypeEthernet, 0); err == nil || err.Error() != "expression rejects all packets on link type EN10MB" {
			t.Errorf("%q: %v", e, err)
		}
	}
	if _, err := Compile("not arp", LinkTypeRaw, 0); err != nil {
		t.Errorf("not arp on raw IP: %v", err)
	}
	// Far beyond the kernel's 4096 instructions.
	big := "port 1" + strings.Repeat(" or 1", 600)
	if _, err := Compile(big, LinkTypeEthernet, 0); err == nil || !strings.Contains(err.Error(), "filter too large") {
		t.Errorf("600 ports: %v", err)
	}
}
