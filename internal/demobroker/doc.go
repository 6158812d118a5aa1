// Package demobroker builds and runs lockscope's demo broker: a Java
// imitation of a single Kafka broker's produce path (sources under
// scripts/demobroker/src) that real Kafka clients can produce to. Tests,
// scripts and the README's demo use it as the JVM to profile.
//
// Build compiles the sources once per content hash into a shared cache
// directory; Start runs a broker and returns once it listens. The caller owns
// the returned Broker and must Close it, which stops the JVM (SIGTERM, then
// SIGKILL after a grace period) and waits for it.
package demobroker
