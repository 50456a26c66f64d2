package semconv

import (
	"bytes"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.yaml.in/yaml/v3"
)

const registryPath = "registry/memlock.yaml"

// The subset of weaver's registry format this schema uses. Decoding with
// KnownFields rejects anything else, so a misspelt field fails the test.
type registryFile struct {
	Groups []registryGroup `yaml:"groups"`
}

type registryGroup struct {
	ID          string          `yaml:"id"`
	Type        string          `yaml:"type"`
	DisplayName string          `yaml:"display_name"`
	Brief       string          `yaml:"brief"`
	Note        string          `yaml:"note"`
	Stability   string          `yaml:"stability"`
	Name        string          `yaml:"name"`
	Body        *registryBody   `yaml:"body"`
	MetricName  string          `yaml:"metric_name"`
	Instrument  string          `yaml:"instrument"`
	Unit        string          `yaml:"unit"`
	Attributes  []registryAttr  `yaml:"attributes"`
	Extends     string          `yaml:"extends"`
	Annotations *yaml.Node      `yaml:"annotations"`
	Deprecated  *yaml.Node      `yaml:"deprecated"`
	Members     []registryEnumM `yaml:"members"` // never valid on a group; caught below

	// EntityAssociations names, on a signal, the entities whose resource
	// its telemetry sits under.
	EntityAssociations []string `yaml:"entity_associations"`
}

type registryBody struct {
	ID               string    `yaml:"id"`
	Type             string    `yaml:"type"`
	Stability        string    `yaml:"stability"`
	RequirementLevel yaml.Node `yaml:"requirement_level"`
	Brief            string    `yaml:"brief"`
	Note             string    `yaml:"note"`
	Examples         yaml.Node `yaml:"examples"`
}

type registryAttr struct {
	ID               string    `yaml:"id"`
	Ref              string    `yaml:"ref"`
	Type             yaml.Node `yaml:"type"`
	Stability        string    `yaml:"stability"`
	Brief            string    `yaml:"brief"`
	Note             string    `yaml:"note"`
	Examples         yaml.Node `yaml:"examples"`
	RequirementLevel yaml.Node `yaml:"requirement_level"`
	// Role is "identifying" (weaver's default) or "descriptive", on an
	// entity's attributes only.
	Role string `yaml:"role"`
}

type registryEnum struct {
	Members []registryEnumM `yaml:"members"`
}

type registryEnumM struct {
	ID        string    `yaml:"id"`
	Value     yaml.Node `yaml:"value"`
	Brief     string    `yaml:"brief"`
	Note      string    `yaml:"note"`
	Stability string    `yaml:"stability"`
}

// resolvedAttr is a registry attribute with its type worked out.
type resolvedAttr struct {
	registryAttr
	typ     AttrType
	members []string // enum member values; nil when not an enum
}

type registry struct {
	attrs    map[string]resolvedAttr  // custom attribute definitions by id
	entities map[string]registryGroup // by entity name
	events   map[string]registryGroup // by event name
	metrics  map[string]registryGroup // by metric name
}

