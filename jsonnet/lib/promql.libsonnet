// Helpers the rules and alerts share: durations, numbers as PromQL literals, the counter idioms
// and the Go-template fragments of the annotations. Unit conversions live here, by name, so no
// bare number hides in an expression.
local durationUnits = { s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };

{
  // Seconds in one hour and one day: $/s <-> $/h, and UTC day arithmetic.
  hour:: 3600,
  day:: 86400,
  // Scales a median absolute deviation to a standard deviation for normally distributed data.
  madToSigma:: 1.4826,

  // Seconds in a Prometheus duration ('30s', '1h', '23h30m', '1w').
  seconds(duration)::
    local step(acc, c) =
      if std.member('0123456789', c) then acc { n: acc.n * 10 + std.parseInt(c) }
      else if std.objectHas(durationUnits, c) then acc { total: acc.total + acc.n * durationUnits[c], n: 0 }
      else error 'unsupported duration %s (use s, m, h, d, w, y)' % duration;
    local r = std.foldl(step, std.stringChars(duration), { total: 0, n: 0 });
    if r.n != 0 then error 'duration %s lacks a unit' % duration else r.total,

  // A number of seconds as a Prometheus duration ('84600' -> '23h30m').
  duration(seconds)::
    local parts = std.foldl(
      function(acc, u)
        local n = std.floor(acc.left / u.s);
        acc { left: acc.left - n * u.s, out: acc.out + (if n > 0 then '%d%s' % [n, u.u] else '') },
      [{ u: 'w', s: 604800 }, { u: 'd', s: 86400 }, { u: 'h', s: 3600 }, { u: 'm', s: 60 }, { u: 's', s: 1 }],
      { left: seconds, out: '' }
    );
    if seconds <= 0 || parts.left != 0 then error 'bad duration %s' % seconds else parts.out,

  // A number as a PromQL literal: shortest exact form ('0.05', '14.4', '3600').
  num(x):: std.format('%.15g', x),

  // Duration suffix of recording-rule names: '30s' -> 'rate30s', '1h' -> 'avg1h'.
  suffix(prefix, duration):: prefix + duration,

  // The increase of a counter over `window`, counting a series that appeared within the window
  // too: exporters create a labelled counter at its first event, so its first value has no
  // earlier zero for increase() to see.
  counterIncrease(metric, selector, window)::
    '(increase(%(m)s{%(s)s}[%(w)s]) > 0 or (%(m)s{%(s)s} unless %(m)s{%(s)s} offset %(w)s))'
    % { m: metric, s: selector, w: window },

  // Selector text joined to more matchers, for selectors that may be empty.
  withMatchers(selector, matchers)::
    std.join(', ', std.filter(function(s) s != '', [selector] + matchers)),

  // Go-template fragments for annotations.
  template:: {
    // $value as dollars with cents.
    dollars: '${{ printf "%.2f" $value }}',
    // $value as a plain number with two decimals.
    value2: '{{ printf "%.2f" $value }}',
    // $value rounded to an integer.
    count: '{{ printf "%.0f" $value }}',
    // The first sample of a PromQL query as dollars with cents followed by `unit` (e.g. '/h'),
    // or "none" when it returns nothing. `format` and `args` are Go-template printf arguments:
    // a raw-string format (PromQL, with %q where a label value goes) and the label references,
    // e.g. queryDollars('`sum(x{team=%q})`', '$labels.team', '/h').
    queryDollars(format, args='', unit=''):: '{{ with printf %s %s | query }}{{ . | first | value | printf "$%%.2f" }}%s{{ else }}none{{ end }}' % [format, args, unit],
  },
}
