package serve

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// credentials are the secrets read from the auth files. They are compared
// in constant time and never printed: the struct has no String method that
// would show them, and errors name the file, not its content.
type credentials struct {
	token          []byte // sha256 of the bearer token, or nil
	user, password []byte // sha256 of each, or nil
	insecure       bool
}

func (a *Auth) load() (*credentials, error) {
	c := &credentials{insecure: a.Insecure}
	if a.BearerTokenFile != "" {
		t, err := readSecret(a.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("auth.bearer_token_file: %w", err)
		}
		h := sha256.Sum256([]byte(t))
		c.token = h[:]
	}
	if a.BasicAuthFile != "" {
		t, err := readSecret(a.BasicAuthFile)
		if err != nil {
			return nil, fmt.Errorf("auth.basic_auth_file: %w", err)
		}
		u, p, ok := strings.Cut(t, ":")
		if !ok || u == "" || p == "" {
			return nil, fmt.Errorf("auth.basic_auth_file %s: want one line user:password", a.BasicAuthFile)
		}
		hu, hp := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		c.user, c.password = hu[:], hp[:]
	}
	return c, nil
}

// readSecret reads a one-line secret file; trailing newlines (an editor's)
// are not part of the secret, as with Alertmanager's credentials_file.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty: put the secret in it", path)
	}
	return s, nil
}

// allowed reports whether the request carries valid credentials. Both
// sides are hashed first so the comparison takes the same time whatever
// the lengths.
func (c *credentials) allowed(r *http.Request) bool {
	if c.token == nil && c.user == nil {
		return c.insecure
	}
	if c.token != nil {
		if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			h := sha256.Sum256([]byte(t))
			if subtle.ConstantTimeCompare(h[:], c.token) == 1 {
				return true
			}
		}
	}
	if c.user != nil {
		if u, p, ok := r.BasicAuth(); ok {
			hu, hp := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
			if subtle.ConstantTimeCompare(hu[:], c.user)&subtle.ConstantTimeCompare(hp[:], c.password) == 1 {
				return true
			}
		}
	}
	return false
}
