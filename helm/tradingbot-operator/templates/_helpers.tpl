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

{{- define "tbo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "tbo.fullname" .) .Values.serviceAccount.name }}
{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "tbo.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{- define "tbo.runtimeImage" -}}
{{ default .Values.image.repository .Values.runtime.image.repository }}:{{ default (default .Chart.AppVersion .Values.image.tag) .Values.runtime.image.tag }}
{{- end -}}

{{- define "tbo.databaseSecret" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecret }}{{- else -}}{{ include "tbo.fullname" . }}-database{{- end -}}
{{- end -}}

{{- define "tbo.databaseSecretKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKey }}{{- else -}}url{{- end -}}
{{- end -}}

{{- define "tbo.botsNamespace" -}}
{{- default .Release.Namespace .Values.operator.botsNamespace -}}
{{- end -}}

{{/* Checks that cannot live in values.schema.json */}}
{{- define "tbo.validate" -}}
{{- if and (not .Values.database.existingSecret) (not .Values.database.url) -}}
{{- fail "database: set database.existingSecret (a Secret with the PostgreSQL URL) or database.url" -}}
{{- end -}}
{{- if and (not .Values.rbac.clusterWide) (not .Values.operator.watchNamespace) -}}
{{- fail "rbac.clusterWide=false needs operator.watchNamespace: a namespaced operator watches one namespace" -}}
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
