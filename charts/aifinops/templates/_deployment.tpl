{{/*
The Deployment of a stateless daemon (token exporter, bridge). Takes a dict: root ($), component,
values (its values block), command (console script), configSecret (a Secret holding its config file
instead of the shared ConfigMap, or ""), checksum (of that Secret's content), extraVolumes,
extraVolumeMounts.
*/}}
{{- define "aifinops.deployment" -}}
{{- $root := .root }}
{{- $c := .values }}
{{- $component := .component }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "aifinops.fullname" $root }}-{{ $component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "aifinops.componentLabels" (dict "root" $root "component" $component) | nindent 4 }}
spec:
  replicas: {{ $c.replicas }}
  selector:
    matchLabels:
      {{- include "aifinops.selectorLabels" (dict "root" $root "component" $component) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "aifinops.componentLabels" (dict "root" $root "component" $component) | nindent 8 }}
        {{- with $c.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- include "aifinops.checksums" (dict "root" $root) | nindent 8 }}
        {{- with .checksum }}
        checksum/secret-config: {{ . }}
        {{- end }}
        {{- with $c.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "aifinops.fullname" $root }}-{{ $component }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ $component }}
          image: {{ include "aifinops.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          workingDir: {{ include "aifinops.dataDir" $root }}
          command: [{{ .command | quote }}]
          args:
            {{- include "aifinops.commonArgs" (dict "root" $root "port" $c.port) | nindent 12 }}
            {{- with $c.extraArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $c.extraEnv }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ $c.port }}
              protocol: TCP
          {{- include "aifinops.probes" (dict "port" "http" "root" $root) | nindent 10 }}
          resources:
            {{- toYaml $c.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            {{- include "aifinops.volumeMounts" (dict "root" $root) | nindent 12 }}
            {{- with .extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        {{- include "aifinops.volumes" (dict "root" $root "configSecret" .configSecret) | nindent 8 }}
        {{- with .extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      topologySpreadConstraints:
        {{- if $c.topologySpreadConstraints }}
        {{- toYaml $c.topologySpreadConstraints | nindent 8 }}
        {{- else }}
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "aifinops.selectorLabels" (dict "root" $root "component" $component) | nindent 14 }}
        {{- end }}
{{- end }}
