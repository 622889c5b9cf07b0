{{/* Chart name, overridable. */}}
{{- define "whisper-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name prefix: "<release>-<chart>", or just the chart name when it holds the release name
     (release "whisper" gives "whisper-operator", not "whisper-whisper-operator"). */}}
{{- define "whisper-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains .Release.Name $name -}}
{{- $name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "whisper-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "whisper-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "whisper-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "whisper-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: whisper-kserve
{{- end -}}

{{- define "whisper-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "whisper-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* "repository:tag" with the tag defaulting to the chart's appVersion. Argument: dict with image and root. */}}
{{- define "whisper-operator.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* Label KServe copies from the ClusterServingRuntime onto every predictor Service and pod it creates. */}}
{{- define "whisper-operator.runtimeLabelKey" -}}
whisper.kserve-contrib.io/serving-runtime
{{- end -}}

{{/* The endpoint policy's allow-lists as JSON, the form whisper_operator.policy reads. */}}
{{- define "whisper-operator.endpointPolicy" -}}
{{- $policy := .Values.endpointPolicy -}}
{{- dict "runtimeImages" $policy.runtimeImages "tolerations" $policy.tolerations "envNames" $policy.envNames | toJson -}}
{{- end -}}
