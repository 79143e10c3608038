package main

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

// row is the row with key, nil when that section did not run.
func (rep *Report) row(key string) *Row {
	for i := range rep.Rows {
		if rep.Rows[i].Key == key {
			return &rep.Rows[i]
		}
	}
	return nil
}
