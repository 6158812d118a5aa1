// Package bundle is the contract between capturing and understanding: a
// directory holding every raw input of one capture (the JFR recording, the
// off-CPU intervals, the requests and SLO windows) and a self-describing,
// versioned meta.json, so that `lockscope merge` can redo everything offline,
// on another machine, with a newer lockscope.
//
// A Writer creates the directory and the files in it. A capture writes a
// provisional meta.json as soon as it starts (WriteProvisional: what it
// knows so far, marked Provisional) and the final one when it ends (Finish:
// with the list and hashes of the files), each atomically, so that a
// directory with no meta.json or a provisional one is a capture that did not
// finish: Open says so (ErrIncomplete, ErrUnfinished), and OpenUnfinished
// reopens a provisional one for recovery. Open reads meta.json and refuses a
// bundle of a newer major version than this package understands.
//
// The JSON-lines streams of a capture that was killed end where its last
// write ended, usually inside a line; TrimStream cuts that partial line.
//
// The off-CPU intervals are kept symbolized (kernel names depend on the
// capturing machine's kallsyms, user names on its binaries and JIT perf map)
// in the offcpu.jsonl stream format documented in offcpu.go.
package bundle
