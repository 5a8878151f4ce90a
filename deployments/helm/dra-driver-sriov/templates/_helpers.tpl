{{/*
The DRA driver name: the DeviceClass, the ResourceSlices' spec.driver, the kubelet
registration and the resourceNames of the node plugin's claim-status RBAC rule all use it,
so it is set here once (driver.name, for clusters coming from the upstream driver) and
passed to both components as --driver-name.
*/}}
{{- define "dra-driver-sriov.driverName" -}}
{{- default "sriovnetwork.openshift.io" .Values.driver.name }}
{{- end }}

{{/* The chart name, overridable. */}}
{{- define "dra-driver-sriov.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 50 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name. At most 50 characters, so "-node-plugin" and "-controller"
still fit the 63-character limit of names and labels.
*/}}
{{- define "dra-driver-sriov.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "dra-driver-sriov.nodePluginName" -}}
{{ include "dra-driver-sriov.fullname" . }}-node-plugin
{{- end }}

{{- define "dra-driver-sriov.controllerName" -}}
{{ include "dra-driver-sriov.fullname" . }}-controller
{{- end }}

{{/* Namespace of the SriovResourceFilters (and the controller's Lease). */}}
{{- define "dra-driver-sriov.driverNamespace" -}}
{{- default .Release.Namespace .Values.driver.namespace }}
{{- end }}

{{- define "dra-driver-sriov.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Leader election only with several controller replicas; one replica needs no Lease. */}}
{{- define "dra-driver-sriov.leaderElection" -}}
{{- if gt (int .Values.controller.replicas) 1 }}true{{ else }}false{{ end }}
{{- end }}

{{- define "dra-driver-sriov.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dra-driver-sriov.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dra-driver-sriov.labels" -}}
{{ include "dra-driver-sriov.selectorLabels" . }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}