func loadRegistry(t *testing.T) registry {
	t.Helper()
	data, err := os.ReadFile(registryPath)
	if err != nil {
		t.Fatalf("read registry: %v", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f registryFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("parse %s: %v", registryPath, err)
	}
	if len(f.Groups) == 0 {
		t.Fatalf("%s: no groups", registryPath)
	}
	r := registry{
		attrs:    map[string]resolvedAttr{},
		entities: map[string]registryGroup{},
		events:   map[string]registryGroup{},
		metrics:  map[string]registryGroup{},
	}
	groupIDs := map[string]bool{}
	for _, g := range f.Groups {
		if g.ID == "" {
			t.Errorf("group without id (brief %q)", g.Brief)
			continue
		}
		if groupIDs[g.ID] {
			t.Errorf("group %s: defined twice", g.ID)
		}
		groupIDs[g.ID] = true
		if strings.TrimSpace(g.Brief) == "" {
			t.Errorf("group %s: no brief", g.ID)
		}
		if g.Extends != "" {
			t.Errorf("group %s: extends is not supported by this test; list attributes by ref", g.ID)
		}
		if g.Members != nil {
			t.Errorf("group %s: members belong in an attribute's type", g.ID)
		}
		if g.Type != "entity" {
			for _, a := range g.Attributes {
				if a.Role != "" {
					t.Errorf("group %s: attribute %s%s has a role; roles belong to an entity's attributes", g.ID, a.ID, a.Ref)
				}
			}
		}
		if g.EntityAssociations != nil && g.Type != "event" && g.Type != "metric" {
			t.Errorf("group %s: entity_associations on a %s group; signals (events, metrics) have them", g.ID, g.Type)
		}
		switch g.Type {
		case "attribute_group":
			for _, a := range g.Attributes {
				if a.Ref != "" {
					t.Errorf("group %s: attribute group refs %s; define attributes here, reference them from events and metrics", g.ID, a.Ref)
					continue
				}
				if _, dup := r.attrs[a.ID]; dup {
					t.Errorf("attribute %s: defined twice", a.ID)
				}
				r.attrs[a.ID] = resolveAttr(t, a)
			}
		case "entity":
			if g.Name == "" {
				t.Errorf("entity group %s: no name", g.ID)
			}
			if want := "entity." + g.Name; g.ID != want {
				t.Errorf("entity group %s: id should be %s", g.ID, want)
			}
			if g.Stability != "development" {
				t.Errorf("entity %s: stability %q, want development", g.Name, g.Stability)
			}
			if _, dup := r.entities[g.Name]; dup {
				t.Errorf("entity %s: defined twice", g.Name)
			}
			identifying := 0
			for _, a := range g.Attributes {
				switch a.Role {
				case "identifying":
					identifying++
					if a.RequirementLevel.Value != "required" {
						t.Errorf("entity %s: identifying attribute %s is not required", g.Name, a.Ref)
					}
				case "descriptive":
				case "":
					// weaver's default is identifying: say which.
					t.Errorf("entity %s: attribute %s has no role; say identifying or descriptive", g.Name, a.Ref)
				default:
					t.Errorf("entity %s: attribute %s: role %q, want identifying or descriptive", g.Name, a.Ref, a.Role)
				}
			}
			if identifying == 0 {
				t.Errorf("entity %s: no identifying attribute", g.Name)
			}
			r.entities[g.Name] = g
		case "event":
			if g.Name == "" {
				t.Errorf("event group %s: no name", g.ID)
			}
			if want := "event." + g.Name; g.ID != want {
				t.Errorf("event group %s: id should be %s", g.ID, want)
			}
			if g.Stability != "development" {
				t.Errorf("event %s: stability %q, want development", g.Name, g.Stability)
			}
			if _, dup := r.events[g.Name]; dup {
				t.Errorf("event %s: defined twice", g.Name)
			}
			r.events[g.Name] = g
		case "metric":
			if g.MetricName == "" {
				t.Errorf("metric group %s: no metric_name", g.ID)
			}
			if want := "metric." + g.MetricName; g.ID != want {
				t.Errorf("metric group %s: id should be %s", g.ID, want)
			}
			if g.Stability != "development" {
				t.Errorf("metric %s: stability %q, want development", g.MetricName, g.Stability)
			}
			if _, dup := r.metrics[g.MetricName]; dup {
				t.Errorf("metric %s: defined twice", g.MetricName)
			}
			r.metrics[g.MetricName] = g
		default:
			t.Errorf("group %s: type %q, want attribute_group, entity, event or metric", g.ID, g.Type)
		}
	}
	for _, g := range f.Groups {
		for _, name := range g.EntityAssociations {
			if _, ok := r.entities[name]; !ok {
				t.Errorf("group %s: entity_associations names %q, not an entity of %s", g.ID, name, registryPath)
			}
		}
	}
	return r
}

func resolveAttr(t *testing.T, a registryAttr) resolvedAttr {
	t.Helper()
	ra := resolvedAttr{registryAttr: a}
	if a.ID == "" {
		t.Errorf("attribute without id (brief %q)", a.Brief)
		return ra
	}
	if a.Stability != "development" {
		t.Errorf("attribute %s: stability %q, want development", a.ID, a.Stability)
	}
	if strings.TrimSpace(a.Brief) == "" {
		t.Errorf("attribute %s: no brief", a.ID)
	}
	switch a.Type.Kind {
	case yaml.ScalarNode:
		ra.typ = AttrType(a.Type.Value)
		switch ra.typ {
		case TypeString, TypeInt, TypeDouble, TypeBoolean, TypeStringSlice,
			"int[]", "double[]", "boolean[]":
		default:
			t.Errorf("attribute %s: unknown type %q", a.ID, a.Type.Value)
		}
	case yaml.MappingNode:
		var e registryEnum
		if err := a.Type.Decode(&e); err != nil {
			t.Errorf("attribute %s: enum type: %v", a.ID, err)
			return ra
		}
		if len(e.Members) == 0 {
			t.Errorf("attribute %s: enum without members", a.ID)
		}
		ra.typ = TypeString
		for _, m := range e.Members {
			if m.Value.Kind != yaml.ScalarNode || m.Value.Tag != "!!str" {
				t.Errorf("attribute %s: member %s: value %q is not a string", a.ID, m.ID, m.Value.Value)
				continue
			}
			if m.ID != m.Value.Value {
				t.Errorf("attribute %s: member id %q differs from its value %q", a.ID, m.ID, m.Value.Value)
			}
			if m.Stability != "development" {
				t.Errorf("attribute %s: member %s: stability %q, want development", a.ID, m.ID, m.Stability)
			}
			if strings.TrimSpace(m.Brief) == "" {
				t.Errorf("attribute %s: member %s: no brief", a.ID, m.ID)
			}
			ra.members = append(ra.members, m.Value.Value)
		}
	default:
		t.Errorf("attribute %s: no type", a.ID)
	}
	checkExamples(t, a.ID, ra.typ, ra.members, &a.Examples, true)
	return ra
}

// checkExamples checks that examples are present (if required) and of the
// attribute's type, and members of its enum if it has one.
func checkExamples(t *testing.T, id string, typ AttrType, members []string, n *yaml.Node, required bool) {
	t.Helper()
	if n.Kind == 0 {
		if required {
			t.Errorf("attribute %s: no examples", id)
		}
		return
	}
	var values []*yaml.Node
	switch {
	case n.Kind == yaml.SequenceNode && (typ != TypeStringSlice || len(n.Content) > 0 && n.Content[0].Kind == yaml.SequenceNode):
		values = n.Content
	default:
		values = []*yaml.Node{n}
	}
	if len(values) == 0 {
		t.Errorf("attribute %s: empty examples", id)
	}
	scalarOK := func(v *yaml.Node, elem AttrType) bool {
		if v.Kind != yaml.ScalarNode {
			return false
		}
		switch elem {
		case TypeString:
			return v.Tag == "!!str"
		case TypeInt:
			return v.Tag == "!!int"
		case TypeDouble:
			return v.Tag == "!!float" || v.Tag == "!!int"
		case TypeBoolean:
			return v.Tag == "!!bool"
		}
		return false
	}
	for _, v := range values {
		ok := false
		switch typ {
		case TypeStringSlice:
			ok = v.Kind == yaml.SequenceNode
			for _, e := range v.Content {
				ok = ok && scalarOK(e, TypeString)
			}
		default:
			ok = scalarOK(v, typ)
			if ok && members != nil && !slices.Contains(members, v.Value) {
				t.Errorf("attribute %s: example %q is not one of its members %v", id, v.Value, members)
			}
		}
		if !ok {
			t.Errorf("attribute %s: example at line %d is not of type %s", id, v.Line, typ)
		}
	}
}

var (
	wsRE   = regexp.MustCompile(`\s+`)
	unitRE = regexp.MustCompile("Unit: `([^`]*)`")
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
)

func normalize(s string) string { return strings.TrimSpace(wsRE.ReplaceAllString(s, " ")) }

func keySet(keys []attribute.Key) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[string(k)] = true
	}
	return m
}

