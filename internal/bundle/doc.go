// Package bundle is the contract between capturing and understanding: a
// directory holding every raw input of one capture (the JFR recording, the
// off-CPU intervals, the requests and SLO windows) and a self-describing,
// versioned meta.json, so that `lockscope merge` can redo everything offline,
// on another machine, with a newer lockscope.
//
// A Writer creates the directory and the files in it; meta.json is written
// last and atomically by Finish, so a directory without it is a capture that
// did not finish (Open says so). Open reads meta.json and refuses a bundle
// of a newer major version than this package understands.
//
// The off-CPU intervals are kept symbolized (kernel names depend on the
// capturing machine's kallsyms, user names on its binaries and JIT perf map)
// in the offcpu.jsonl stream format documented in offcpu.go.
package bundle
