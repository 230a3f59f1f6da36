{{- define "tbo.name" -}}tradingbot-operator{{- end -}}

{{- define "tbo.fullname" -}}
{{- if contains "tradingbot-operator" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-tradingbot-operator" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tbo.labels" -}}
app.kubernetes.io/name: {{ include "tbo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "tbo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tbo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* The migration Job's pods; with the release, so one release's NetworkPolicy selects only its own */}}
{{- define "tbo.migrationSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tbo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: migrations
{{- end -}}

{{- define "tbo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "tbo.fullname" .) .Values.serviceAccount.name }}
{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* repository:tag[@digest]: with a digest, the digest is what gets pulled; the tag stays for people */}}
{{- define "tbo.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}{{ with .Values.image.digest }}@{{ . }}{{ end }}
{{- end -}}

{{/* image.digest pins the runtime only while it is the operator's image (no repository or tag of its own) */}}
{{- define "tbo.runtimeImage" -}}
{{- $rt := .Values.runtime.image -}}
{{- $digest := $rt.digest -}}
{{- if and (not $digest) (not $rt.repository) (not $rt.tag) }}{{ $digest = .Values.image.digest }}{{ end -}}
{{ default .Values.image.repository $rt.repository }}:{{ default (default .Chart.AppVersion .Values.image.tag) $rt.tag }}{{ with $digest }}@{{ . }}{{ end }}
{{- end -}}

{{- define "tbo.databaseSecret" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecret }}{{- else -}}{{ include "tbo.fullname" . }}-database{{- end -}}
{{- end -}}

{{- define "tbo.databaseSecretKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKey }}{{- else -}}url{{- end -}}
{{- end -}}

{{- define "tbo.botsNamespace" -}}
{{- default (printf "%s-bots" (default "default" .Release.Namespace)) .Values.operator.botsNamespace -}}
{{- end -}}

{{/* The one namespace a namespaced operator watches (its bots' namespace unless told), "" for all */}}
{{- define "tbo.watchNamespace" -}}
{{- if .Values.operator.watchNamespace -}}{{ .Values.operator.watchNamespace }}
{{- else if not .Values.rbac.clusterWide -}}{{ include "tbo.botsNamespace" . }}
{{- end -}}
{{- end -}}

{{/* Checks that cannot live in values.schema.json */}}
{{- define "tbo.validate" -}}
{{- if and (not .Values.database.existingSecret) (not .Values.database.url) -}}
{{- fail "database: set database.existingSecret (a Secret with the PostgreSQL URL) or database.url" -}}
{{- end -}}
{{- if and (not .Values.rbac.clusterWide) (ne (include "tbo.watchNamespace" .) (include "tbo.botsNamespace" .)) -}}
{{- fail "rbac.clusterWide=false: operator.botsNamespace must be the watched namespace (operator.watchNamespace), or the operator could not see the bots it syncs" -}}
{{- end -}}
{{- end -}}

{{- define "tbo.databaseEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "tbo.databaseSecret" . }}
      key: {{ include "tbo.databaseSecretKey" . }}
{{- end -}}

{{- define "tbo.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "tbo.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Waivers of checkov checks (`make lint`, hack/checkov.py) for the operator's and the migration Job's
metadata (checkov reads pod-level waivers there too): `checkov.io/skip*: CHECK_ID=reason`, no "=" in the reason. */}}
{{- define "tbo.checkovSkips" -}}
checkov.io/skip1: CKV_K8S_35=DATABASE_URL is a secretKeyRef; the operator reads its settings from the environment only
{{- if not .Values.image.digest }}
checkov.io/skip2: CKV_K8S_43=image.digest is empty; the image is pulled by its version tag until one is set
checkov.io/skip3: CKV_K8S_15=a version tag with image.pullPolicy (default IfNotPresent); image.digest pins the exact image
{{- end }}
{{- if not .Values.networkPolicy.enabled }}
checkov.io/skip4: CKV2_K8S_6=networkPolicy.enabled is off; opt-in, as the database and API server addresses differ per cluster
{{- end }}
{{- end -}}
