package config

import (
	"strings"
	"testing"
	"time"
)

func TestDurationText(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"60s", time.Minute, false},
		{"2m30s", 150 * time.Second, false},
		{"1h", time.Hour, false},
		{"60", 0, true}, // no unit: ambiguous, rejected
		{"", 0, true},
		{"soon", 0, true},
	}
	for _, tc := range cases {
		var d Duration
		err := d.UnmarshalText([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("UnmarshalText(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), `"`+tc.in+`"`) {
				t.Errorf("UnmarshalText(%q) error %q does not quote the value", tc.in, err)
			}
			continue
		}
		if d.Duration != tc.want {
			t.Errorf("UnmarshalText(%q) = %v, want %v", tc.in, d.Duration, tc.want)
		}
		out, _ := d.MarshalText()
		var back Duration
		if err := back.UnmarshalText(out); err != nil || back != d {
			t.Errorf("round trip of %q via %q = %v, %v", tc.in, out, back, err)
		}
	}
}
