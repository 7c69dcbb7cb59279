// Every selector, threshold, window and floor the rules and dashboards use. Each key says what it
// drives and when to change it.
{
  _config+:: {
  },
}
