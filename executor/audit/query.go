package audit

import (
	"strconv"
	"time"
)

// Query selects records; zero fields match everything.
type Query struct {
	JobID int64
	// Project is a project id or a project path ("group/app").
	Project string
	// Since keeps records at or after this time.
	Since   time.Time
	Sandbox string
}

// Match reports whether r is selected by q.
func (q Query) Match(r Record) bool {
	if q.JobID != 0 && r.Job.ID != q.JobID {
		return false
	}
	if q.Project != "" && !q.matchProject(r.Job) {
		return false
	}
	if !q.Since.IsZero() && r.Time.Before(q.Since) {
		return false
	}
	if q.Sandbox != "" && r.Sandbox != q.Sandbox {
		return false
	}
	return true
}

func (q Query) matchProject(j JobRef) bool {
	if id, err := strconv.ParseInt(q.Project, 10, 64); err == nil {
		return j.ProjectID == id
	}
	return j.ProjectPath == q.Project
}
