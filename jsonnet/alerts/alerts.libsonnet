// Assembles the rule pack: one group per tier (DESIGN.md "Rules and alerts"), each holding its
// recording rules (rules/) followed by its alerts, so an alert reads what its group recorded at
// the same evaluation. Exposed three ways:
// - prometheusAlerts: the standard mixin field (mixtool, kube-prometheus); it carries the whole
//   pack, recording rules included, because the fast tier must keep both in one group;
// - prometheusRules: the standard field for recording-only groups; empty here for that reason;
// - ruleFiles: one file per tier, rendered to rules/aifinops-<tier>.yaml.
local r = import '../lib/rules.libsonnet';

(import 'fast.libsonnet') +
(import 'burn.libsonnet') +
(import 'anomaly.libsonnet') +
(import 'waste.libsonnet') +
(import 'pipeline.libsonnet') +
(import 'kafka.libsonnet') +
(import 'savings.libsonnet') +
(import 'alertmanager.libsonnet') +
{
  local c = $._config,

  // Tier name -> evaluation interval, in evaluation-dependency order.
  aifinopsTiers:: [
    { name: 'fast', interval: c.fastInterval },
    { name: 'burn', interval: c.burnInterval },
    { name: 'anomaly', interval: c.anomalyInterval },
    { name: 'waste', interval: c.wasteInterval },
    { name: 'pipeline', interval: c.pipelineInterval },
    { name: 'savings', interval: c.savingsInterval },
  ],

  aifinopsGroups:: [
    r.group(
      'aifinops-' + tier.name,
      tier.interval,
      std.get($.aifinopsRecordingRules, tier.name, []) + std.get($.aifinopsAlertRules, tier.name, []),
    )
    for tier in $.aifinopsTiers
  ],

  prometheusAlerts+:: { groups+: $.aifinopsGroups },
  prometheusRules+:: { groups+: [] },

  ruleFiles+:: {
    [group.name]: { groups: [group] }
    for group in $.aifinopsGroups
  },
}
