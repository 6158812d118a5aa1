// Package pyroscope pushes lockscope's merged profiles to a Pyroscope
// server with grafana/pyroscope-go's uploader (upstream/remote), chosen
// because it is Pyroscope's own client: it knows the /ingest wire format
// (a multipart form with the pprof, the series name app{k=v,...}, from and
// until in nanoseconds, spyName) and the auth headers (basic auth,
// X-Scope-OrgID, extra headers for a bearer token).
//
// # What is pushed
//
// Split cuts one merged profile (slow.pb.gz or baseline.pb.gz of a bundle,
// with merge's sample types wall, lock, offcpu, cpu, blame) into one
// profile per sample type, because Pyroscope names a whole profile after
// its sample types: a type named exactly "wall" makes it "wall", any type
// containing "cpu" makes it "process_cpu", so merge's "offcpu" is pushed as
// "switched_out". The resulting profile type ids (__profile_type__):
//
//	wall:wall:nanoseconds:wall:nanoseconds                          wall-clock samples (JFR), kernel frames where the thread was off-CPU
//	switched_out:switched_out:nanoseconds:switched_out:nanoseconds  off-CPU time (eBPF): time switched out, kernel stacks on Java context
//	lock:lock:nanoseconds:lock:nanoseconds                          lock contention: time waiting to enter a monitor or lock
//	blame:blame:nanoseconds:blame:nanoseconds                       lock waiting charged to what the holder was doing meanwhile
//	process_cpu:cpu:nanoseconds:cpu:nanoseconds                     CPU samples: async-profiler with --cpu, or the JDK Flight Recorder's execution samples
//
// Every series carries service_name (Options.AppName, default
// "kafka-broker"), host, broker, the user's labels, and
// slo_breach="true" (profiles of the windows where produce latency
// exceeded the SLO) or "false" (the baseline outside them); per sample,
// thread_pool (data-plane-kafka-request-handler, ...) and state (the
// thread state: running, blocked, sleeping, ...), which Pyroscope turns
// into series labels too. Thread names and ids are not pushed: they are
// unbounded, and the bundle keeps them. Values are nanoseconds summed over
// the period; the slow profile covers only the slow windows' share of it.
//
// Label names are sanitized (SanitizeLabelName): Pyroscope rejects a push
// with a '-' in a label name and silently drops labels with a '.'.
//
// # Queries
//
// In Grafana's Pyroscope data source or with profilecli, pick the profile
// type and a label selector:
//
//	profile type wall:wall:nanoseconds:wall:nanoseconds
//	{service_name="kafka-broker", slo_breach="true"}                  what the threads did while produce was slow
//	{service_name="kafka-broker", slo_breach="false"}                 the baseline, for a diff view
//	{service_name="kafka-broker", slo_breach="true", thread_pool="data-plane-kafka-request-handler"}
//	profile type switched_out:...  {service_name="kafka-broker", slo_breach="true", broker="..."}
//	profile type blame:...         {service_name="kafka-broker", slo_breach="true"}  who held the lock
//
// Through the API (Connect, JSON over HTTP):
//
//	POST /querier.v1.QuerierService/SelectMergeStacktraces
//	  {"profileTypeID":"wall:wall:nanoseconds:wall:nanoseconds",
//	   "labelSelector":"{service_name=\"kafka-broker\",slo_breach=\"true\"}",
//	   "start":<ms>,"end":<ms>}
//	POST /querier.v1.QuerierService/LabelValues {"name":"slo_breach","start":<ms>,"end":<ms>}
//	POST /querier.v1.QuerierService/ProfileTypes {"start":<ms>,"end":<ms>}
//
// # Delivery
//
// A Pusher sends from one goroutine, in order. Push never blocks: it
// queues, and when the queue is over Options.MaxQueue profiles or
// MaxQueueBytes it drops the oldest (counted in Stats.Dropped). Transient
// failures (connection errors, timeouts, 408, 429, 5xx) are retried up to
// MaxAttempts times per profile behind one shared exponential back-off
// (RetryMin doubling to RetryMax, with jitter), so a server that is down
// costs one request per RetryMax and the memory of a full queue, no more.
// Pyroscope answers 422 both for a profile it refuses and for a failure
// downstream (rpc Unavailable while it starts or shuts down, seen for about
// 25 s of a graceful shutdown of a real server): a 422 whose message names
// such a cause is retried. Other refusals (400 for a bad label, 401, 413,
// other 422s) are not retried. Close pushes what is queued until its
// context ends, then drops the rest and cancels the request in flight;
// nothing runs after it returns.
//
// Checked once against a real Pyroscope (built from source, -target=all
// -architecture.storage=v2): the profile type ids above and the labels came
// back from ProfileTypes, Series and LabelValues as documented, and a
// graceful restart of the server (33 s to stop, 48 s to be ready) under
// 10 s periods lost none of 137 profiles.
package pyroscope
