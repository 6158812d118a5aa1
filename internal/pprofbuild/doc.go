// Package pprofbuild builds pprof profiles (github.com/google/pprof/profile)
// from JFR stacks and symbolized native and kernel frames, with one naming
// convention for every lockscope output: Java frames as "pkg.Class.method"
// with their line, native frames by bare symbol (the library in the
// function's system name), kernel frames suffixed "_[k]" as async-profiler
// writes them, and synthetic frames (threads, lock classes) in brackets.
//
// Functions and locations are deduplicated by name and line; JFR frames are
// first looked up by their resolved method (pointer identity within a
// chunk), so a name is formatted once per method per chunk. Equal samples
// (same locations and labels) are merged by adding their values.
//
// A Builder is not safe for concurrent use. Profile returns the finished
// profile, checked with CheckValid; the Builder must not be used after it.
package pprofbuild
