{{/*
Names, labels, the rendered aifinops configuration and the checks every template shares.
*/}}

{{- define "aifinops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped base name; components append -gpu-exporter, -token-exporter, -bridge. */}}
{{- define "aifinops.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "aifinops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "aifinops.labels" -}}
helm.sh/chart: {{ include "aifinops.chart" . }}
app.kubernetes.io/name: {{ include "aifinops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aifinops
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: (dict "root" $ "component" "bridge"). */}}
{{- define "aifinops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aifinops.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of one component's resources. */}}
{{- define "aifinops.componentLabels" -}}
{{ include "aifinops.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Service labels: `aifinops.io/job` becomes the Prometheus job (the ServiceMonitors' jobLabel), so
rules can select `job="aifinops-token-exporter"` whatever the release is called.
*/}}
{{- define "aifinops.serviceLabels" -}}
{{ include "aifinops.componentLabels" . }}
aifinops.io/job: aifinops-{{ .component }}
{{- end }}

{{- define "aifinops.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end }}
{{- end }}

{{- define "aifinops.strimziNamespace" -}}
{{- default .Release.Namespace .Values.strimzi.namespace }}
{{- end }}

{{/* Kafka brokers as a JSON list: the configured ones, else the Strimzi bootstrap service. */}}
{{- define "aifinops.bootstrapServers" -}}
{{- if .Values.kafka.bootstrapServers -}}
{{- toJson .Values.kafka.bootstrapServers }}
{{- else if .Values.strimzi.enabled -}}
{{- list (printf "%s-kafka-bootstrap.%s.svc:%d" .Values.strimzi.clusterName (include "aifinops.strimziNamespace" .) (int .Values.strimzi.bootstrapPort)) | toJson }}
{{- else -}}
[]
{{- end }}
{{- end }}

{{/* Mount points of the Kafka credentials (files, never environment variables). */}}
{{- define "aifinops.kafkaSaslDir" -}}/etc/aifinops/kafka/sasl{{- end }}
{{- define "aifinops.kafkaCaDir" -}}/etc/aifinops/kafka/ca{{- end }}
{{- define "aifinops.kafkaClientDir" -}}/etc/aifinops/kafka/client{{- end }}
{{- define "aifinops.configDir" -}}/etc/aifinops/config{{- end }}
{{- define "aifinops.pricesDir" -}}/etc/aifinops/prices{{- end }}
{{- define "aifinops.webConfigDir" -}}/etc/aifinops/web{{- end }}
{{- define "aifinops.webTlsDir" -}}/etc/aifinops/web-tls{{- end }}

{{/* Non-empty when the daemons take a --web.config.file (TLS or basic auth). */}}
{{- define "aifinops.hasWebConfig" -}}
{{- if or .Values.web.tls.enabled .Values.web.basicAuthUsers }}true{{- end }}
{{- end }}

{{/* The exporter-toolkit web config every daemon reads (Secret <fullname>-web-config). */}}
{{- define "aifinops.webConfig" -}}
{{- $web := .Values.web -}}
{{- $out := dict -}}
{{- if $web.tls.enabled }}
{{- $tls := dict "cert_file" (printf "%s/tls.crt" (include "aifinops.webTlsDir" .)) "key_file" (printf "%s/tls.key" (include "aifinops.webTlsDir" .)) "min_version" $web.tls.minVersion "client_auth_type" $web.tls.clientAuthType }}
{{- if ne $web.tls.clientAuthType "NoClientCert" }}
{{- $_ := set $tls "client_ca_file" (printf "%s/ca.crt" (include "aifinops.webTlsDir" .)) }}
{{- end }}
{{- $_ := set $out "tls_server_config" $tls }}
{{- end }}
{{- with $web.basicAuthUsers }}
{{- $_ := set $out "basic_auth_users" . }}
{{- end }}
{{- toYaml $out }}
{{- end }}
{{/*
The only writable path besides /tmp (the root file system is read-only): the producer's spool and the
bridge's checkpoint, and the working directory, so relative default paths land here too.
*/}}
{{- define "aifinops.dataDir" -}}/var/lib/aifinops{{- end }}

{{/*
Fails the render with a message naming the value when settings contradict each other, so a bad
release never reaches the cluster.
*/}}
{{- define "aifinops.validate" -}}
{{- $k := .Values.kafka -}}
{{- $servers := include "aifinops.bootstrapServers" . | fromJsonArray -}}
{{- if and .Values.bridge.enabled (not $servers) -}}
{{- fail "bridge.enabled needs Kafka: set kafka.bootstrapServers or strimzi.enabled (or set bridge.enabled=false)" -}}
{{- end -}}
{{- if hasPrefix "SASL" $k.securityProtocol -}}
{{- if not $k.sasl.mechanism }}{{ fail (printf "kafka.sasl.mechanism: required for securityProtocol %s" $k.securityProtocol) }}{{ end -}}
{{- if not $k.sasl.username }}{{ fail (printf "kafka.sasl.username: required for securityProtocol %s" $k.securityProtocol) }}{{ end -}}
{{- if not $k.sasl.passwordSecret.name }}{{ fail (printf "kafka.sasl.passwordSecret.name: required for securityProtocol %s" $k.securityProtocol) }}{{ end -}}
{{- end -}}
{{- if .Values.bridge.enabled -}}
{{- $parts := min (int $k.topics.usage.partitions) (int $k.topics.gpu.partitions) -}}
{{- if gt (int .Values.bridge.replicas) (int $parts) -}}
{{- fail (printf "bridge.replicas (%d) must not exceed the partitions of the consumed topics (%d): extra consumers would sit idle" (int .Values.bridge.replicas) (int $parts)) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.tokenExporter.auth.enabled (not .Values.tokenExporter.auth.tokens) (not .Values.tokenExporter.auth.existingSecret) -}}
{{- fail "tokenExporter.auth.enabled needs tokenExporter.auth.tokens or tokenExporter.auth.existingSecret: with no token every client would be locked out" -}}
{{- end -}}
{{- if and (eq .Values.gpuExporter.source "dcgm") (not .Values.gpuExporter.dcgmUrl) -}}
{{- fail "gpuExporter.dcgmUrl: required for gpuExporter.source=dcgm" -}}
{{- end -}}
{{- end }}

{{/*
The aifinops configuration file (exporters/config.py `Config`) as a dict, without ingest tokens.
One file serves all three daemons; `config` values are merged over it last.
*/}}
{{- define "aifinops.configDict" -}}
{{- $k := .Values.kafka -}}
{{- $kafka := dict "bootstrap_servers" (include "aifinops.bootstrapServers" . | fromJsonArray) "client_id" $k.clientId "security_protocol" $k.securityProtocol -}}
{{- if hasPrefix "SASL" $k.securityProtocol -}}
{{- $_ := set $kafka "sasl_mechanism" $k.sasl.mechanism -}}
{{- $_ := set $kafka "sasl_username" $k.sasl.username -}}
{{- $_ := set $kafka "sasl_password_file" (printf "%s/password" (include "aifinops.kafkaSaslDir" .)) -}}
{{- end -}}
{{- if hasSuffix "SSL" $k.securityProtocol -}}
{{- if $k.tls.caSecret.name -}}
{{- $_ := set $kafka "ssl_cafile" (printf "%s/ca.crt" (include "aifinops.kafkaCaDir" .)) -}}
{{- end -}}
{{- if $k.tls.clientSecret.name -}}
{{- $_ := set $kafka "ssl_certfile" (printf "%s/tls.crt" (include "aifinops.kafkaClientDir" .)) -}}
{{- $_ := set $kafka "ssl_keyfile" (printf "%s/tls.key" (include "aifinops.kafkaClientDir" .)) -}}
{{- end -}}
{{- end -}}
{{- $topics := dict -}}
{{- range $key, $cfgKey := dict "usage" "usage" "gpu" "gpu" "anomalies" "anomalies" "usageDlq" "usage_dlq" "gpuDlq" "gpu_dlq" -}}
{{- $t := index $k.topics $key -}}
{{- $_ := set $topics $cfgKey (dict "name" $t.name "partitions" (int $t.partitions) "replication_factor" (int $t.replicationFactor) "retention_ms" (int64 $t.retentionMs)) -}}
{{- end -}}
{{- $_ := set $kafka "topics" $topics -}}
{{- $cfg := dict
  "cluster" .Values.cluster
  "log" (dict "level" .Values.log.level "format" .Values.log.format)
  "kafka" $kafka
  "tokens" (dict "max_batch_events" (int .Values.tokenExporter.maxBatchEvents) "max_body_bytes" (int .Values.tokenExporter.maxBodyBytes))
  "gpu" (dict "interval_seconds" .Values.gpuExporter.intervalSeconds "insecure_skip_verify" .Values.gpuExporter.insecureSkipVerify)
  "bridge" (dict "group_id" .Values.bridge.groupId "state_dir" (printf "%s/bridge" (include "aifinops.dataDir" .)))
  "producer" (dict "spool_dir" (printf "%s/spool" (include "aifinops.dataDir" .)) "spool_max_bytes" (int64 .Values.producer.spoolMaxBytes))
-}}
{{- $t := .Values.tripwires }}
{{- $_ := set $cfg "tripwires" (dict "enabled" $t.enabled "request_usd" (toString $t.requestUsd) "team_usd_per_minute" (toString $t.teamUsdPerMinute) "team_tokens_per_minute" (int64 $t.teamTokensPerMinute) "alertmanager_urls" $t.alertmanagerUrls "overrides" $t.overrides) }}
{{- with .Values.prices.gpu }}
{{- $_ := set $cfg.gpu "price_table" (printf "%s/gpu-prices.yaml" (include "aifinops.pricesDir" $)) }}
{{- end }}
{{- with .Values.prices.llm }}
{{- $_ := set $cfg "llm" (dict "pricing" (dict "overrides_file" (printf "%s/llm-prices.yaml" (include "aifinops.pricesDir" $)))) }}
{{- end }}
{{- toYaml (mustMergeOverwrite $cfg (deepCopy .Values.config)) }}
{{- end }}

{{/* The token exporter's file: the shared configuration plus `tokens.auth`. */}}
{{- define "aifinops.tokenExporterConfigDict" -}}
{{- $cfg := include "aifinops.configDict" . | fromYaml -}}
{{- $tokens := list -}}
{{- range .Values.tokenExporter.auth.tokens -}}
{{- $tokens = append $tokens (dict "sha256" .sha256 "team" .team "gateway" (default false .gateway)) -}}
{{- end -}}
{{- $auth := dict "enabled" .Values.tokenExporter.auth.enabled "tokens" $tokens -}}
{{- $_ := set $cfg "tokens" (mustMergeOverwrite (default (dict) (get $cfg "tokens")) (dict "auth" $auth)) -}}
{{- toYaml $cfg }}
{{- end }}

{{/* Does the token exporter read its config from a Secret (ingest tokens) instead of the ConfigMap? */}}
{{- define "aifinops.tokenExporterUsesSecret" -}}
{{- if or .Values.tokenExporter.auth.existingSecret .Values.tokenExporter.auth.tokens -}}true{{- end -}}
{{- end }}

{{- define "aifinops.tokenExporterSecretName" -}}
{{- default (printf "%s-token-exporter" (include "aifinops.fullname" .)) .Values.tokenExporter.auth.existingSecret }}
{{- end }}

{{- define "aifinops.hasPrices" -}}
{{- if or .Values.prices.gpu .Values.prices.llm -}}true{{- end -}}
{{- end }}

{{/* Flags every daemon gets: (dict "root" $ "port" 9872). */}}
{{- define "aifinops.commonArgs" -}}
- --config.file={{ include "aifinops.configDir" .root }}/config.yaml
- --web.listen-address=:{{ .port }}
{{- if include "aifinops.hasWebConfig" .root }}
- --web.config.file={{ include "aifinops.webConfigDir" .root }}/web-config.yaml
{{- end }}
{{- end }}

{{/* Volumes every daemon mounts: config (ConfigMap or Secret), prices, Kafka credentials, /tmp. */}}
{{- define "aifinops.volumes" -}}
{{- $root := .root -}}
- name: config
{{- if .configSecret }}
  secret:
    secretName: {{ .configSecret }}
    items:
      - key: config.yaml
        path: config.yaml
{{- else }}
  configMap:
    name: {{ include "aifinops.fullname" $root }}-config
{{- end }}
{{- if include "aifinops.hasWebConfig" $root }}
- name: web-config
  secret:
    secretName: {{ include "aifinops.fullname" $root }}-web-config
{{- end }}
{{- if $root.Values.web.tls.enabled }}
- name: web-tls
  secret:
    secretName: {{ $root.Values.web.tls.secretName }}
{{- end }}
{{- if include "aifinops.hasPrices" $root }}
- name: prices
  configMap:
    name: {{ include "aifinops.fullname" $root }}-prices
{{- end }}
{{- $k := $root.Values.kafka }}
{{- if and (hasPrefix "SASL" $k.securityProtocol) $k.sasl.passwordSecret.name }}
- name: kafka-sasl
  secret:
    secretName: {{ $k.sasl.passwordSecret.name }}
    items:
      - key: {{ $k.sasl.passwordSecret.key }}
        path: password
{{- end }}
{{- if hasSuffix "SSL" $k.securityProtocol }}
{{- if $k.tls.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ $k.tls.caSecret.name }}
    items:
      - key: {{ $k.tls.caSecret.key }}
        path: ca.crt
{{- end }}
{{- if $k.tls.clientSecret.name }}
- name: kafka-client
  secret:
    secretName: {{ $k.tls.clientSecret.name }}
    items:
      - key: {{ $k.tls.clientSecret.certKey }}
        path: tls.crt
      - key: {{ $k.tls.clientSecret.keyKey }}
        path: tls.key
{{- end }}
{{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
- name: data
  emptyDir:
    sizeLimit: {{ add (int64 $root.Values.producer.spoolMaxBytes) 67108864 }}
{{- end }}

{{- define "aifinops.volumeMounts" -}}
{{- $root := .root -}}
- name: config
  mountPath: {{ include "aifinops.configDir" $root }}
  readOnly: true
{{- if include "aifinops.hasWebConfig" $root }}
- name: web-config
  mountPath: {{ include "aifinops.webConfigDir" $root }}
  readOnly: true
{{- end }}
{{- if $root.Values.web.tls.enabled }}
- name: web-tls
  mountPath: {{ include "aifinops.webTlsDir" $root }}
  readOnly: true
{{- end }}
{{- if include "aifinops.hasPrices" $root }}
- name: prices
  mountPath: {{ include "aifinops.pricesDir" $root }}
  readOnly: true
{{- end }}
{{- $k := $root.Values.kafka }}
{{- if and (hasPrefix "SASL" $k.securityProtocol) $k.sasl.passwordSecret.name }}
- name: kafka-sasl
  mountPath: {{ include "aifinops.kafkaSaslDir" $root }}
  readOnly: true
{{- end }}
{{- if hasSuffix "SSL" $k.securityProtocol }}
{{- if $k.tls.caSecret.name }}
- name: kafka-ca
  mountPath: {{ include "aifinops.kafkaCaDir" $root }}
  readOnly: true
{{- end }}
{{- if $k.tls.clientSecret.name }}
- name: kafka-client
  mountPath: {{ include "aifinops.kafkaClientDir" $root }}
  readOnly: true
{{- end }}
{{- end }}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: {{ include "aifinops.dataDir" $root }}
{{- end }}

{{/* Probes on the built-in health endpoints (no credentials needed): (dict "port" "http" "root" $). */}}
{{- define "aifinops.probes" -}}
{{- $scheme := ternary "HTTPS" "HTTP" (and .root .root.Values.web.tls.enabled) }}
livenessProbe:
  httpGet:
    path: /-/healthy
    port: {{ .port }}
    scheme: {{ $scheme }}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /-/ready
    port: {{ .port }}
    scheme: {{ $scheme }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end }}

{{/* Pod annotations that roll the pods when their configuration changes. */}}
{{- define "aifinops.checksums" -}}
checksum/config: {{ include "aifinops.configDict" .root | sha256sum }}
{{- if include "aifinops.hasPrices" .root }}
checksum/prices: {{ toJson .root.Values.prices | sha256sum }}
{{- end }}
{{- end }}

{{/*
NetworkPolicy `from` for a port serving several kinds of caller: any caller when one of the peer
lists is empty (empty means "any"), else their union.
*/}}
{{- define "aifinops.peers" -}}
{{- $all := list -}}
{{- $open := false -}}
{{- range .lists -}}
{{- if not . }}{{ $open = true }}{{ else }}{{ $all = concat $all . }}{{ end -}}
{{- end -}}
{{- if not $open }}
from:
{{- toYaml $all | nindent 2 }}
{{- end }}
{{- end }}
