package main

import (
	"fmt"
	"math"
	"strings"
)

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
