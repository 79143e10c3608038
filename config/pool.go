package config

// Pool is the opt-in warm pool: daemons started ahead of jobs so prepare
// only creates the job's containers. Each pooled daemon has its own
// network and CA and serves exactly one job.
type Pool struct {
	// Size is how many ready daemons to keep; 0 turns the pool off.
	Size int `toml:"size"`
}

// maxPoolSize keeps an idle pool from eating the host: each daemon is a
// dockerd with its own data root.
const maxPoolSize = 16

func (p Pool) validate(add addFunc) {
	if p.Size < 0 || p.Size > maxPoolSize {
		add("pool.size = %d is out of range: use 0 (no pool) to %d", p.Size, maxPoolSize)
	}
}
