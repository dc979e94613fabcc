{{/* Names and labels shared by every template of the Pitboss chart. */}}

{{- define "pitboss.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-pitboss, or the release name alone when it contains the chart name. */}}
{{- define "pitboss.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 54 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The operator's objects: Deployment, ServiceAccount, ClusterRole... ("pitboss-operator" for release "pitboss"). */}}
{{- define "pitboss.operator.name" -}}
{{- printf "%s-operator" (include "pitboss.fullname" .) -}}
{{- end -}}

{{- define "pitboss.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pitboss.operator.name" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pitboss.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pitboss
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector of the operator pods: the name kustomize uses, plus the release. */}}
{{- define "pitboss.operator.selectorLabels" -}}
app.kubernetes.io/name: pitboss-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pitboss.operator.labels" -}}
{{ include "pitboss.labels" . }}
{{ include "pitboss.operator.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "pitboss.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Namespace of the TrafficEvents the sync-events CronJob writes. */}}
{{- define "pitboss.syncEvents.namespace" -}}
{{- if .Values.syncEvents.namespace -}}
{{- .Values.syncEvents.namespace -}}
{{- else if .Values.casino.enabled -}}
{{- .Values.casino.namespace -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* The documents of a multi-document YAML file under files/, as a list of objects. */}}
{{- define "pitboss.documents" -}}
{{- $docs := list -}}
{{- range regexSplit "(?m)^---[ \t]*$" . -1 -}}
{{- $doc := fromYaml . -}}
{{- if and $doc (hasKey $doc "kind") -}}
{{- $docs = append $docs $doc -}}
{{- end -}}
{{- end -}}
{{- toJson (dict "items" $docs) -}}
{{- end -}}
