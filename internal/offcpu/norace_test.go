//go:build !race

package offcpu

const raceEnabled = false
