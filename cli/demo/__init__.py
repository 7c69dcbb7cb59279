"""`aifinops demo`: the whole pipeline on this machine (`command`), the local services it and the
tests start (`stack`, `demostack`), its traffic, history, alert watch and live view, and the rule
pack, Alertmanager routing and dashboards it ships as package data (`files/`, from `make generate`)."""
