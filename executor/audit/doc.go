// Package audit is the executor's audit trail: one JSON object per line
// (JSON Lines) in an append-only file, one record per event of a sandbox's
// life (created, stage finished, what it produced, destroyed).
//
// Records are built from typed fields only: no job variable, script, command
// line or environment ever reaches them, so the trail holds no secrets.
// Appends are atomic across processes (an exclusive flock around a single
// O_APPEND write), so concurrent jobs never tear each other's lines, and the
// reader skips and counts a line torn by a crash instead of failing.
package audit
