// The franz-go peer of bench/run: read stdin lines, produce each as a record value with
// kgo.Client.Produce (asynchronous; the promise counts failures), Flush at EOF. Nothing else.
//
// Usage: franz-go BOOTSTRAP TOPIC [KEY]   (the same arguments as bench/bare-loop)
//
// TOPIC and KEY may name fields of a JSON line as kpipe's templates do ('logs.${PROGRAM}',
// '${HOST}'): bench/run's ndjson case. A field is found by a byte search for "NAME":" and taken to
// the next quote, with no JSON parsing or checking (less work than kpipe does for the same case).
// Exit:  0 when every record was acknowledged, 1 otherwise (failures printed on stderr), 2 on
// bad usage or a client that cannot be created.
//
// Only the seed brokers and the default topic are set: everything else is franz-go's default,
// from pkg/kgo/config.go defaultCfg() of v1.22.3:
//   - acks=all (AllISRAcks) and idempotence on (disableIdempotency false), so one produce
//     request in flight per broker (maxProduceInflight 1)
//   - compression snappy, falling back to none (SnappyCompression(), NoCompression())
//   - linger 10 ms (ProducerLinger)
//   - batches up to 1000012 bytes per partition (ProducerBatchMaxBytes, Kafka's
//     max.message.bytes default)
//   - at most 50000 buffered records (MaxBufferedRecords; Produce blocks beyond), no byte limit
//   - produce request timeout 10 s, unbounded record retries (RecordRetries math.MaxInt64)
//   - partitioner UniformBytesPartitioner(64 KiB, adaptive, keys hashed): unkeyed records
//     stick to one partition for ~64 KiB, then move on (what librdkafka's and Java's
//     default "sticky" partitioners do)
//
// Like the bare loop, a trailing "\n" is cut and empty lines are skipped.
package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) != 3 && len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: franz-go BOOTSTRAP TOPIC [KEY]")
		os.Exit(2)
	}
	// A TOPIC without a field is the client's default topic: records then name none.
	var topic []part
	if strings.Contains(os.Args[2], "${") {
		topic = parse(os.Args[2])
	}
	var key []part
	if len(os.Args) == 4 {
		key = parse(os.Args[3])
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(os.Args[1]),
		kgo.DefaultProduceTopic(os.Args[2]),
	)
	if err != nil {
		fmt.Fprintf(os.Stderr, "franz-go: %v\n", err)
		os.Exit(2)
	}

	var delivered, failed atomic.Int64
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			if failed.Add(1) <= 5 {
				fmt.Fprintf(os.Stderr, "franz-go: delivery failed: %v\n", err)
			}
			return
		}
		delivered.Add(1)
	}

	ctx := context.Background()
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	var read int64
	for {
		// ReadBytes returns a fresh slice: the client keeps the value until it is acknowledged.
		line, err := in.ReadBytes('\n')
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		if len(line) > 0 {
			read++
			r := &kgo.Record{Value: line}
			if topic != nil {
				r.Topic = string(render(topic, line))
			}
			if key != nil {
				r.Key = render(key, line)
			}
			cl.Produce(ctx, r, promise)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "franz-go: reading stdin: %v\n", err)
			failed.Add(1)
			break
		}
	}
	flushErr := cl.Flush(ctx)
	cl.Close()
	ok, bad := delivered.Load(), failed.Load()
	if flushErr != nil || bad > 0 || ok != read {
		fmt.Fprintf(os.Stderr, "franz-go: read %d, delivered %d, failed %d (flush: %v)\n", read, ok, bad, flushErr)
		os.Exit(1)
	}
}

// part is a piece of a template: literal text, or a field to take from the line (text is then
// what precedes its value: "NAME":").
type part struct {
	text  []byte
	field bool
}

// parse splits a template such as "logs.${PROGRAM}" into its parts.
func parse(t string) []part {
	var parts []part
	for {
		i := strings.Index(t, "${")
		j := strings.IndexByte(t[max(i, 0):], '}')
		if i < 0 || j < 0 {
			if t != "" {
				parts = append(parts, part{text: []byte(t)})
			}
			return parts
		}
		if i > 0 {
			parts = append(parts, part{text: []byte(t[:i])})
		}
		parts = append(parts, part{text: []byte(`"` + t[i+2:i+j] + `":"`), field: true})
		t = t[i+j+1:]
	}
}

// render fills a template from the line: a field the line lacks renders empty.
func render(parts []part, line []byte) []byte {
	var out []byte
	for _, p := range parts {
		if !p.field {
			out = append(out, p.text...)
			continue
		}
		if i := bytes.Index(line, p.text); i >= 0 {
			v := line[i+len(p.text):]
			if j := bytes.IndexByte(v, '"'); j >= 0 {
				out = append(out, v[:j]...)
			}
		}
	}
	return out
}