func refSet(t *testing.T, where string, attrs []registryAttr) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	for _, a := range attrs {
		if a.Ref == "" {
			t.Errorf("%s: attribute %q defined in place; define it in the attribute group and use ref", where, a.ID)
			continue
		}
		if m[a.Ref] {
			t.Errorf("%s: %s referenced twice", where, a.Ref)
		}
		m[a.Ref] = true
	}
	return m
}

func compareSets(t *testing.T, where, codeName, regName string, code, reg map[string]bool) {
	t.Helper()
	for k := range code {
		if !reg[k] {
			t.Errorf("%s: %s is in %s but not in %s", where, k, codeName, regName)
		}
	}
	for k := range reg {
		if !code[k] {
			t.Errorf("%s: %s is in %s but not in %s", where, k, regName, codeName)
		}
	}
}

func TestCustomAttributesMatchRegistry(t *testing.T) {
	r := loadRegistry(t)
	seen := map[string]bool{}
	for _, def := range CustomAttributes {
		id := string(def.Key)
		if seen[id] {
			t.Errorf("CustomAttributes: %s listed twice", id)
		}
		seen[id] = true
		if !strings.HasPrefix(id, "memlock.") {
			t.Errorf("custom attribute %s is not in the memlock. namespace", id)
		}
		reg, ok := r.attrs[id]
		if !ok {
			t.Errorf("custom attribute %s is in semconv.go but not in %s", id, registryPath)
			continue
		}
		if reg.typ != def.Type {
			t.Errorf("attribute %s: type %q in code, %q in registry", id, def.Type, reg.typ)
		}
		if got, want := normalize(reg.Brief), normalize(def.Brief); got != want {
			t.Errorf("attribute %s: brief differs\n code:     %q\n registry: %q", id, want, got)
		}
		if !slices.Equal(reg.members, def.Members) {
			t.Errorf("attribute %s: members %v in code, %v in registry", id, def.Members, reg.members)
		}
		regUnit := ""
		if m := unitRE.FindStringSubmatch(reg.Note); m != nil {
			regUnit = m[1]
		}
		if regUnit != def.Unit {
			t.Errorf("attribute %s: unit %q in code, %q in the registry note (\"Unit: `...`\")", id, def.Unit, regUnit)
		}
	}
	for id := range r.attrs {
		if !seen[id] {
			t.Errorf("attribute %s is in %s but not in CustomAttributes", id, registryPath)
		}
	}
	// No attribute name may also be the namespace of another one.
	for a := range r.attrs {
		for b := range r.attrs {
			if strings.HasPrefix(b, a+".") {
				t.Errorf("attribute %s is also the namespace of %s", a, b)
			}
		}
	}
}

