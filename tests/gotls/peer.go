// The Go program of tests/gotls.rs: an HTTPS server and client using only
// the standard library (net/http over crypto/tls), so that it builds with
// no module download. tests/gotls/build.sh builds it with each Go toolchain
// of the fixture, normal and stripped, PIE and not.
//
//	peer server PORT CERT KEY    serve https://127.0.0.1:PORT/ (HTTP/1.1 and h2);
//	                             prints "listening PORT" once it accepts
//	peer client PORT h1|h2 SIZE  after a line on stdin, POST SIZE bytes to
//	                             /echo, then GET /data?n=SIZE; checks both
//	                             answers byte for byte; prints "ok PROTO".
//	                             With SSLKEYLOGFILE set, Go's own key log
//	                             (tls.Config.KeyLogWriter) is appended to it;
//	                             with PEER_TLS12 set, TLS 1.2 at most
//	peer offsets                 prints the offsets of the fields ecapture
//	                             reads (reflect), one "name value" a line
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
)

// pattern is the test's payload: printable and position-dependent, as
// tests/util/mod.rs's pattern().
func pattern(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08d the quick brown fox jumps over the lazy dog\n", i)
	}
	return b.Bytes()[:n]
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "peer: "+format+"\n", args...)
	os.Exit(1)
}

func server(port, cert, key string) {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if !bytes.Equal(body, pattern(len(body))) {
			http.Error(w, "body is not the pattern", 400)
			return
		}
		w.Header().Set("X-Peer", "go-echo")
		fmt.Fprintf(w, "got %d bytes over %s", len(body), r.Proto)
	})
	mux.HandleFunc("/data", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 || n > 64<<20 {
			http.Error(w, "bad n", 400)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(pattern(n))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fail("listen: %v", err)
	}
	fmt.Printf("listening %s\n", port)
	os.Stdout.Sync()
	srv := &http.Server{Handler: mux}
	fail("serve: %v", srv.ServeTLS(ln, cert, key))
}

func client(port, proto string, size int) {
	cfg := &tls.Config{InsecureSkipVerify: true}
	if f := os.Getenv("SSLKEYLOGFILE"); f != "" {
		w, err := os.OpenFile(f, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			fail("SSLKEYLOGFILE: %v", err)
		}
		defer w.Close()
		cfg.KeyLogWriter = w
	}
	if os.Getenv("PEER_TLS12") != "" {
		cfg.MaxVersion = tls.VersionTLS12
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	switch proto {
	case "h1":
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	case "h2":
		tr.ForceAttemptHTTP2 = true
	default:
		fail("protocol %q: expected h1 or h2", proto)
	}
	c := &http.Client{Transport: tr}
	bufio.NewReader(os.Stdin).ReadString('\n')
	base := "https://127.0.0.1:" + port
	resp, err := c.Post(base+"/echo", "application/octet-stream", bytes.NewReader(pattern(size)))
	if err != nil {
		fail("POST: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf("got %d bytes over %s", size, resp.Proto)
	if resp.StatusCode != 200 || string(got) != want {
		fail("POST answer %d %q, want %q", resp.StatusCode, got, want)
	}
	resp, err = c.Get(fmt.Sprintf("%s/data?n=%d", base, size))
	if err != nil {
		fail("GET: %v", err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, pattern(size)) {
		fail("GET answer %d, %d bytes, not the pattern", resp.StatusCode, len(got))
	}
	fmt.Printf("ok %s\n", resp.Proto)
}

func offsets() {
	conn := reflect.TypeOf(tls.Conn{})
	for _, f := range []string{"conn", "isClient", "vers"} {
		if sf, ok := conn.FieldByName(f); ok {
			fmt.Printf("tls.Conn.%s %d\n", f, sf.Offset)
		}
	}
	// *net.TCPConn -> conn{fd *netFD} -> netFD.pfd.Sysfd
	tcp := reflect.TypeOf(net.TCPConn{})
	if sf, ok := tcp.FieldByName("fd"); ok {
		fmt.Printf("net.TCPConn.fd %d\n", sf.Offset)
		nfd := sf.Type.Elem()
		if pfd, ok := nfd.FieldByName("pfd"); ok {
			if sys, ok := pfd.Type.FieldByName("Sysfd"); ok {
				fmt.Printf("netFD.pfd %d\n", pfd.Offset)
				fmt.Printf("poll.FD.Sysfd %d\n", sys.Offset)
			}
		}
	}
}

func main() {
	a := os.Args
	switch {
	case len(a) == 5 && a[1] == "server":
		server(a[2], a[3], a[4])
	case len(a) == 5 && a[1] == "client":
		n, err := strconv.Atoi(a[4])
		if err != nil {
			fail("size %q", a[4])
		}
		client(a[2], a[3], n)
	case len(a) == 2 && a[1] == "offsets":
		offsets()
	default:
		fail("usage: peer server PORT CERT KEY | client PORT h1|h2 SIZE | offsets")
	}
}
