package main

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

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

// busy says whether a load average exceeded the CPU count.
func busy(load string, cpus int) bool {
	v, err := strconv.ParseFloat(load, 64)
	return err == nil && v > float64(cpus)
}
