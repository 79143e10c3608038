package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
)

// allSections are the sections -only can name, in run order.
var allSections = []string{"prepare", "cleanup", "profiles", "pool", "stage", "output", "job", "seed", "runnerimage", "concurrent", "cancel", "hosts"}

// options are the command line.
type options struct {
	runs        int
	quick       bool
	json        bool
	jsonFile    string
	render      string
	concurrency int
	binary      string
	sections    map[string]bool
}

func parseOptions(args []string) (options, error) {
	var o options
	var only string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.runs, "runs", 5, "samples per figure (the empty-stage rows take 4× as many; the concurrency rows and the CLI's 1 GiB run at most 3, the runner image build at most 2)")
	fs.BoolVar(&o.quick, "quick", false, "short smoke run: 1 run, no 1 GiB output, 2 concurrent jobs")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON on stdout (progress stays on stderr)")
	fs.StringVar(&o.jsonFile, "json-file", "", "also write the JSON report to this file")
	fs.StringVar(&o.render, "render", "", "print the tables of a saved JSON report (from -json or -json-file) and exit; measures nothing")
	fs.StringVar(&only, "only", "", "comma-separated sections to run ("+strings.Join(allSections, ",")+"); default all")
	fs.IntVar(&o.concurrency, "concurrency", 8, "light jobs run at once in the concurrency section")
	fs.StringVar(&o.binary, "binary", "", "use this dind-executor binary instead of building ./cmd/dind-executor")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %v", fs.Args())
	}
	if o.quick {
		o.runs = 1
		o.concurrency = min(o.concurrency, 2)
	}
	if o.runs < 1 || o.concurrency < 1 {
		return o, errors.New("-runs and -concurrency must be at least 1")
	}
	var err error
	o.sections, err = selectSections(only)
	return o, err
}

func selectSections(only string) (map[string]bool, error) {
	sel := map[string]bool{}
	if only == "" {
		for _, s := range allSections {
			sel[s] = true
		}
		return sel, nil
	}
	for _, s := range strings.Split(only, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allSections, s) {
			return nil, fmt.Errorf("unknown section %q (known: %s)", s, strings.Join(allSections, ","))
		}
		sel[s] = true
	}
	return sel, nil
}

// wants says whether any of the named sections was asked for.
func (o options) wants(names ...string) bool {
	for _, n := range names {
		if o.sections[n] {
			return true
		}
	}
	return false
}

// heavyRuns bounds the samples of the slowest rows (8 concurrent jobs, the
// docker CLI streaming 1 GiB) so that a full run stays within minutes.
func (o options) heavyRuns() int { return min(o.runs, maxHeavyRuns) }

const maxHeavyRuns = 3
