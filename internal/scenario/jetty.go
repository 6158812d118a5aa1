package scenario

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The webapp's sources are embedded, not read from testdata at run time, so
// StartJetty works from any package's tests (their working directory is
// their own package).
//
//go:embed testdata/txlog
var txlogSrc embed.FS

const (
	// DefaultJettyHome is where Debian's jetty9 package installs jetty.
	DefaultJettyHome = "/usr/share/jetty9"
	// servletAPI is the jar the servlet compiles against. Jetty 9.4
	// implements servlet 3.1; Debian links jetty's lib/servlet-api-3.1.jar
	// to this 4.0.1 jar, so the servlet must keep to the 3.1 API.
	servletAPI = "/usr/share/java/servlet-api.jar"
	// contextPath is the webapp's directory name under webapps/.
	contextPath = "txlog"
)

// JettyOptions say how to run jetty.
type JettyOptions struct {
	// DataDir holds the servlet's txlog.dat (required). Put it on the
	// filesystem whose journal a scenario disturbs (loopfs.Mount).
	DataDir string
	// JVMArgs are extra JVM arguments, e.g. "-XX:+PreserveFramePointer".
	// They come after the defaults (-Xms64m -Xmx256m), so they can
	// override them.
	JVMArgs []string
	// Home is jetty's installation (default DefaultJettyHome).
	Home string
	// StartTimeout bounds the wait for the servlet's first answer
	// (default 60s).
	StartTimeout time.Duration
}

// Jetty is a running jetty with the txlog servlet deployed. Its PID is the
// JVM's: start.jar runs the server in its own JVM (no --exec), so this is
// the process that has jetty's qtp threads and txlog-sync. Base is the
// JETTY_BASE directory.
type Jetty struct{ *Server }

// Server is a server JVM a scenario started, with the txlog servlet.
type Server struct {
	// PID is the JVM's process id.
	PID int
	// URL is the servlet's endpoint, http://127.0.0.1:PORT/txlog/append.
	URL string
	// Base is the server's base directory, Log the file with its stdout
	// and stderr.
	Base, Log string

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error // of cmd.Wait, valid once done is closed
	stop    sync.Once
}

