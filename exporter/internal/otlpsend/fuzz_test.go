package otlpsend

import (
	"bytes"
	"errors"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fuzzMarshal is proto.Marshal for seeds, which must not fail.
func fuzzMarshal(f *testing.F, m proto.Message) []byte {
	f.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzPartialSuccess: any bytes decode, or fail, as a logs response and a
// traces response alike (the two share their wire layout, which unmarshal
// relies on); a partial success written by either reads back whole.
func FuzzPartialSuccess(f *testing.F) {
	f.Add([]byte{}, int64(0), "")
	f.Add(fuzzMarshal(f, &collogspb.ExportLogsServiceResponse{PartialSuccess: &collogspb.ExportLogsPartialSuccess{
		RejectedLogRecords: 2, ErrorMessage: "2 records too old"}}), int64(2), "2 records too old")
	f.Add(fuzzMarshal(f, &coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{
		RejectedSpans: -1, ErrorMessage: "spans: quota"}}), int64(math.MaxInt64), "é")
	f.Add([]byte{0x0a, 0x02, 0x08, 0x03}, int64(math.MinInt64), "\xff")   // rejected 3, no message
	f.Add([]byte{0x0a, 0x03, 0x12, 0x01, 0xff}, int64(1), "bad \x00 utf") // a message that is not UTF-8
	f.Add([]byte{0x0a, 0x05, 0x08}, int64(0), "")                         // cut short
	f.Add([]byte{0x1a, 0x01, 0x00, 0x0a, 0x00}, int64(0), "")             // an unknown field, then an empty partial success
	f.Fuzz(func(t *testing.T, raw []byte, rejected int64, msg string) {
		var ps partialSuccess
		err := ps.unmarshal(raw)
		var tr coltracepb.ExportTraceServiceResponse
		terr := proto.Unmarshal(raw, &tr)
		switch {
		case (err == nil) != (terr == nil):
			t.Fatalf("%x: as logs %v, as traces %v", raw, err, terr)
		case err != nil:
			if !strings.HasPrefix(err.Error(), "decode export response: ") || ps != (partialSuccess{}) {
				t.Errorf("%x: error %q, result %+v", raw, err, ps)
			}
		case ps.rejected != tr.GetPartialSuccess().GetRejectedSpans() || ps.message != tr.GetPartialSuccess().GetErrorMessage():
			t.Errorf("%x: as logs %+v, as traces %v", raw, ps, tr.GetPartialSuccess())
		}

		if !utf8.ValidString(msg) {
			return // proto3 strings are UTF-8: no response holds it
		}
		for _, m := range []proto.Message{
			&collogspb.ExportLogsServiceResponse{PartialSuccess: &collogspb.ExportLogsPartialSuccess{RejectedLogRecords: rejected, ErrorMessage: msg}},
			&coltracepb.ExportTraceServiceResponse{PartialSuccess: &coltracepb.ExportTracePartialSuccess{RejectedSpans: rejected, ErrorMessage: msg}},
		} {
			b, err := proto.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var got partialSuccess
			if err := got.unmarshal(b); err != nil || got != (partialSuccess{rejected, msg}) {
				t.Errorf("%T with %d, %q reads back as %+v, %v", m, rejected, msg, got, err)
			}
		}
	})
}

// FuzzHTTPResponse: the answer of a 2xx response is decoded only from a
// protobuf body, as unmarshal reads it, and an error says the endpoint is
// no collector; the start of an error body is quoted on one line of
// printable text, words whole, cut at errorSnippetLen bytes with "..."; a
// Retry-After of n seconds asks for n seconds (the largest Duration when n
// seconds overflow it), an HTTP date for the time until then, anything else
// for nothing, and never for a negative wait.
func FuzzHTTPResponse(f *testing.F) {
	ok := fuzzMarshal(f, &collogspb.ExportLogsServiceResponse{PartialSuccess: &collogspb.ExportLogsPartialSuccess{
		RejectedLogRecords: 1, ErrorMessage: "1 record dropped"}})
	f.Add("application/x-protobuf", ok, "5", int64(0))
	f.Add("application/x-protobuf; charset=binary", []byte{0x0a, 0x05}, "120", int64(30))
	f.Add("Application/X-Protobuf", []byte("{}"), " 7 ", int64(-30))
	f.Add("application/json", []byte(`{"partialSuccess":{}}`), "Wed, 21 Oct 2015 07:28:00 GMT", int64(3600))
	f.Add("", ok, "9223372036854775807", int64(1))
	f.Add("text/plain", []byte("upstream connect error or disconnect/reset before headers. reset reason: overflow"), "-1", int64(0))
	f.Add(";;", []byte("<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n</html>\n"), "0", int64(0))
	f.Add("text/plain", []byte(strings.Repeat("é", errorSnippetLen)), "1e3", int64(0))
	f.Add("text/plain", []byte("\x00\x01\t \n"), "+5", int64(0))
	f.Fuzz(func(t *testing.T, contentType string, body []byte, retry string, inSeconds int64) {
		// The answer of a 2xx response.
		resp := &http.Response{Status: "200 OK", StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}
		if contentType != "" {
			resp.Header.Set("Content-Type", contentType)
		}
		ps, err := decodeHTTPResponse(resp)
		mt, _, _ := mime.ParseMediaType(contentType)
		if contentType != "" && mt != "application/x-protobuf" {
			if err != nil || ps != (partialSuccess{}) {
				t.Errorf("a %q body was decoded: %+v, %v", contentType, ps, err)
			}
		} else {
			var want partialSuccess
			werr := want.unmarshal(body[:min(len(body), maxResponseBody)])
			if ps != want || (err == nil) != (werr == nil) {
				t.Errorf("%q body %x: %+v, %v; unmarshal says %+v, %v", contentType, body, ps, err, want, werr)
			}
			if err != nil && !strings.Contains(err.Error(), "200 OK") {
				t.Errorf("error %q does not say what the endpoint answered", err)
			}
		}

		checkSnippet(t, body)
		checkRetryAfter(t, retry)

		// As a server writes either form.
		if inSeconds > 0 {
			want := time.Duration(min(inSeconds, int64(math.MaxInt64/time.Second))) * time.Second
			if got := retryAfter(strconv.FormatInt(inSeconds, 10)); got != want {
				t.Errorf("Retry-After: %d = %v, want %v", inSeconds, got, want)
			}
		}
		if inSeconds > -1e6 && inSeconds < 1e6 {
			d := time.Duration(inSeconds) * time.Second
			got := retryAfter(time.Now().Add(d).UTC().Format(http.TimeFormat))
			if want := max(d, 0); got > want || got < want-2*time.Second {
				t.Errorf("Retry-After %v from now = %v", d, got)
			}
		}
	})
}

// checkSnippet asserts what readSnippet makes of body.
func checkSnippet(t *testing.T, body []byte) {
	t.Helper()
	// The printable words of the body's start, in order; the last may be
	// cut short.
	start := strings.ToValidUTF8(string(body[:min(len(body), errorSnippetLen)]), " ")
	words := strings.Fields(strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, start))
	s := readSnippet(bytes.NewReader(body))
	if len(words) == 0 {
		if s != "(empty body)" {
			t.Errorf("%q, with no printable word: snippet %s", body, s)
		}
		return
	}
	text, err := strconv.Unquote(s)
	if err != nil {
		t.Fatalf("%q: snippet %s is not quoted: %v", body, s, err)
	}
	if cut, ok := strings.CutSuffix(text, "..."); len(body) > errorSnippetLen {
		if !ok {
			t.Errorf("%d bytes: snippet %s does not end with ...", len(body), s)
		}
		text = cut
	}
	if !utf8.ValidString(text) || len(text) > errorSnippetLen || strings.Join(words, " ") != text ||
		strings.ContainsFunc(text, func(r rune) bool { return !unicode.IsPrint(r) || r == utf8.RuneError }) {
		t.Errorf("%q: snippet %q, want the words %q on one line", body, text, words)
	}
}

