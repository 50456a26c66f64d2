{{/*
Name of the chart, or nameOverride; 63 characters at most (DNS label).
*/}}
{{- define "memlock-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name of the release's objects: fullnameOverride, else
<release>-<name> (just <release> when it already contains the name).
*/}}
{{- define "memlock-exporter.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "memlock-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "memlock-exporter.labels" -}}
helm.sh/chart: {{ include "memlock-exporter.chart" . }}
{{ include "memlock-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: node-agent
app.kubernetes.io/part-of: memlock-exporter
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels: must not change between upgrades (a DaemonSet's selector
is immutable).
*/}}
{{- define "memlock-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "memlock-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the service account.
*/}}
{{- define "memlock-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "memlock-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference.
*/}}
{{- define "memlock-exporter.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint, else the node-local collector on
the node's IP ($(HOST_IP) is expanded by the kubelet from the env var above
it).
*/}}
{{- define "memlock-exporter.otlpEndpoint" -}}
{{- if .Values.otlp.endpoint }}
{{- .Values.otlp.endpoint }}
{{- else }}
{{- printf "http://$(HOST_IP):%d" (int .Values.otlp.nodeLocalPort) }}
{{- end }}
{{- end }}

{{/*
OTEL_RESOURCE_ATTRIBUTES: k8s.node.name, k8s.cluster.name (when clusterName
is set), then resourceAttributes in sorted order.
*/}}
{{- define "memlock-exporter.resourceAttributes" -}}
{{- $attrs := list "k8s.node.name=$(K8S_NODE_NAME)" }}
{{- with .Values.clusterName }}
{{- $attrs = append $attrs (printf "k8s.cluster.name=%s" .) }}
{{- end }}
{{- range $k, $v := .Values.resourceAttributes }}
{{- if or (contains "," $k) (contains "=" $k) (contains "," (toString $v)) (contains "=" (toString $v)) }}
{{- fail (printf "resourceAttributes: %s: neither the key nor the value may contain ',' or '='" $k) }}
{{- end }}
{{- $attrs = append $attrs (printf "%s=%s" $k (toString $v)) }}
{{- end }}
{{- join "," $attrs }}
{{- end }}

{{/*
An env value of the `env` map as a string: booleans as on/off (the daemon's
switches), whole numbers without an exponent.
*/}}
{{- define "memlock-exporter.envValue" -}}
{{- if kindIs "bool" . }}
{{- ternary "on" "off" . }}
{{- else if and (kindIs "float64" .) (eq (float64 (int64 .)) .) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}
