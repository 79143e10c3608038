package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Report is everything one invocation measured; -json prints it as is.
type Report struct {
	Machine   Machine    `json:"machine"`
	Runs      int        `json:"runs"`
	Quick     bool       `json:"quick"`
	Rows      []Row      `json:"rows"`
	Baselines []Baseline `json:"baselines"`
	Profiles  []Profile  `json:"profiles"`
	Notes     []string   `json:"notes,omitempty"`
	Leftovers []string   `json:"leftovers,omitempty"` // objects the product's cleanup left (swept by the bench)
}

// Machine says where the figures come from.
type Machine struct {
	Date          string  `json:"date"`
	CPUs          int     `json:"cpus"`
	MemoryGiB     float64 `json:"memory_gib"`
	Kernel        string  `json:"kernel"`
	DockerVersion string  `json:"docker_version"`
	DockerAPI     string  `json:"docker_api"`
	GoVersion     string  `json:"go_version"`
	Commit        string  `json:"commit,omitempty"`
	LoadStart     string  `json:"load_start"`    // 1-minute load average when the run began
	LoadEnd       string  `json:"load_end"`      // and when it ended
	OtherRunning  int     `json:"other_running"` // containers running on the Engine at start, not the bench's
}

// Row is one figure: dind-executor's, the baseline's (measured in the same
// invocation) or a quoted reference, and the target.
type Row struct {
	Section        string   `json:"section"`
	Key            string   `json:"key"`
	Name           string   `json:"name"`
	Unit           string   `json:"unit"`
	Product        *Stat    `json:"dind_executor"`
	Baseline       *Stat    `json:"baseline,omitempty"`
	BaselineKey    string   `json:"baseline_key,omitempty"`
	Reference      *float64 `json:"reference,omitempty"` // quoted, not measured here
	ReferenceName  string   `json:"reference_name,omitempty"`
	HigherIsBetter bool     `json:"higher_is_better,omitempty"`
	Target         string   `json:"target,omitempty"`
	Met            *bool    `json:"met,omitempty"`
	Note           string   `json:"note,omitempty"`
}

// Ratio is dind-executor's median over the baseline's (or the reference).
func (r Row) Ratio() (float64, bool) {
	if r.Product == nil {
		return 0, false
	}
	var other float64
	switch {
	case r.Baseline != nil:
		other = r.Baseline.Median
	case r.Reference != nil:
		other = *r.Reference
	default:
		return 0, false
	}
	if other == 0 {
		return 0, false
	}
	return r.Product.Median / other, true
}

// Baseline describes what a baseline column was.
type Baseline struct {
	Key         string `json:"key"`
	Description string `json:"description"`
}

// Profile breaks a figure down: either milestones in time order with their
// median offset from the start (Steps), or parts with one median value per
// column (Parts), e.g. CPU per process.
type Profile struct {
	Title   string   `json:"title"`
	Why     string   `json:"why"` // which target it explains
	Steps   []Step   `json:"steps,omitempty"`
	Columns []string `json:"columns,omitempty"`
	Parts   []Part   `json:"parts,omitempty"`
	Reading string   `json:"reading"`
	Unit    string   `json:"unit"`
	Total   float64  `json:"total,omitempty"`
}

// Part is one line of a breakdown profile.
type Part struct {
	Name   string    `json:"name"`
	Values []float64 `json:"values"` // median per column
	N      int       `json:"n"`
}

// Step is one milestone: its median offset from the start and the median
// time since the previous milestone.
type Step struct {
	Name  string  `json:"name"`
	At    float64 `json:"at"`
	Delta float64 `json:"delta"`
	N     int     `json:"n"`
}

func boolPtr(b bool) *bool { return &b }

// format prints v in unit with sensible precision.
func format(v float64, unit string) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	switch unit {
	case "s":
		if v < 1 {
			return fmt.Sprintf("%.3f s", v)
		}
		return fmt.Sprintf("%.2f s", v)
	case "ms":
		if v >= 100 {
			return fmt.Sprintf("%.0f ms", v)
		}
		return fmt.Sprintf("%.1f ms", v)
	case "MB/s":
		return fmt.Sprintf("%.0f MB/s", v)
	case "MB":
		return fmt.Sprintf("%.1f MB", v)
	case "x":
		return fmt.Sprintf("%.1f×", v)
	case "%core":
		return fmt.Sprintf("%.0f%%", v)
	}
	return fmt.Sprintf("%.3g %s", v, unit)
}

func formatStat(s *Stat, unit string) string {
	if s == nil {
		return "-"
	}
	if s.N == 1 {
		return format(s.Median, unit)
	}
	return fmt.Sprintf("%s [%s–%s]", format(s.Median, unit), trimUnit(format(s.Min, unit), unit), trimUnit(format(s.Max, unit), unit))
}

func trimUnit(s, unit string) string {
	return strings.TrimSuffix(strings.TrimSuffix(s, " "+unit), unit)
}

func (r Row) status() string {
	switch {
	case r.Met == nil:
		return ""
	case *r.Met:
		return "met"
	default:
		return "NOT MET"
	}
}

func (r Row) ratioText() string {
	ratio, ok := r.Ratio()
	if !ok {
		return ""
	}
	text := fmt.Sprintf("%.2f", ratio)
	switch {
	case r.HigherIsBetter && ratio >= 1, !r.HigherIsBetter && ratio > 0 && ratio <= 1:
		better := ratio
		if !r.HigherIsBetter {
			better = 1 / ratio
		}
		text += fmt.Sprintf(" (%.1f× better)", better)
	case ratio > 0:
		worse := 1 / ratio
		if !r.HigherIsBetter {
			worse = ratio
		}
		text += fmt.Sprintf(" (%.1f× worse)", worse)
	}
	return text
}

