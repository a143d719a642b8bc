// tlsload-go: bench/tlsload.c's load in Go (crypto/tls), for the `gotls`
// rows of `make bench`. One process, loopback TCP, C connections, each a
// client goroutine doing N writes of S bytes ((*tls.Conn).Write) and a
// server goroutine reading them ((*tls.Conn).Read). Same arguments and the
// same JSON line as tlsload:
//
//	tlsload-go CERT KEY [-n writes] [-s size] [-c conns]
//
//	{"writes":N*C,"bytes":...,"seconds":...,"us_per_write":...,"writes_per_s":...,
//	 "transfer_us_per_write":...,"cpu_us_per_write":...}
//
// transfer_us_per_write: from after the handshakes until every byte is
// read, per write; cpu_us_per_write: the process's CPU time (user + system,
// every thread) over the same span, per write.
//
// Standard library only (no module proxy here); built by
// tests/gotls/build.sh with the fixture's newest Go.
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		die("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tlsload-go: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 {
		die("usage: tlsload-go CERT KEY [-n writes] [-s size] [-c conns]")
	}
	cert, err := tls.LoadX509KeyPair(os.Args[1], os.Args[2])
	if err != nil {
		die("%v", err)
	}
	writes, size, conns := 10000, 64, 1
	for i := 3; i+1 < len(os.Args); i += 2 {
		v, err := strconv.Atoi(os.Args[i+1])
		if err != nil || v <= 0 {
			die("bad value %q for %s", os.Args[i+1], os.Args[i])
		}
		switch os.Args[i] {
		case "-n":
			writes = v
		case "-s":
			size = v
		case "-c":
			conns = v
		default:
			die("unknown option %s", os.Args[i])
		}
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		die("listen: %v", err)
	}
	addr := ln.Addr().String()
	var wg sync.WaitGroup
	// Servers: read every byte, then say "k" so the client may close.
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ln.Accept()
			if err != nil {
				die("accept: %v", err)
			}
			buf := make([]byte, 65536)
			for got := 0; got < writes*size; {
				n, err := c.Read(buf)
				if err != nil {
					die("read: %v", err)
				}
				got += n
			}
			if _, err := c.Write([]byte("k")); err != nil {
				die("write: %v", err)
			}
			c.Close()
		}()
	}
	// Clients: connected and through the handshake first, then timed.
	clients := make([]*tls.Conn, conns)
	for i := range clients {
		c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			die("dial: %v", err)
		}
		if err := c.Handshake(); err != nil {
			die("handshake: %v", err)
		}
		clients[i] = c
	}
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	start, cpu0 := time.Now(), cpuTime()
	var cw sync.WaitGroup
	busy := make([]float64, conns) // each client's time in its writes
	for k, c := range clients {
		cw.Add(1)
		go func(k int, c *tls.Conn) {
			defer cw.Done()
			t := time.Now()
			for i := 0; i < writes; i++ {
				if _, err := c.Write(payload); err != nil {
					die("write: %v", err)
				}
			}
			busy[k] = time.Since(t).Seconds()
			one := make([]byte, 1)
			if _, err := io.ReadFull(c, one); err != nil {
				die("read: %v", err)
			}
			c.Close()
		}(k, c)
	}
	cw.Wait()
	wg.Wait()
	cpu := (cpuTime() - cpu0).Seconds()
	secs, sum := time.Since(start).Seconds(), 0.0
	for _, b := range busy {
		sum += b
	}
	total := writes * conns
	fmt.Printf("{\"writes\":%d,\"bytes\":%d,\"seconds\":%.6f,\"us_per_write\":%.3f,\"writes_per_s\":%.1f,\"transfer_us_per_write\":%.3f,\"cpu_us_per_write\":%.3f}\n",
		total, total*size, secs, sum*1e6/float64(total), float64(total)/secs, secs*1e6/float64(total), cpu*1e6/float64(total))
}
