package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
)

func (rep *Report) writeJSON(w io.Writer) error {
	rep.sort()
	// JSON has no NaN: a milestone no sample saw is written as 0 with n 0.
	for i := range rep.Profiles {
		for j := range rep.Profiles[i].Steps {
			st := &rep.Profiles[i].Steps[j]
			if math.IsNaN(st.At) || math.IsNaN(st.Delta) {
				st.At, st.Delta, st.N = 0, 0, 0
			}
		}
		if math.IsNaN(rep.Profiles[i].Total) {
			rep.Profiles[i].Total = 0
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// render prints the tables of a report saved with -json or -json-file.
func render(path string, w io.Writer) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return fmt.Errorf("%s is not a bench report: %w", path, err)
	}
	rep.writeText(w)
	return nil
}
