package executor

import (
	"encoding/json"
	"strings"
	"testing"

	"gitlab.com/dind-executor/dind-executor/executor/audit"
)

func TestFitProducedKeepsARecordWithinOneLine(t *testing.T) {
	images := func(n, tagBytes int) []audit.ProducedImage {
		out := make([]audit.ProducedImage, n)
		for i := range out {
			out[i] = audit.ProducedImage{ID: "sha256:x", Tags: []string{strings.Repeat("t", tagBytes)}}
		}
		return out
	}
	cases := []struct {
		name          string
		images        []audit.ProducedImage
		wantImages    func(n int) bool
		wantTruncated bool
	}{
		{"small record unchanged", images(3, 100), func(n int) bool { return n == 3 }, false},
		{"many long tags: a first part kept", images(200, 20<<10), func(n int) bool { return n > 0 && n < 200 }, true},
		{"one tag longer than a line: none kept", images(1, 2<<20), func(n int) bool { return n == 0 }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := audit.Record{Event: audit.EventSandboxProduced, Sandbox: "0123456789abcdef",
				Produced: &audit.Produced{Images: tc.images, Containers: []audit.ProducedContainer{}}}
			fitProduced(&rec)
			line, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			if len(line)+1 > audit.MaxRecordBytes {
				t.Errorf("record is %d bytes, over %d", len(line)+1, audit.MaxRecordBytes)
			}
			if n := len(rec.Produced.Images); !tc.wantImages(n) {
				t.Errorf("%d images kept", n)
			}
			if rec.Produced.Truncated != tc.wantTruncated {
				t.Errorf("truncated = %v, want %v", rec.Produced.Truncated, tc.wantTruncated)
			}
		})
	}
}

func TestCutText(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"}, // é is two bytes: not cut in half
	}
	for _, tc := range cases {
		if got := cutText(tc.in, tc.max); got != tc.want {
			t.Errorf("cutText(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
