package scenario

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Tomcat 10.1 runs the txlog webapp's own sources with the servlet API's
// package renamed (javax.servlet is jakarta.servlet since Jakarta EE 9, the
// rename Tomcat's own migration tool makes); only web.xml, whose namespace
// changed too, has a copy of its own.
//
//go:embed testdata/txlog-jakarta
var txlogJakartaSrc embed.FS

// toJakarta renames the javax servlet API in a Java source.
func toJakarta(src []byte) []byte {
	return bytes.ReplaceAll(src, []byte("javax.servlet"), []byte("jakarta.servlet"))
}

// DefaultTomcatHome is where Debian's tomcat10 package installs Tomcat
// (CATALINA_HOME).
const DefaultTomcatHome = "/usr/share/tomcat10"

// TomcatOptions say how to run Tomcat.
type TomcatOptions struct {
	// DataDir holds the servlet's txlog.dat (required). Put it on the
	// filesystem whose journal a scenario disturbs (loopfs.Mount).
	DataDir string
	// JVMArgs are extra JVM arguments, e.g. "-XX:+PreserveFramePointer".
	// They come after the defaults (-Xms64m -Xmx256m), so they can
	// override them.
	JVMArgs []string
	// Home is Tomcat's installation, CATALINA_HOME (default
	// DefaultTomcatHome).
	Home string
	// StartTimeout bounds the wait for the servlet's first answer
	// (default 60s).
	StartTimeout time.Duration
}

// Tomcat is a running Tomcat with the txlog servlet deployed. Its PID is
// the JVM's (Bootstrap runs in the JVM that java started; there is no
// wrapper script or daemon in between); Base is the CATALINA_BASE, and its
// Log has all of Tomcat's logging.
type Tomcat struct{ *Server }

