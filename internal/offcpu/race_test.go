//go:build race

package offcpu

// raceEnabled: the race runtime adds its own code to the helper's stacks.
const raceEnabled = true
