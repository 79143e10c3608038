package main

import (
	"math"
	"slices"
	"time"
)

// Stat summarises the samples of one figure.
type Stat struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	N      int       `json:"n"`
	Values []float64 `json:"values"`
}

// summarize returns nil for no samples, so a figure that could not be
// measured shows as missing rather than as zero.
func summarize(values []float64) *Stat {
	if len(values) == 0 {
		return nil
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	n := len(sorted)
	median := sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return &Stat{Median: median, Min: sorted[0], Max: sorted[n-1], N: n, Values: values}
}

// seconds and millis convert durations into the units rows are kept in.
func seconds(d time.Duration) float64 { return d.Seconds() }
func millis(d time.Duration) float64  { return float64(d) / float64(time.Millisecond) }

// megabytes is bytes in MB (10^6), the unit of every size and rate here.
func megabytes(n int64) float64 { return float64(n) / 1e6 }

// medianOf is the median of xs, NaN when empty.
func medianOf(xs []float64) float64 {
	if s := summarize(xs); s != nil {
		return s.Median
	}
	return math.NaN()
}

// milestones collects, per sample, when each named moment happened, and
// turns them into a Profile: the median offset of each moment from the
// sample's start and the median time since the moment before it.
type milestones struct {
	names []string
	rows  [][]float64 // per sample: offset of each milestone in ms, NaN when unseen
}

func newMilestones(names ...string) *milestones { return &milestones{names: names} }

// add records one sample; marks missing from the map count as unseen.
func (m *milestones) add(start time.Time, marks map[string]time.Time) {
	row := make([]float64, len(m.names))
	for i, n := range m.names {
		row[i] = math.NaN()
		if t, ok := marks[n]; ok && !t.IsZero() {
			row[i] = millis(t.Sub(start))
		}
	}
	m.rows = append(m.rows, row)
}

func (m *milestones) profile(title, why, reading string) Profile {
	p := Profile{Title: title, Why: why, Reading: reading, Unit: "ms"}
	for i, n := range m.names {
		var at, delta []float64
		for _, row := range m.rows {
			if math.IsNaN(row[i]) {
				continue
			}
			at = append(at, row[i])
			prev := 0.0
			if i > 0 {
				prev = row[i-1]
			}
			if !math.IsNaN(prev) {
				delta = append(delta, row[i]-prev)
			}
		}
		p.Steps = append(p.Steps, Step{Name: n, At: medianOf(at), Delta: medianOf(delta), N: len(at)})
	}
	if len(p.Steps) > 0 {
		p.Total = p.Steps[len(p.Steps)-1].At
	}
	return p
}

func nan() float64 { return math.NaN() }