// TestConstructorsMatchTypes checks that the helper constructors produce
// values of the type the registry documents, for every custom attribute.
func TestConstructorsMatchTypes(t *testing.T) {
	kvs := []attribute.KeyValue{
		Syscall(SyscallMlock2),
		Addr(0x7f3a1c000000),
		Len(8192),
		Pages(2),
		Flags(1),
		FlagNames("MLOCK_ONFAULT"),
		ReturnValue(-12),
		Duration(4200 * time.Nanosecond),
		Probe(ProbeFentry),
		Reason(ReasonRingbufFull),
		CgroupID(4026),
		ProcessGroupID(1000),
		ProcessRealGroupID(1000),
		KernelDuration(3100 * time.Nanosecond),
		LibcFunction(LibcMlock2),
		CallerAddress(0x55d0c0de1234),
		Locked(900 << 10),
		Limit(1 << 20),
		RepeatCount(287514),
		RepeatFirstTime(time.Unix(1, 2)),
		RepeatLastTime(time.Unix(3, 4)),
	}
	wantType := map[AttrType]attribute.Type{
		TypeString:      attribute.STRING,
		TypeInt:         attribute.INT64,
		TypeDouble:      attribute.FLOAT64,
		TypeBoolean:     attribute.BOOL,
		TypeStringSlice: attribute.STRINGSLICE,
	}
	byKey := map[attribute.Key]attribute.KeyValue{}
	for _, kv := range kvs {
		byKey[kv.Key] = kv
	}
	for _, def := range CustomAttributes {
		kv, ok := byKey[def.Key]
		if !ok {
			t.Errorf("attribute %s: no constructor covered by this test", def.Key)
			continue
		}
		if got, want := kv.Value.Type(), wantType[def.Type]; got != want {
			t.Errorf("attribute %s: constructor makes %s, registry type %s wants %s", def.Key, got, def.Type, want)
		}
	}
	if len(byKey) != len(CustomAttributes) {
		t.Errorf("%d constructors tested, %d custom attributes", len(byKey), len(CustomAttributes))
	}

	if got := Duration(4200 * time.Nanosecond).Value.AsFloat64(); math.Abs(got-4.2e-6) > 1e-15 {
		t.Errorf("Duration(4.2µs) = %g s", got)
	}
	if got := Len(math.MaxUint64).Value.AsInt64(); got != math.MaxInt64 {
		t.Errorf("Len(MaxUint64) = %d, want MaxInt64", got)
	}
	if got := Pages(math.MaxUint64).Value.AsInt64(); got != math.MaxInt64 {
		t.Errorf("Pages(MaxUint64) = %d, want MaxInt64", got)
	}
	if got := Addr(math.MaxUint64).Value.AsInt64(); got != -1 {
		t.Errorf("Addr(MaxUint64) = %d, want the bits kept (-1)", got)
	}
	if got := Addr(0x7f3a1c000000).Value.AsInt64(); got != 0x7f3a1c000000 {
		t.Errorf("Addr(0x7f3a1c000000) = %#x", got)
	}
	if got := KernelDuration(3100 * time.Nanosecond).Value.AsFloat64(); math.Abs(got-3.1e-6) > 1e-15 {
		t.Errorf("KernelDuration(3.1µs) = %g s", got)
	}
	if got := CallerAddress(math.MaxUint64).Value.AsInt64(); got != -1 {
		t.Errorf("CallerAddress(MaxUint64) = %d, want the bits kept (-1)", got)
	}
	if got := ProcessGroupID(math.MaxUint32).Value.AsInt64(); got != math.MaxUint32 {
		t.Errorf("ProcessGroupID(MaxUint32) = %d", got)
	}
}

