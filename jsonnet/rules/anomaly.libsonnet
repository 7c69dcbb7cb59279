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
    // The average over anomalySeasonWindow centred on the same time one season ago.
    local season(s) =
      'label_replace(avg_over_time(%s[%s] offset %s), "season", "%s", "", "")'
      % [base, c.anomalySeasonWindow, p.duration(p.seconds(s.period) - half), s.name],
    local floor = '%s * %s + %s' % [
      p.num(c.anomalyMadFloorRatio), n.prediction, p.num(c.anomalyMadFloorUsdPerHour / p.hour),
    ],

    anomaly+: [
      // The highest of what the team spent at this time one day and one week ago: normal is
      // anything up to what a recent matching period spent (upward-only, and a weekday is not
      // judged against a quiet Sunday once a week of history exists).
      r.record(n.prediction, 'max without (season) (\n  %s\n)' % std.join('\n  or\n  ', [season(s) for s in c.anomalySeasons])),
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