// launch starts a server JVM (java with args, in base, output to base/name.log)
// as a child in its own process group, stops it in tb.Cleanup and returns
// once the txlog servlet on port answers.
func launch(tb testing.TB, name, java string, args []string, base string, port int, timeout time.Duration) *Server {
	tb.Helper()
	logPath := filepath.Join(base, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(java, args...)
	cmd.Dir = base
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a ^C to go test reaches the test (which
	// stops the server) and not the server first; Pdeathsig so a killed
	// test binary leaves no JVM behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("starting %s: %v", name, err)
	}
	s := &Server{
		PID:  cmd.Process.Pid,
		URL:  fmt.Sprintf("http://127.0.0.1:%d/%s/append", port, contextPath),
		Base: base,
		Log:  logPath,
		cmd:  cmd,
		done: make(chan struct{}),
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	tb.Cleanup(func() {
		if err := s.Stop(); err != nil {
			tb.Errorf("stopping %s: %v", name, err)
		}
	})
	t0 := time.Now()
	if err := waitServlet(s.URL, s.done, func() error { return s.waitErr }, timeout); err != nil {
		tb.Fatalf("%s: %v; log %s ends:\n%s", name, err, logPath, tail(logPath, 4<<10))
	}
	tb.Logf("%s pid %d serving %s after %v", name, s.PID, s.URL, time.Since(t0).Round(time.Millisecond))
	return s
}

// StartJetty runs Debian's jetty9 with the txlog servlet as a child
// process, in a JETTY_BASE under tb.TempDir() and on a free loopback port,
// and returns once the servlet answers. Jetty is stopped in tb.Cleanup.
func StartJetty(tb testing.TB, o JettyOptions) *Jetty {
	tb.Helper()
	if o.DataDir == "" {
		tb.Fatal("scenario: JettyOptions.DataDir is required")
	}
	if o.Home == "" {
		o.Home = DefaultJettyHome
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	startJar := filepath.Join(o.Home, "start.jar")
	if _, err := os.Stat(startJar); err != nil {
		tb.Fatalf("jetty not installed (%v): run scripts/setup.sh (installs jetty9)", err)
	}
	java, err := exec.LookPath("java")
	if err != nil {
		tb.Fatal("java not found: run scripts/setup.sh (installs openjdk-17-jdk-headless)")
	}
	classes, err := buildTxlog(txlogSrc, "testdata/txlog", servletAPI, nil)
	if err != nil {
		tb.Fatal(err)
	}
	base := tb.TempDir()
	if err := layoutBase(base, classes); err != nil {
		tb.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	args := []string{"-Xms64m", "-Xmx256m"}
	args = append(args, o.JVMArgs...)
	args = append(args,
		"-Dtxlog.dir="+o.DataDir,
		// Jetty unpacks each webapp into java.io.tmpdir unless
		// $JETTY_BASE/work exists; keep both inside the base.
		"-Djava.io.tmpdir="+filepath.Join(base, "tmp"),
		"-jar", startJar,
		"jetty.home="+o.Home,
		"jetty.base="+base,
		"jetty.http.host=127.0.0.1",
		"jetty.http.port="+strconv.Itoa(port),
		// No rescans of webapps/: a scanner thread waking every second
		// is noise in off-CPU profiles.
		"jetty.deploy.scanInterval=0",
	)
	return &Jetty{launch(tb, "jetty", java, args, base, port, o.StartTimeout)}
}

// waitServlet polls the txlog servlet at url until it answers 200, the
// server exits (done closes; exitErr then tells why) or the timeout passes.
// The probe appends one record, which also proves that txlog-sync runs.
func waitServlet(url string, done <-chan struct{}, exitErr func() error, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		resp, err := client.Get(url + "?key=ready")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-done:
			return fmt.Errorf("server exited during start-up (%v)", exitErr())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("txlog servlet did not answer within %v (last: %v)", timeout, last)
		}
	}
}

// Stop stops jetty (SIGTERM, SIGKILL after 10s) and waits for it. It is
// safe to call more than once; tb.Cleanup calls it too.
func (s *Server) Stop() error {
	var err error
	s.stop.Do(func() { err = stopChild(s.cmd, s.done) })
	return err
}

// stopChild sends a server JVM started in its own process group SIGTERM,
// then SIGKILL to the group after 10s, and waits until done closes.
func stopChild(cmd *exec.Cmd, done <-chan struct{}) error {
	select {
	case <-done:
		return nil // exited on its own
	default:
	}
	// SIGTERM runs the JVM's shutdown hooks, so a recording started
	// with -XX:StartFlightRecording:filename=... is written out.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return errors.New("ignored SIGTERM for 10s; killed")
	}
}

// Exited is closed once the jetty process has exited.
func (s *Server) Exited() <-chan struct{} { return s.done }

// layoutBase writes a JETTY_BASE with the http and deploy modules and the
// txlog webapp exploded under webapps/.
func layoutBase(base, classes string) error {
	web := filepath.Join(base, "webapps", contextPath)
	for _, d := range []string{filepath.Join(base, "tmp"), filepath.Join(base, "work"), filepath.Join(web, "WEB-INF")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// Only the modules we need; the package's /etc/jetty9/start.ini (jsp,
	// websocket, ...) is not read once the base has its own start.ini.
	if err := os.WriteFile(filepath.Join(base, "start.ini"), []byte("--module=http,deploy\n"), 0o644); err != nil {
		return err
	}
	webXML, err := txlogSrc.ReadFile("testdata/txlog/WEB-INF/web.xml")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(web, "WEB-INF", "web.xml"), webXML, 0o644); err != nil {
		return err
	}
	return os.CopyFS(filepath.Join(web, "WEB-INF", "classes"), os.DirFS(classes))
}

// buildTxlog compiles the servlet's sources under root in src against the
// servlet API jar api, once per content hash, into a directory under
// os.TempDir() and returns that directory.
func buildTxlog(src fs.FS, root, api string, rewrite func([]byte) []byte) (string, error) {
	h := sha256.New()
	sources := map[string][]byte{}
	err := fs.WalkDir(src, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".java") {
			return err
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		if rewrite != nil {
			b = rewrite(b)
		}
		fmt.Fprintf(h, "%s %d\n", p, len(b))
		h.Write(b)
		sources[p] = b
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("reading txlog sources: %w", err)
	}
	fi, err := os.Stat(api)
	if err != nil {
		return "", fmt.Errorf("servlet API jar (%w): run scripts/setup.sh", err)
	}
	fmt.Fprintf(h, "%s %d %d\n", api, fi.Size(), fi.ModTime().UnixNano())
	dir := filepath.Join(os.TempDir(), "lockscope-txlog-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, "txlog", "TxLogServlet.class")); err == nil {
		return dir, nil
	}
	javac, err := exec.LookPath("javac")
	if err != nil {
		return "", errors.New("javac not found: run scripts/setup.sh (installs openjdk-17-jdk-headless)")
	}
	// Compile into a private directory and rename it into place, so two
	// test binaries building at once never see half a cache entry.
	tmp, err := os.MkdirTemp(os.TempDir(), "lockscope-txlog-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	srcDir, out := filepath.Join(tmp, "src"), filepath.Join(tmp, "classes")
	args := []string{"-nowarn", "-cp", api, "-d", out}
	for p, b := range sources {
		f := filepath.Join(srcDir, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return "", fmt.Errorf("writing txlog sources: %w", err)
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return "", fmt.Errorf("writing txlog sources: %w", err)
		}
		args = append(args, f)
	}
	if b, err := exec.Command(javac, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("compiling txlog servlet: %w: %s", err, b)
	}
	if err := os.Rename(out, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "txlog", "TxLogServlet.class")); serr == nil {
			return dir, nil // another process won the race
		}
		return "", fmt.Errorf("caching txlog classes: %w", err)
	}
	return dir, nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before jetty binds; jetty then fails to start with a clear
// "Address already in use" in its log.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns up to the last n bytes of a file.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