func TestStandardKeys(t *testing.T) {
	// The exact strings of semantic conventions v1.43.0; a semconv upgrade
	// that renames one of them fails here.
	want := map[attribute.Key]string{
		ErrorTypeKey:             "error.type",
		ProcessPIDKey:            "process.pid",
		ProcessParentPIDKey:      "process.parent_pid",
		ThreadIDKey:              "thread.id",
		ThreadNameKey:            "thread.name",
		ProcessExecutableNameKey: "process.executable.name",
		ProcessExecutablePathKey: "process.executable.path",
		ProcessUserIDKey:         "process.user.id",
		ProcessRealUserIDKey:     "process.real_user.id",
		ProcessLinuxCgroupKey:    "process.linux.cgroup",
		ContainerIDKey:           "container.id",
		K8SPodUIDKey:             "k8s.pod.uid",
		ProcessCommandArgsKey:    "process.command_args",
		ProcessVpidKey:           "process.vpid",
		ProcessCreationTimeKey:   "process.creation.time",
	}
	for k, s := range want {
		if string(k) != s {
			t.Errorf("standard key %q, want %q", k, s)
		}
	}
	if len(want) != 15 {
		t.Errorf("table has %d distinct keys, want 15 (two constants share a value?)", len(want))
	}
	got := map[attribute.Key]bool{}
	for _, k := range StandardAttributes {
		if got[k] {
			t.Errorf("StandardAttributes: %s listed twice", k)
		}
		got[k] = true
		if _, ok := want[k]; !ok {
			t.Errorf("StandardAttributes: %s not checked by this test", k)
		}
		if strings.HasPrefix(string(k), "memlock.") {
			t.Errorf("StandardAttributes: %s is a custom key", k)
		}
	}
	for k := range want {
		if !got[k] {
			t.Errorf("StandardAttributes lacks %s", k)
		}
	}
	if SchemaURL != "https://opentelemetry.io/schemas/1.43.0" {
		t.Errorf("SchemaURL = %q", SchemaURL)
	}
	if ScopeName != "github.com/memlock-exporter/memlock-exporter" {
		t.Errorf("ScopeName = %q", ScopeName)
	}
}

