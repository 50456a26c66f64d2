package main

import (
	"io"
	"strconv"
	"time"

	"github.com/memlock-exporter/memlock-exporter/bpf"
)

// printer writes one line per event, strace-like, for people watching a
// terminal: time, process, the call and its result, and how long it took.
type printer struct {
	w   io.Writer
	buf []byte
}

func newPrinter(w io.Writer) *printer { return &printer{w: w, buf: make([]byte, 0, 256)} }

func (p *printer) print(ev *bpf.Event) {
	b := p.buf[:0]
	b = ev.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, " pid="...)
	b = strconv.AppendUint(b, uint64(ev.PID), 10)
	b = append(b, " tid="...)
	b = strconv.AppendUint(b, uint64(ev.TID), 10)
	b = append(b, " comm="...)
	b = strconv.AppendQuote(b, ev.Comm)
	b = append(b, " exe="...)
	b = strconv.AppendQuote(b, ev.ExeName)
	b = append(b, " uid="...)
	b = strconv.AppendUint(b, uint64(ev.EUID), 10)
	b = append(b, ' ')
	b = ev.AppendCall(b)
	if !ev.Untimed { // strace's <seconds>; none for a call seen at its exit only
		b = append(b, " <"...)
		b = strconv.AppendFloat(b, ev.Duration.Seconds(), 'f', 9, 64)
		b = append(b, '>')
	}
	b = append(b, " pages="...)
	b = strconv.AppendUint(b, ev.Pages(), 10)
	b = append(b, " probe="...)
	b = append(b, ev.Probe.String()...)
	b = append(b, '\n')
	p.buf = b
	p.w.Write(b)
}