// sort puts rows in section order and baselines by key; sections are
// measured in a different order than they are numbered.
func (rep *Report) sort() {
	sort.SliceStable(rep.Rows, func(i, j int) bool { return rep.Rows[i].Section < rep.Rows[j].Section })
	sort.SliceStable(rep.Baselines, func(i, j int) bool { return rep.Baselines[i].Key < rep.Baselines[j].Key })
}

// writeText prints the report as tables for people.
func (rep *Report) writeText(w io.Writer) {
	rep.sort()
	m := rep.Machine
	fmt.Fprintf(w, "dind-executor benchmark, %s\n", m.Date)
	fmt.Fprintf(w, "machine: %d CPUs, %.1f GiB, kernel %s, Docker Engine %s (API %s), %s", m.CPUs, m.MemoryGiB, m.Kernel, m.DockerVersion, m.DockerAPI, m.GoVersion)
	if m.Commit != "" {
		fmt.Fprintf(w, ", commit %s", m.Commit)
	}
	fmt.Fprintf(w, "\nload: 1-min load average %s at start, %s at end; %d other containers running on the Engine at start", m.LoadStart, m.LoadEnd, m.OtherRunning)
	if busy(m.LoadStart, m.CPUs) || busy(m.LoadEnd, m.CPUs) {
		fmt.Fprintf(w, "\nWARNING: the host was busy (load above its %d CPUs): figures are slower and noisier than on an idle machine", m.CPUs)
	}
	mode := ""
	if rep.Quick {
		mode = " (-quick: smoke run, figures are indicative only)"
	}
	fmt.Fprintf(w, "\nruns: %d%s; each cell is median [min–max] over n samples; ratio = dind-executor ÷ baseline (or ÷ quoted reference)\n\n", rep.Runs, mode)

	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tfigure\tn\tdind-executor\tbaseline\tratio\ttarget\tstatus")
	section := ""
	for _, r := range rep.Rows {
		if r.Section != section && section != "" {
			fmt.Fprintln(tw, "\t\t\t\t\t\t\t")
		}
		sec := ""
		if r.Section != section {
			sec = r.Section
			section = r.Section
		}
		n := ""
		if r.Product != nil {
			n = fmt.Sprint(r.Product.N)
		}
		base := formatStat(r.Baseline, r.Unit)
		if r.Baseline != nil && r.BaselineKey != "" {
			key := r.BaselineKey
			if r.Product != nil && r.Baseline.N != r.Product.N {
				key += fmt.Sprintf(", n=%d", r.Baseline.N)
			}
			base += " (" + key + ")"
		}
		if r.Reference != nil {
			base = format(*r.Reference, r.Unit) + " (" + r.ReferenceName + ")"
		}
		if r.Baseline == nil && r.Reference == nil {
			base = ""
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sec, r.Name, n, formatStat(r.Product, r.Unit), base, r.ratioText(), r.Target, r.status())
	}
	tw.Flush()
	for _, line := range strings.Split(strings.TrimRight(table.String(), "\n"), "\n") {
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}

	fmt.Fprintln(w, "\nbaselines (measured in this run unless marked):")
	for _, b := range rep.Baselines {
		fmt.Fprintf(w, "  %s: %s\n", b.Key, b.Description)
	}
	var notes []string
	for _, r := range rep.Rows {
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s %s: %s", r.Section, r.Name, r.Note))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nrow notes:")
		fmt.Fprintln(w, strings.Join(notes, "\n"))
	}

	met, total := 0, 0
	for _, r := range rep.Rows {
		if r.Met != nil {
			total++
			if *r.Met {
				met++
			}
		}
	}
	fmt.Fprintf(w, "\ntargets: %d of %d met\n", met, total)

	for _, p := range rep.Profiles {
		fmt.Fprintf(w, "\nprofile: %s\n", p.Title)
		if p.Why != "" {
			fmt.Fprintf(w, "  (%s)\n", p.Why)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if len(p.Steps) > 0 {
			fmt.Fprintf(tw, "  milestone\tat (median)\tstep (median)\tn\n")
			for _, s := range p.Steps {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", s.Name, format(s.At, p.Unit), format(s.Delta, p.Unit), s.N)
			}
		}
		if len(p.Parts) > 0 {
			fmt.Fprintf(tw, "  part\t%s\tn\n", strings.Join(p.Columns, "\t"))
			for _, part := range p.Parts {
				var cells []string
				for _, v := range part.Values {
					cells = append(cells, format(v, p.Unit))
				}
				fmt.Fprintf(tw, "  %s\t%s\t%d\n", part.Name, strings.Join(cells, "\t"), part.N)
			}
		}
		tw.Flush()
		if p.Reading != "" {
			fmt.Fprintf(w, "  reading: %s\n", p.Reading)
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
	if len(rep.Leftovers) > 0 {
		fmt.Fprintf(w, "\nWARNING: %d objects of sandboxes were still there after their cleanup hook (removed by the bench's sweep): %s\n", len(rep.Leftovers), strings.Join(rep.Leftovers, ", "))
	}
}

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

func busy(load string, cpus int) bool {
	v, err := strconv.ParseFloat(load, 64)
	return err == nil && v > float64(cpus)
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
