// Package scenario runs tail-latency scenarios against a real third-party
// JVM server: Debian's jetty9 or tomcat10 serving a small transaction-log
// servlet and a cache servlet (StartJetty, StartTomcat; Tomcat compiles the
// same sources with the servlet API renamed jakarta), a Go load generator that records every request's start and
// duration for a latency CSV (Load, WriteCSV), and fault injectors switched
// on in known windows (Cycle with JournalPressure, JournalPressureBulk,
// CPUHogs, CgroupQuota), so a test can check that lockscope blames the right
// thing for the requests inside those windows. The tests here are those
// scenarios, on these servers and on the demo broker, each asserting the
// verdict's top cause.
//
// Lifetimes: a Jetty or a Tomcat belongs to the test that started it and is stopped in
// its Cleanup, also when the test fails. A Fault's off func undoes all it
// did (hog processes killed and waited, cgroups removed); Cycle always calls
// it, also when its context is cancelled. Injected processes also get
// SIGKILL if the test binary dies, so a killed test leaves no hogs behind.
//
// Everything here needs root (loop mounts, cgroups) and Linux.
package scenario
