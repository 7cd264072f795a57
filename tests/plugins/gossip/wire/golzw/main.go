// golzw: Go's own compress/lzw (LSB order, literal width 8, as memberlist uses it) as a
// filter, so the tests compare hookmq's LZW with Go's. Written for hookmq's test suite.
//
//	golzw c < plain > compressed      golzw d < compressed > plain
package main

import (
	"bytes"
	"compress/lzw"
	"io"
	"os"
)

func main() {
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		os.Exit(2)
	}
	var out bytes.Buffer
	switch os.Args[1] {
	case "c":
		w := lzw.NewWriter(&out, lzw.LSB, 8)
		if _, err := w.Write(in); err != nil {
			os.Exit(1)
		}
		if err := w.Close(); err != nil {
			os.Exit(1)
		}
	case "d":
		r := lzw.NewReader(bytes.NewReader(in), lzw.LSB, 8)
		if _, err := io.Copy(&out, r); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(1)
		}
	default:
		os.Exit(2)
	}
	os.Stdout.Write(out.Bytes())
}
