// A Go program that does not link crypto/tls: `ecapture gotls --elfpath`
// refuses it (tests/cli.rs).
package main

import "fmt"

func main() { fmt.Println("no TLS here") }
