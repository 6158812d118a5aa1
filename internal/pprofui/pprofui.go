// Package pprofui serves the pprof web UI (github.com/google/pprof/driver,
// embedded: no `go tool pprof` needed on a broker host) on a profile, with
// an optional baseline as the diff base, plus any extra pages a caller adds
// (a bundle's report). Serve blocks until its context ends.
package pprofui

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/pprof/driver"
)

// Options says what to serve and where.
type Options struct {
	// Addr is host:port to listen on; port 0 picks a free one.
	Addr string
	// Profile is the profile to show; Base, if set, is subtracted from it
	// (pprof's -diff_base), so frames that grew in Profile stand out.
	Profile string
	Base    string
	// Absolute diffs in absolute time. By default the base is scaled to
	// the profile's duration first, so the diff compares time per second
	// (a bundle's slow windows are a few seconds, its baseline the rest).
	Absolute bool
	// Browser opens the UI in a browser.
	Browser bool
	// Extra adds handlers beside pprof's (path → handler).
	Extra map[string]http.Handler
	// Ready is called with the UI's URL once it listens.
	Ready func(url string)
	// Log receives pprof's messages; nil discards them.
	Log io.Writer
}

// Validate checks the options without touching the network.
func (o *Options) Validate() error {
	if o.Profile == "" {
		return errors.New("no profile to view")
	}
	for _, p := range []string{o.Profile, o.Base} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("viewing profile: %w", err)
		}
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return fmt.Errorf("listen address %q: %w", o.Addr, err)
	}
	return nil
}

// Serve runs the pprof web UI until ctx ends.
func Serve(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listening for the pprof UI: %w", err)
	}
	defer ln.Close()
	args := []string{"-http=" + ln.Addr().String(), "-symbolize=none"}
	if !o.Browser {
		args = append(args, "-no_browser")
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	if o.Base != "" {
		base := o.Base
		if !o.Absolute {
			dir, err := os.MkdirTemp("", "lockscope-view-")
			if err != nil {
				return fmt.Errorf("pprof UI: %w", err)
			}
			defer os.RemoveAll(dir)
			var note string
			if base, note, err = perSecondBase(o.Profile, o.Base, dir); err != nil {
				return fmt.Errorf("pprof UI: %w", err)
			}
			fmt.Fprintln(log, note)
		}
		args = append(args, "-diff_base="+base)
	}
	args = append(args, o.Profile)
	served := false
	err = driver.PProf(&driver.Options{
		Flagset: newFlagSet(args),
		UI:      &ui{w: log, browser: o.Browser},
		HTTPServer: func(a *driver.HTTPServerArgs) error {
			served = true
			mux := http.NewServeMux()
			for p, h := range a.Handlers {
				mux.Handle(p, h)
			}
			for p, h := range o.Extra {
				mux.Handle(p, h)
			}
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				srv.Shutdown(shutdown)
			}()
			if o.Ready != nil {
				o.Ready("http://" + ln.Addr().String())
			}
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	})
	if err != nil {
		return fmt.Errorf("pprof UI: %w", err)
	}
	if !served {
		return errors.New("pprof UI: the profile could not be loaded (see messages above)")
	}
	return nil
}

// flagSet gives pprof's driver a fixed argument list, as if typed on its
// command line (driver.FlagSet).
type flagSet struct {
	*flag.FlagSet
	args  []string
	usage []string
}

func newFlagSet(args []string) *flagSet {
	fs := flag.NewFlagSet("pprof", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, args: args}
}

func (f *flagSet) StringList(name, def, usage string) *[]*string {
	return &[]*string{f.FlagSet.String(name, def, usage)}
}

func (f *flagSet) ExtraUsage() string { return strings.Join(f.usage, "\n") }

func (f *flagSet) AddExtraUsage(eu string) { f.usage = append(f.usage, eu) }

func (f *flagSet) Parse(usage func()) []string {
	if err := f.FlagSet.Parse(f.args); err != nil {
		usage()
		return nil
	}
	return f.FlagSet.Args()
}

// ui is pprof's non-interactive UI: messages to a writer, no prompt. The
// "Serving web UI" line is left to Ready, which knows the real port.
type ui struct {
	w       io.Writer
	browser bool
}

func (u *ui) ReadLine(string) (string, error) { return "", io.EOF }

func (u *ui) Print(args ...any) {
	s := fmt.Sprint(args...)
	if strings.HasPrefix(s, "Serving web UI on") {
		return
	}
	fmt.Fprintln(u.w, strings.TrimSuffix(s, "\n"))
}

func (u *ui) PrintErr(args ...any) { u.Print(args...) }

func (u *ui) IsTerminal() bool { return false }

func (u *ui) WantBrowser() bool { return u.browser }

func (u *ui) SetAutoComplete(func(string) string) {}
