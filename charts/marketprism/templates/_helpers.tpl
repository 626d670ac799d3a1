{{/* Chart name, truncated to the 63 characters Kubernetes allows in names and labels. */}}
{{- define "marketprism.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: the release name, plus the chart name unless the release already contains it. */}}
{{- define "marketprism.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of a component's objects: "<fullname>-<component>". Call with (dict "root" $ "component" "nats"). */}}
{{- define "marketprism.componentName" -}}
{{- printf "%s-%s" (include "marketprism.fullname" .root | trunc 52 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "marketprism.operatorName" -}}
{{- include "marketprism.componentName" (dict "root" . "component" "operator") -}}
{{- end -}}

{{- define "marketprism.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "marketprism.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "marketprism.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "marketprism.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: marketprism
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component. Call with (dict "root" $ "component" "operator"). */}}
{{- define "marketprism.selectorLabels" -}}
app.kubernetes.io/name: {{ include "marketprism.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "marketprism.componentLabels" -}}
{{ include "marketprism.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* "repository:tag" or "repository@digest"; the tag defaults to the chart's appVersion. */}}
{{- define "marketprism.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security context shared by the chart's own pods. */}}
{{- define "marketprism.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security context: no privileges, nothing writable but mounted volumes. */}}
{{- define "marketprism.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Service DNS names of the dev-mode servers, for NOTES and the simulator. */}}
{{- define "marketprism.devNatsUrl" -}}
{{- printf "nats://%s.%s.svc:4222" (include "marketprism.componentName" (dict "root" . "component" "nats")) .Release.Namespace -}}
{{- end -}}
{{- define "marketprism.devClickHouseUrl" -}}
{{- printf "http://%s.%s.svc:8123" (include "marketprism.componentName" (dict "root" . "component" "clickhouse")) .Release.Namespace -}}
{{- end -}}