// checkRetryAfter asserts what retryAfter makes of any header value.
func checkRetryAfter(t *testing.T, v string) {
	t.Helper()
	got := retryAfter(v)
	if got < 0 {
		t.Fatalf("Retry-After %q = %v", v, got)
	}
	// Seconds are digits (RFC 9110); a + sign is let through.
	digits := strings.TrimPrefix(strings.TrimSpace(v), "+")
	if digits != "" && strings.Trim(digits, "0123456789") == "" {
		n, err := strconv.ParseUint(digits, 10, 64)
		want := time.Duration(math.MaxInt64 / time.Second * time.Second)
		if err == nil && n <= uint64(math.MaxInt64/time.Second) {
			want = time.Duration(n) * time.Second
		}
		if got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
		return
	}
	if _, err := http.ParseTime(v); err != nil && got != 0 {
		t.Errorf("Retry-After %q, neither seconds nor a date, = %v", v, got)
	}
}

// retryableCodes are the codes the OTLP specification retries whatever
// the details (ResourceExhausted only with RetryInfo).
var retryableCodes = []codes.Code{codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.OutOfRange, codes.Unavailable, codes.DataLoss}

// FuzzGRPCStatus: a status from the collector (a google.rpc.Status, as
// sent in grpc-status-details-bin) keeps its code through classifyGRPC,
// and is retried only as the OTLP specification says, after the first
// RetryInfo's delay; an endpoint is a gRPC target, as given or, for an
// http(s) URL, its host, with TLS as its scheme says.
func FuzzGRPCStatus(f *testing.F) {
	detail := func(m proto.Message) *anypb.Any {
		a, err := anypb.New(m)
		if err != nil {
			f.Fatal(err)
		}
		return a
	}
	retry := func(d *durationpb.Duration) *anypb.Any { return detail(&errdetails.RetryInfo{RetryDelay: d}) }
	for _, s := range []*spb.Status{
		{Code: int32(codes.Unavailable), Message: "collector starting"},
		{Code: int32(codes.ResourceExhausted), Message: "slow down", Details: []*anypb.Any{retry(durationpb.New(250 * time.Millisecond))}},
		{Code: int32(codes.ResourceExhausted), Message: "too big"},
		{Code: int32(codes.PermissionDenied), Details: []*anypb.Any{retry(durationpb.New(time.Second))}},
		{Code: int32(codes.Unavailable), Details: []*anypb.Any{detail(&errdetails.ErrorInfo{Reason: "x"}), retry(&durationpb.Duration{Seconds: -5}), retry(durationpb.New(time.Second))}},
		{Code: int32(codes.Aborted), Details: []*anypb.Any{retry(&durationpb.Duration{Seconds: math.MaxInt64})}},
		{Code: int32(codes.DataLoss), Details: []*anypb.Any{{TypeUrl: "type.googleapis.com/google.rpc.RetryInfo", Value: []byte{0x0a, 0x02, 0x08}}}},
		{Code: int32(codes.InvalidArgument), Message: "bad request"},
		{Code: 99},
		{},
	} {
		f.Add(fuzzMarshal(f, s), "collector:4317", false)
	}
	f.Add([]byte{0x08, 0x0e}, "http://collector:4317", true)
	f.Add([]byte{0xff}, "HTTPS://[::1]:4317/ignored", false)
	f.Add([]byte{}, "https://", false)
	f.Add([]byte{}, "http://user@:80", true)
	f.Fuzz(func(t *testing.T, raw []byte, endpoint string, insecure bool) {
		checkTarget(t, endpoint, insecure)

		var sp spb.Status
		if proto.Unmarshal(raw, &sp) != nil {
			return
		}
		st := status.FromProto(&sp)
		err := classifyGRPC(st.Err())
		if st.Code() == codes.OK {
			if err != nil {
				t.Fatalf("OK status classified as %v", err)
			}
			return
		}
		if got := status.Code(err); got != st.Code() {
			t.Errorf("code %v classified as an error of code %v: %v", st.Code(), got, err)
		}
		hasInfo, delay := false, time.Duration(0)
		for _, a := range sp.GetDetails() {
			var ri errdetails.RetryInfo
			if a.MessageIs(&ri) && a.UnmarshalTo(&ri) == nil {
				hasInfo, delay = true, ri.GetRetryDelay().AsDuration()
				break
			}
		}
		var re *retryableError
		retried := errors.As(err, &re)
		wantRetried := st.Code() == codes.ResourceExhausted && hasInfo
		for _, c := range retryableCodes {
			wantRetried = wantRetried || st.Code() == c
		}
		switch {
		case retried != wantRetried:
			t.Errorf("code %v (RetryInfo %v): retried %v, want %v", st.Code(), hasInfo, retried, wantRetried)
		case retried && re.throttle != delay:
			t.Errorf("code %v: waits %v, RetryInfo asks %v", st.Code(), re.throttle, delay)
		case !retried && !strings.Contains(err.Error(), st.Message()):
			t.Errorf("error %q lost the message %q", err, st.Message())
		}
	})
}

// checkTarget asserts what grpcTarget makes of an endpoint.
func checkTarget(t *testing.T, endpoint string, insecure bool) {
	t.Helper()
	target, useTLS, err := grpcTarget(endpoint, insecure)
	lower := strings.ToLower(endpoint)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") {
		if err != nil || target != endpoint || useTLS == insecure {
			t.Errorf("grpcTarget(%q, %v) = %q, %v, %v; want it as given", endpoint, insecure, target, useTLS, err)
		}
		return
	}
	if err != nil {
		if !strings.HasPrefix(err.Error(), "parse endpoint") {
			t.Errorf("grpcTarget(%q): %v", endpoint, err)
		}
		return
	}
	u, perr := url.Parse(endpoint)
	if perr != nil || target == "" || target != u.Host || useTLS != strings.HasPrefix(lower, "https://") {
		t.Errorf("grpcTarget(%q, %v) = %q, %v; url.Parse says %+v, %v", endpoint, insecure, target, useTLS, u, perr)
	}
}