// StartTomcat runs Debian's tomcat10 with the txlog servlet as a child
// process, in a CATALINA_BASE under tb.TempDir() and on a free loopback
// port, and returns once the servlet answers. Tomcat is stopped in
// tb.Cleanup.
func StartTomcat(tb testing.TB, o TomcatOptions) *Tomcat {
	tb.Helper()
	if o.DataDir == "" {
		tb.Fatal("scenario: TomcatOptions.DataDir is required")
	}
	if o.Home == "" {
		o.Home = DefaultTomcatHome
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	bin := filepath.Join(o.Home, "bin")
	if _, err := os.Stat(filepath.Join(bin, "bootstrap.jar")); err != nil {
		tb.Fatalf("tomcat not installed (%v): run scripts/setup.sh (installs tomcat10)", err)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		tb.Fatal("java not found: run scripts/setup.sh (installs openjdk-17-jdk-headless)")
	}
	// Compiled against the servlet API of the Tomcat that runs it.
	classes, err := buildTxlog(txlogSrc, "testdata/txlog", filepath.Join(o.Home, "lib", "servlet-api.jar"), toJakarta)
	if err != nil {
		tb.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	base := tb.TempDir()
	if err := layoutCatalinaBase(base, o.Home, classes, port); err != nil {
		tb.Fatalf("writing CATALINA_BASE: %v", err)
	}
	args := []string{"-Xms64m", "-Xmx256m"}
	args = append(args, o.JVMArgs...)
	args = append(args,
		"-Dtxlog.dir="+o.DataDir,
		// What catalina.sh run passes, minus its umask and endorsed dirs.
		"-Dcatalina.home="+o.Home,
		"-Dcatalina.base="+base,
		"-Djava.io.tmpdir="+filepath.Join(base, "temp"),
		"-Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager",
		"-Djava.util.logging.config.file="+filepath.Join(base, "conf", "logging.properties"),
		"-Djava.protocol.handler.pkgs=org.apache.catalina.webresources",
		// Tomcat's leak prevention on undeploy reflects into these.
		"--add-opens=java.base/java.lang=ALL-UNNAMED",
		"--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
		"--add-opens=java.base/java.io=ALL-UNNAMED",
		"--add-opens=java.base/java.util=ALL-UNNAMED",
		"--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
		"--add-opens=java.rmi/sun.rmi.transport=ALL-UNNAMED",
		"-cp", filepath.Join(bin, "bootstrap.jar")+":"+filepath.Join(bin, "tomcat-juli.jar"),
		"org.apache.catalina.startup.Bootstrap", "start",
	)
	return &Tomcat{launch(tb, "tomcat", java, args, base, port, o.StartTimeout)}
}

// tomcatServerXML is the whole server: one HTTP/1.1 (NIO) connector on
// loopback, no shutdown port, no AJP, and a host that deploys webapps/ once
// at start. Left out of Debian's server.xml on purpose: the APR listener
// (no libtcnative; it only logs that), the user database (nothing
// authenticates) and the access-log valve (a buffered file write per
// request, I/O of the server's own beside the txlog's; jetty runs without
// a request log too). autoDeploy="false": no rescans of webapps/ by the
// background thread, as jetty runs with scanInterval=0.
const tomcatServerXML = `<?xml version="1.0" encoding="UTF-8"?>
<Server port="-1" shutdown="SHUTDOWN">
  <Listener className="org.apache.catalina.startup.VersionLoggerListener" />
  <Listener className="org.apache.catalina.core.JreMemoryLeakPreventionListener" />
  <Listener className="org.apache.catalina.core.ThreadLocalLeakPreventionListener" />
  <Service name="Catalina">
    <Connector address="127.0.0.1" port="%d" protocol="HTTP/1.1"
               connectionTimeout="20000" maxParameterCount="1000" />
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="false" autoDeploy="false" />
    </Engine>
  </Service>
</Server>
`

// tomcatLogging sends all of Tomcat's logging, the webapp's included, to
// stderr (the Log file) in Tomcat's one-line format, instead of Debian's
// dated files under logs/ written by an extra AsyncFileHandler thread.
const tomcatLogging = `handlers = java.util.logging.ConsoleHandler
.handlers = java.util.logging.ConsoleHandler
java.util.logging.ConsoleHandler.level = FINE
java.util.logging.ConsoleHandler.formatter = org.apache.juli.OneLineFormatter
java.util.logging.ConsoleHandler.encoding = UTF-8
`

// tomcatContextXML is the default context of every webapp. Debian's only
// lists the files whose change reloads a webapp, which nothing watches with
// autoDeploy off. Not scanning the class path (Tomcat's own and the JVM's
// jars) for TLDs and web fragments cut the webapp's deployment from 3.5-5s
// to about 1s on the 2-vCPU VM; the txlog webapp has no JSPs, and its own
// WEB-INF is still scanned.
const tomcatContextXML = `<?xml version="1.0" encoding="UTF-8"?>
<Context>
  <JarScanner scanClassPath="false" />
</Context>
`

// layoutCatalinaBase writes a CATALINA_BASE: conf/ with our server.xml,
// context.xml and logging.properties and the installation's default web.xml
// and catalina.properties, the empty logs/, temp/ and work/, and the txlog
// webapp exploded under webapps/.
func layoutCatalinaBase(base, home, classes string, port int) error {
	conf := filepath.Join(base, "conf")
	web := filepath.Join(base, "webapps", contextPath)
	for _, d := range []string{conf, filepath.Join(base, "logs"), filepath.Join(base, "temp"), filepath.Join(base, "work"), filepath.Join(web, "WEB-INF")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// Debian keeps the package's pristine conf/ in $CATALINA_HOME/etc
	// (/etc/tomcat10 is the admin's copy); an upstream tarball has conf/.
	src := filepath.Join(home, "conf")
	if _, err := os.Stat(src); err != nil {
		src = filepath.Join(home, "etc")
	}
	for _, name := range []string{"web.xml", "catalina.properties"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(conf, name), b, 0o644); err != nil {
			return err
		}
	}
	for name, b := range map[string][]byte{
		"server.xml":         fmt.Appendf(nil, tomcatServerXML, port),
		"context.xml":        []byte(tomcatContextXML),
		"logging.properties": []byte(tomcatLogging),
	} {
		if err := os.WriteFile(filepath.Join(conf, name), b, 0o644); err != nil {
			return err
		}
	}
	webXML, err := txlogJakartaSrc.ReadFile("testdata/txlog-jakarta/WEB-INF/web.xml")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(web, "WEB-INF", "web.xml"), webXML, 0o644); err != nil {
		return err
	}
	return os.CopyFS(filepath.Join(web, "WEB-INF", "classes"), os.DirFS(classes))
}
