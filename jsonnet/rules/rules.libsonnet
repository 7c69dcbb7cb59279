// Recording rules, grouped by tier.
{
  prometheusRules+:: {
    groups+: [],
  },
}
