// Anomaly tier recordings: a seasonal prediction of each team's spend, the robust spread (MAD) of
// its errors, and the upper band above which spend is anomalous.
local names = import '../lib/names.libsonnet';
local p = import '../lib/promql.libsonnet';
local r = import '../lib/rules.libsonnet';

{
  aifinopsRecordingRules+:: {
    local c = $._config,
    local n = names(c),
    local base = n.spendBase,
    local half = p.seconds(c.anomalySeasonWindow) / 2,
    // The average over anomalySeasonWindow centred on the same time `days` days ago.
    local season(days) =
      'label_replace(avg_over_time(%s[%s] offset %s), "days_ago", "%d", "", "")'
      % [base, c.anomalySeasonWindow, p.duration(days * p.day - half), days],
    local floor = '%s * %s + %s' % [
      p.num(c.anomalyMadFloorRatio), n.prediction, p.num(c.anomalyMadFloorUsdPerHour / p.hour),
    ],

    anomaly+: [
      // The highest of what the team spent at this time of day on each of the last days: normal
      // is anything up to what a recent day spent then (upward only; a Monday is not judged
      // against Sunday alone; one unusual day does not make the next one look anomalous).
      r.record(n.prediction, 'max without (days_ago) (\n  %s\n)\n' % std.join('\n  or\n  ', [season(d) for d in std.range(1, c.anomalySeasonDays)])),
      r.record(n.absResidual, 'abs(%s - %s)' % [base, n.prediction]),
      r.record(n.mad, 'quantile_over_time(0.5, %s[%s])' % [n.absResidual, c.anomalyMadWindow]),
      // prediction + z x 1.4826 x MAD, the MAD floored so flat series do not give a zero band.
      r.record(n.upperBand, |||
        %(prediction)s
        + %(z)s * %(sigma)s * (%(mad)s > %(floor)s or %(floor)s)
      ||| % { prediction: n.prediction, z: p.num(c.anomalyZThreshold), sigma: p.num(p.madToSigma), mad: n.mad, floor: floor }),
    ],
  },
}
