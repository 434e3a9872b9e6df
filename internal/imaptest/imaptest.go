// Package imaptest starts a real IMAP server for tests: Debian's dovecot
// (package dovecot-imapd), on a free loopback port, with a throwaway
// configuration, one user and a self-signed certificate, stopped when the
// test ends. Without dovecot a test is skipped, except when CI=true: there
// it fails, so that CI cannot pass without the server.
package imaptest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap"
	"github.com/emersion/go-imap/client"
)

// Server is one running dovecot.
type Server struct {
	Addr     string // host:port of IMAPS (TLS from the first byte)
	User     string
	Password string
	// TLS trusts the server's certificate.
	TLS *tls.Config
}

// binary is where Debian puts dovecot.
const binary = "/usr/sbin/dovecot"

// Start starts dovecot and returns it; it is stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := os.Stat(binary); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dovecot is not installed (apt-get install dovecot-imapd): %v", err)
		}
		t.Skipf("dovecot is not installed (apt-get install dovecot-imapd): %v", err)
	}
	// Short: dovecot's sockets live under it, and a socket path is at
	// most 108 bytes.
	dir, err := os.MkdirTemp("", "dv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// The mail processes run as dovenull and must reach the mail folder.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Server{User: "bounces", Password: "imap-test-password"}
	certPEM, keyPEM := selfSigned(t)
	mail := filepath.Join(dir, "mail")
	files := map[string]string{"cert.pem": string(certPEM), "key.pem": string(keyPEM),
		"users": s.User + ":{PLAIN}" + s.Password + "\n"}
	for name, body := range files {
		// The auth worker runs as the dovecot user: it must read users.
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(mail, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(mail, 0o777); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	conf := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(conf, []byte(config(dir, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "-F", "-c", conf)
	log := filepath.Join(dir, "dovecot.log")
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dovecot: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	s.TLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		d := tls.Dialer{Config: s.TLS}
		c, err := d.DialContext(ctx, "tcp", s.Addr)
		if err == nil {
			c.Close()
			return s
		}
		if ctx.Err() != nil {
			out, _ := os.ReadFile(log)
			t.Fatalf("dovecot did not start listening on %s: %v\n%s", s.Addr, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func config(dir string, port int) string {
	return fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/users
}
userdb {
  driver = static
  args = uid=dovenull gid=dovenull home=%[1]s/mail/%%u
}
mail_location = maildir:~/Maildir
first_valid_uid = 1
service imap-login {
  chroot =
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = %[2]d
    ssl = yes
  }
}
service anvil {
  chroot =
}
`, dir, port)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// selfSigned makes a certificate for 127.0.0.1.
func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// Append puts messages into a mailbox.
func (s *Server) Append(t testing.TB, mailbox string, msgs ...[]byte) {
	t.Helper()
	c := s.login(t)
	defer c.Logout()
	for _, m := range msgs {
		if err := c.Append(mailbox, nil, time.Now(), bytes.NewReader(m)); err != nil {
			t.Fatalf("append to %s: %v", mailbox, err)
		}
	}
}

// Count returns the number of messages in a mailbox (0 when it does not
// exist).
func (s *Server) Count(t testing.TB, mailbox string) uint32 {
	t.Helper()
	c := s.login(t)
	defer c.Logout()
	st, err := c.Status(mailbox, []imap.StatusItem{imap.StatusMessages})
	if err != nil {
		return 0
	}
	return st.Messages
}

func (s *Server) login(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.DialTLS(s.Addr, s.TLS)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login(s.User, s.Password); err != nil {
		t.Fatal(err)
	}
	return c
}