func TestEventsMatchRegistry(t *testing.T) {
	r := loadRegistry(t)
	std := keySet(StandardAttributes)
	syscalls := map[string]bool{}
	for _, def := range CustomAttributes {
		if def.Key == SyscallKey {
			for _, m := range def.Members {
				syscalls[m] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, def := range Events {
		if seen[def.Name] {
			t.Errorf("Events: %s listed twice", def.Name)
		}
		seen[def.Name] = true
		if !nameRE.MatchString(def.Name) || !strings.HasPrefix(def.Name, "memlock.") {
			t.Errorf("event name %q is not a memlock.* name", def.Name)
		}
		if def.Syscall == "" { // not a call
			if EventName(def.Name) != "" {
				t.Errorf("event %s: not a call, yet EventName knows it", def.Name)
			}
		} else if got := EventName(def.Syscall); got != def.Name {
			t.Errorf("EventName(%q) = %q, want %q", def.Syscall, got, def.Name)
		}
		if def.Syscall != "" && !syscalls[def.Syscall] {
			t.Errorf("event %s: syscall %q is not a member of %s", def.Name, def.Syscall, SyscallKey)
		}
		delete(syscalls, def.Syscall)
		reg, ok := r.events[def.Name]
		if !ok {
			t.Errorf("event %s is in semconv.go but not in %s", def.Name, registryPath)
			continue
		}
		where := "event " + def.Name
		refs := refSet(t, where, reg.Attributes)
		compareSets(t, where, "semconv.go", registryPath, keySet(def.Attributes), refs)
		for ref := range refs {
			if _, custom := r.attrs[ref]; !custom && !std[ref] {
				t.Errorf("%s: ref %s is neither a registry attribute nor in StandardAttributes", where, ref)
			}
		}
		for _, a := range reg.Attributes {
			if ra, custom := r.attrs[a.Ref]; custom {
				checkExamples(t, where+": "+a.Ref, ra.typ, ra.members, &a.Examples, false)
			}
		}
		if reg.Body != nil && (reg.Body.Type == "" || reg.Body.ID == "" || reg.Body.Stability == "") {
			t.Errorf("%s: body needs id, type and stability", where)
		}
	}
	for name := range r.events {
		if !seen[name] {
			t.Errorf("event %s is in %s but not in Events", name, registryPath)
		}
	}
	for s := range syscalls {
		if EventName(s) != "" {
			t.Errorf("syscall %s has an event name but no entry in Events", s)
		}
	}
	for _, s := range []string{"", "unknown", "mmap", "memlock.mlock2", "MLOCK2"} {
		if got := EventName(s); got != "" {
			t.Errorf("EventName(%q) = %q, want \"\"", s, got)
		}
	}
}

// processEntity is the registry's name of the resource a process's records
// and spans sit under (group entity.memlock.process).
const processEntity = "memlock.process"

// TestProcessResourceMatchesRegistry checks ProcessResourceAttributes
// against the registry's entity group: the same keys in the same order (the
// order the exporter writes them), each a known attribute, none of them on
// any event, and every event associated with the entity.
func TestProcessResourceMatchesRegistry(t *testing.T) {
	r := loadRegistry(t)
	reg, ok := r.entities[processEntity]
	if !ok {
		t.Fatalf("%s: no entity group named %s (id entity.%s)", registryPath, processEntity, processEntity)
	}
	for name := range r.entities {
		if name != processEntity {
			t.Errorf("entity %s is in %s but semconv.go knows only %s", name, registryPath, processEntity)
		}
	}
	where := "entity " + processEntity
	refSet(t, where, reg.Attributes)
	var refs, code []string
	roles := map[string]string{}
	for _, a := range reg.Attributes {
		refs = append(refs, a.Ref)
		roles[a.Ref] = a.Role
		if ra, custom := r.attrs[a.Ref]; custom {
			checkExamples(t, where+": "+a.Ref, ra.typ, ra.members, &a.Examples, false)
		}
	}
	for _, k := range ProcessResourceAttributes {
		code = append(code, string(k))
	}
	if !slices.Equal(code, refs) {
		t.Errorf("%s: the keys or their order differ\n ProcessResourceAttributes: %v\n registry refs:             %v", where, code, refs)
	}

	std := keySet(StandardAttributes)
	seen := map[attribute.Key]bool{}
	for _, k := range ProcessResourceAttributes {
		if seen[k] {
			t.Errorf("ProcessResourceAttributes: %s listed twice", k)
		}
		seen[k] = true
		if _, custom := r.attrs[string(k)]; !custom && !std[string(k)] {
			t.Errorf("ProcessResourceAttributes: %s is neither a registry attribute nor in StandardAttributes", k)
		}
	}
	// pid and start time identify a process (a later one may reuse the
	// pid); pid and executable name are what the resource keeps when the
	// kernel's identity of the process is missing.
	for _, k := range []attribute.Key{ProcessPIDKey, ProcessCreationTimeKey} {
		if roles[string(k)] != "identifying" {
			t.Errorf("%s: %s has role %q, want identifying", where, k, roles[string(k)])
		}
	}
	for k, role := range roles {
		if role == "identifying" && k != string(ProcessPIDKey) && k != string(ProcessCreationTimeKey) {
			t.Errorf("%s: %s is identifying; only process.pid and process.creation.time identify a process", where, k)
		}
	}
	if !seen[ProcessExecutableNameKey] {
		t.Errorf("ProcessResourceAttributes lacks %s", ProcessExecutableNameKey)
	}

	// The records name their process through the resource only.
	res := keySet(ProcessResourceAttributes)
	for _, def := range Events {
		for _, k := range def.Attributes {
			if res[string(k)] {
				t.Errorf("Events: %s lists %s, an attribute of the process's resource", def.Name, k)
			}
		}
	}
	for name, g := range r.events {
		for _, a := range g.Attributes {
			if res[a.Ref] {
				t.Errorf("event %s: refs %s, an attribute of entity %s; the record's resource carries it", name, a.Ref, processEntity)
			}
		}
		if !slices.Equal(g.EntityAssociations, []string{processEntity}) {
			t.Errorf("event %s: entity_associations %v, want [%s]: its records sit under the process's resource", name, g.EntityAssociations, processEntity)
		}
	}
}

// TestStandardAttributesUsed checks that StandardAttributes holds no key
// the schema does not use on an event, a metric or the process's resource
// (TestEventsMatchRegistry, TestMetricsMatchRegistry and
// TestProcessResourceMatchesRegistry check the other way).
func TestStandardAttributesUsed(t *testing.T) {
	used := keySet(ProcessResourceAttributes)
	for _, e := range Events {
		for k := range keySet(e.Attributes) {
			used[k] = true
		}
	}
	for _, m := range Metrics {
		for k := range keySet(m.Attributes) {
			used[k] = true
		}
	}
	for _, k := range StandardAttributes {
		if !used[string(k)] {
			t.Errorf("StandardAttributes: %s is used by no event, metric or resource", k)
		}
	}
}

func TestMetricsMatchRegistry(t *testing.T) {
	r := loadRegistry(t)
	std := keySet(StandardAttributes)
	// High-cardinality attributes never go on metrics.
	forbidden := keySet([]attribute.Key{
		ProcessPIDKey, ProcessParentPIDKey, ThreadIDKey, ThreadNameKey,
		ProcessExecutablePathKey, AddrKey, LenKey, PagesKey, DurationKey, ReturnValueKey,
		CgroupIDKey, ProcessLinuxCgroupKey, ContainerIDKey, K8SPodUIDKey,
		ProcessCreationTimeKey, ProcessCommandArgsKey, ProcessVpidKey,
	})
	seen := map[string]bool{}
	for _, def := range Metrics {
		if seen[def.Name] {
			t.Errorf("Metrics: %s listed twice", def.Name)
		}
		seen[def.Name] = true
		if !nameRE.MatchString(def.Name) || !strings.HasPrefix(def.Name, "memlock.") {
			t.Errorf("metric name %q is not a memlock.* name", def.Name)
		}
		reg, ok := r.metrics[def.Name]
		if !ok {
			t.Errorf("metric %s is in semconv.go but not in %s", def.Name, registryPath)
			continue
		}
		where := "metric " + def.Name
		if reg.Instrument != string(def.Instrument) {
			t.Errorf("%s: instrument %q in code, %q in registry", where, def.Instrument, reg.Instrument)
		}
		if reg.Unit != def.Unit {
			t.Errorf("%s: unit %q in code, %q in registry", where, def.Unit, reg.Unit)
		}
		if got, want := normalize(reg.Brief), normalize(def.Description); got != want {
			t.Errorf("%s: brief differs from Description\n code:     %q\n registry: %q", where, want, got)
		}
		refs := refSet(t, where, reg.Attributes)
		compareSets(t, where, "semconv.go", registryPath, keySet(def.Attributes), refs)
		for ref := range refs {
			if _, custom := r.attrs[ref]; !custom && !std[ref] {
				t.Errorf("%s: ref %s is neither a registry attribute nor in StandardAttributes", where, ref)
			}
			if forbidden[ref] && !(def.OptIn && ref == string(ProcessPIDKey)) {
				t.Errorf("%s: high-cardinality attribute %s on a metric", where, ref)
			}
		}
	}
	for name := range r.metrics {
		if !seen[name] {
			t.Errorf("metric %s is in %s but not in Metrics", name, registryPath)
		}
	}
}

func TestBuckets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		get    func() []float64
		metric string
		first  float64
		last   float64
		n      int
	}{
		{"CallDurationBuckets", CallDurationBuckets, MetricCallDuration, 1e-6, 1, 19},
		{"CallSizeBuckets", CallSizeBuckets, MetricCallSize, 4 << 10, 16 << 30, 12},
	} {
		b := tc.get()
		if len(b) != tc.n {
			t.Errorf("%s: %d boundaries, want %d", tc.name, len(b), tc.n)
			continue
		}
		if b[0] != tc.first || b[len(b)-1] != tc.last {
			t.Errorf("%s: range [%g, %g], want [%g, %g]", tc.name, b[0], b[len(b)-1], tc.first, tc.last)
		}
		for i := 1; i < len(b); i++ {
			if !(b[i] > b[i-1]) {
				t.Errorf("%s: boundary %d (%g) not above boundary %d (%g)", tc.name, i, b[i], i-1, b[i-1])
			}
		}
		for _, v := range b {
			if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
				t.Errorf("%s: boundary %g is not a positive finite number", tc.name, v)
			}
		}
		b[0] = -1
		if tc.get()[0] == -1 {
			t.Errorf("%s: returns a shared slice; want a fresh copy", tc.name)
		}
		var instrument Instrument
		for _, m := range Metrics {
			if m.Name == tc.metric {
				instrument = m.Instrument
			}
		}
		if instrument != InstrumentHistogram {
			t.Errorf("%s: metric %s is %q, want a histogram", tc.name, tc.metric, instrument)
		}
	}
	// Size boundaries are the powers of four from 4 KiB.
	for i, v := range CallSizeBuckets() {
		if want := math.Ldexp(1, 12+2*i); v != want {
			t.Errorf("CallSizeBuckets()[%d] = %g, want %g", i, v, want)
		}
	}
	// Duration boundaries follow 1, 2.5, 5 per decade.
	for i, v := range CallDurationBuckets() {
		want := []float64{1, 2.5, 5}[i%3] * math.Pow(10, float64(i/3-6))
		if math.Abs(v-want) > want*1e-12 {
			t.Errorf("CallDurationBuckets()[%d] = %g, want %g", i, v, want)
		}
	}
}
