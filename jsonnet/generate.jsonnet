// What `make generate` writes: an object of repository-relative path -> file content.
// `ruleFiles` (name -> {groups: [...]}) become rules/<name>.yaml, one file per tier;
// `alertmanagerConfigYaml` becomes rules/alertmanager.yaml; `grafanaDashboards`
// (file name -> dashboard) become dashboards/<file name>.
local mixin = import 'mixin.libsonnet';
local ruleFiles = std.get(mixin, 'ruleFiles', {});

{
  ['rules/' + name + '.yaml']: std.manifestYamlDoc(ruleFiles[name], indent_array_in_object=true, quote_keys=false) + '\n'
  for name in std.objectFields(ruleFiles)
} + {
  'rules/alertmanager.yaml': mixin.alertmanagerConfigYaml,
} + {
  ['dashboards/' + name]: std.manifestJsonEx(mixin.grafanaDashboards[name], '  ') + '\n'
  for name in std.objectFields(mixin.grafanaDashboards)
}
