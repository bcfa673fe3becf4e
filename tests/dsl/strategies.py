"""Hypothesis strategies producing valid DSL documents of every kind (and condition trees)."""
from __future__ import annotations

from hypothesis import strategies as st

from chalicelib.dsl import balance as B
from chalicelib.dsl.condition_grammar import And, Bool, Not, Or, Predicate, Raw, to_text

names = st.from_regex(r"[a-z][a-z0-9_\-]{0,6}", fullmatch=True)
hosts = st.from_regex(r"[a-z][a-z0-9]{0,5}(\.[a-z]{1,3})?", fullmatch=True)
dotted_names = st.from_regex(r"[a-z][a-z0-9_\-]{0,4}(:[0-9]\.[0-9])?", fullmatch=True)
percents = st.integers(0, 100).map(lambda n: f"{n}%")
memories = st.one_of(
    st.integers(1, 4096).map(lambda n: f"{n}MB"),
    st.integers(1, 8).map(lambda n: f"{n}Gi"),
    st.integers(1, 4).map(lambda n: f"{n}GB"),
    st.floats(0.001, 1e5, allow_nan=False).map(lambda x: f"{x!r}MB"),
)
cpus = st.one_of(st.floats(0.01, 64), st.integers(1, 4000).map(lambda n: f"{n}m"), st.integers(1, 8))
times = st.one_of(st.integers(0, 1000), st.integers(0, 100).map(lambda n: f"{n}s"), st.integers(0, 60).map(lambda n: f"{n}m"))
ports = st.tuples(st.integers(1, 65535), st.sampled_from(["/http", "/tcp", ""])).map(lambda t: f"{t[0]}{t[1]}")
env_values = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9 _.:/-]{0,10}", fullmatch=True), st.integers(0, 99))
env_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True)
metadata = st.dictionaries(names, st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=5)), max_size=2)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-100, 100), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(names, inner, max_size=3)),
    max_leaves=6,
)

# -- conditions ---------------------------------------------------------------------------------
_values = st.from_regex(r"[A-Za-z0-9._:/~+*@,;?^][A-Za-z0-9._\-:/~+*@,;?^]{0,8}", fullmatch=True)
_header_names = st.from_regex(r"[A-Za-z0-9._~+*^][A-Za-z0-9._\-~+*^]{0,8}", fullmatch=True)
_acl_words = st.sampled_from(["hdr(host)", "-m", "str", "-i", "example.com", "path_beg", "/api", "src", "10.0.0.0/8",
                              "req.hdr_cnt(X-A)", "gt", "0", "url_param(a),lower", "!", "||"])
_leaves = st.one_of(
    st.builds(Bool, st.booleans()),
    st.lists(_acl_words, min_size=1, max_size=4).map(lambda ws: Raw(" ".join(ws))),
    st.builds(Predicate, st.sampled_from(["user-agent", "host"]), st.booleans(), st.none(), _values),
    st.builds(Predicate, st.sampled_from(["cookie", "header"]), st.booleans(), _header_names, st.none()),
    st.builds(Predicate, st.sampled_from(["cookie", "header"]), st.booleans(), _header_names, _values),
)
condition_trees = st.recursive(
    _leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    ),
    max_leaves=8,
)
condition_texts = condition_trees.map(to_text)


def _maybe(strategy):
    return st.one_of(st.none(), strategy)


def _fixed(**fields):
    """A dict strategy: required fields, plus optional ones (given as `_maybe`) when not None."""
    return st.fixed_dictionaries(fields).map(lambda d: {k: v for k, v in d.items() if v is not None})


def _ref(names_strategy=names):
    return st.one_of(names_strategy, names_strategy.map(lambda n: {"ref": n}), names_strategy.map(lambda n: {"reference": n}))


# -- balance, from HAProxy's grammar as dsl/balance.py holds it -----------------------------------------
_balance_names = st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True)
_balance_numbers = st.one_of(st.integers(1, 9), st.just(B.MAX_NUMBER)).map(str)


@st.composite
def balances(draw, http: bool = True):
    """Every algorithm of the grammar with its arguments and any of its options, in any order;
    on TCP (`http=False`) only what does not hash the HTTP request."""
    algorithm = draw(st.sampled_from([a for a in B.ALGORITHMS.values() if http or not a.needs_http]))
    head, words = algorithm.name, []
    if algorithm.argument == "name" or algorithm.argument == "name?" and draw(st.booleans()):
        head += f"({draw(_balance_names)})"
    elif algorithm.argument == "number?" and draw(st.booleans()):
        head += f"({draw(_balance_numbers)})"
    elif algorithm.argument == "param":
        words.append(draw(_balance_names))
    elif algorithm.argument == "expr":
        fetch = draw(st.sampled_from([f for f, (_, reads) in B.HASH_FETCHES.items() if http or not reads]))
        expr = fetch + (f"({draw(_balance_names)})" if B.HASH_FETCHES[fetch][0] else "")
        words.append(expr + "".join("," + c for c in draw(st.lists(st.sampled_from(B.HASH_CONVERTERS), max_size=2))))
    options = draw(st.permutations(algorithm.options))
    for option in options[:draw(st.integers(0, len(options)))]:
        words += [option.word, draw(_balance_numbers)] if option.number else [option.word]
    return " ".join([head, *words])


# Words of the grammar put together any way (most of them wrong): what the DSL accepts of these
# must pass `haproxy -c` (tests/gateways/test_properties.py).
BALANCE_WORDS = [*B.ALGORITHMS, "hdr(host)", "hdr()", "hdr(", "random(0)", "random(2)", "random(x)",
                  "rdp-cookie()", "rdp-cookie(mstshash)", "len", "depth", "whole", "path-only", "check_post",
                  "use_domain_only", "0", "1", "65536", "id", "src", "path", "req.hdr(host)", "req.hdr",
                  "src,lower", "path,nope", "Roundrobin", "uri(1)"]
balance_candidates = st.one_of(balances(), balances(http=False),
                               st.lists(st.sampled_from(BALANCE_WORDS), min_size=1, max_size=5).map(" ".join))


# -- scales, conditions, rewrites, routes -------------------------------------------------------------
scale_bodies = _fixed(cpu=cpus, memory=memories, instances=_maybe(st.integers(0, 20)))
scales = st.builds(lambda n, b, m: {"name": n, **b, "metadata": m}, names, scale_bodies, metadata)
conditions = st.builds(lambda n, c: {"name": n, "condition": c}, names, condition_texts)
_new_paths = st.from_regex(r"/[a-z0-9/._-]{0,8}(%\[path\])?", fullmatch=True)
rewrite_texts = st.builds(lambda p, c: f"{p} if {c}", _new_paths, condition_texts)
rewrites = st.builds(lambda n, p: {"name": n, "path": p}, names, rewrite_texts)
route_bodies = _fixed(
    condition=_maybe(st.one_of(condition_texts, condition_texts.map(lambda c: {"condition": c}), _ref())),
    condition_strength=_maybe(percents),
    rewrites=_maybe(st.lists(st.one_of(rewrite_texts, rewrite_texts.map(lambda p: {"path": p}), _ref()), max_size=2)),
    balance=_maybe(balances()),
    selector=_maybe(st.sampled_from(["label(app)(sava)", "image(sava:1.0.0)"])),
)
# What a /tcp port's routes may have: no condition, rewrite or HTTP hash.
tcp_route_bodies = _fixed(
    balance=_maybe(balances(http=False)),
    selector=_maybe(st.sampled_from(["label(app)(sava)", "image(sava:1.0.0)"])),
)
routes = st.builds(lambda n, w, b: {"name": n, **b, **({"weight": w} if w else {})}, names, _maybe(percents), route_bodies)


@st.composite
def weighted(draw, keys, *, exact: bool, body=route_bodies):
    """Route maps over `keys` whose weights obey the gateway rules (exact: 0% or 100% when filled)."""
    chosen = {}
    budget = 100
    unassigned = draw(st.booleans()) if keys else False
    for i, key in enumerate(keys):
        route = draw(body)
        if isinstance(route, dict) and ("/" in key or key.startswith("[")):
            route.pop("selector", None)  # a route's selector only picks among one gateway's targets
        last = i == len(keys) - 1
        if last and unassigned:
            pass
        elif last and exact:
            route["weight"] = f"{budget}%" if budget < 100 or draw(st.booleans()) else "0%"
            if budget == 100 and route["weight"] == "0%" and any("weight" in r and r["weight"] != "0%" for r in chosen.values()):
                route["weight"] = f"{budget}%"
        elif not unassigned or draw(st.booleans()):
            weight = draw(st.integers(0, budget))
            budget -= weight
            route["weight"] = f"{weight}%"
        chosen[key] = route
    if exact and not unassigned:
        total = sum(int(r["weight"][:-1]) for r in chosen.values())
        if total not in (0, 100):
            first = next(iter(chosen))
            chosen[first]["weight"] = f"{int(chosen[first]['weight'][:-1]) + 100 - total}%"
    return chosen


_http_route_bodies = route_bodies


@st.composite
def gateways(draw, route_body=None, tcp_route_body=None):
    """Valid gateways of every field; /tcp ones without what needs HTTP. `route_body`,
    `tcp_route_body`: other route strategies (the hostile property test's)."""
    segments = draw(st.integers(1, 4))
    name = "/".join(draw(st.lists(names, min_size=segments, max_size=segments)))
    mode = draw(st.sampled_from(["http", "http", "tcp"]))
    port = draw(_maybe(st.integers(1024, 65535).map(lambda n: f"{n}/{mode}")))
    keys = draw(st.lists(st.one_of(names, st.builds(lambda a, b: f"{a}/{b}", names, names),
                                   st.builds(lambda h, p: f"[{h}:{p}]", hosts, st.integers(1, 65535))),
                         max_size=3, unique=True))
    http = mode == "http" or port is None
    body = (route_bodies if route_body is None else route_body) if http else \
        (tcp_route_bodies if tcp_route_body is None else tcp_route_body)
    doc = {"name": name, "routes": draw(weighted(keys, exact=True, body=body)), "metadata": draw(metadata)}
    if port:
        doc["port"] = port
    doc.update(draw(_fixed(
        sticky=_maybe(st.sampled_from(["route", "instance", "none"] if http else ["none"])),
        virtual_hosts=_maybe(st.one_of(hosts.map(lambda n: f"{n}.example.com"), st.lists(hosts, max_size=2),
                                       st.sampled_from(["*.example.com", "shop.example.com:8080"]))),
        service=_maybe(st.fixed_dictionaries({"host": hosts, "port": st.integers(1, 65535)})),
        deployed=_maybe(st.booleans()),
    )))
    return doc


# -- breeds -------------------------------------------------------------------------------------------
deployables = st.one_of(
    names.map(lambda n: f"magneticio/{n}:1.0"),
    st.fixed_dictionaries({"type": st.sampled_from(["docker", "container/docker", "js", "command"]),
                           "definition": st.text(min_size=1, max_size=10)}),
)


@st.composite
def breeds(draw, name=None, depth=1):
    name = name or "b-" + draw(dotted_names)
    port_names = draw(st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), max_size=3, unique=True))
    doc = {"name": name, "deployable": draw(deployables),
           "ports": {p: draw(ports) for p in port_names}}
    doc.update(draw(_fixed(
        environment_variables=_maybe(st.dictionaries(env_names, env_values, max_size=3)),
        constants=_maybe(st.dictionaries(env_names, env_values.filter(lambda v: v is not None), max_size=2)),
        arguments=_maybe(st.lists(st.dictionaries(names, st.one_of(names, st.booleans()), min_size=1, max_size=1), max_size=2)),
        metadata=_maybe(metadata),
    )))
    aliases = draw(st.lists(names, max_size=2, unique=True))
    dependencies = {}
    for alias in aliases:
        if depth > 0 and draw(st.booleans()):
            dependencies[alias] = draw(breeds(name=f"dep-{alias}-{depth}", depth=depth - 1))
        else:
            dependencies[alias] = draw(_ref(st.just(f"dep-{alias}:1.*")))
    if dependencies:
        doc["dependencies"] = dependencies
        env = doc.setdefault("environment_variables", {})
        env["DEP_HOST"] = f"${aliases[0]}.host"
    if port_names and draw(st.booleans()):
        doc["health_checks"] = {"port": port_names[0], "initial_delay": draw(times), "timeout": draw(times),
                                "interval": draw(times), "failures": draw(st.integers(0, 5)),
                                "path": "/health", "protocol": draw(st.sampled_from(["http", "HTTPS", "TCP"]))}
    return doc


# -- escalations, slas --------------------------------------------------------------------------------
def _scaling(targets):
    return st.one_of(
        st.builds(lambda a, b, s, t: {"type": "scale_instances", "minimum": min(a, b), "maximum": max(a, b), "scale_by": s,
                                      **({"target": t} if t else {})},
                  st.integers(0, 10), st.integers(0, 10), st.integers(1, 3), _maybe(targets)),
        st.builds(lambda a, b, s: {"type": "scale_cpu", "minimum": min(a, b), "maximum": max(a, b), "scale_by": s},
                  st.floats(0, 8), st.floats(0, 8), st.floats(0.1, 2)),
        st.builds(lambda a, b, s: {"type": "scale_memory", "minimum": f"{min(a, b)}MB", "maximum": f"{max(a, b)}MB",
                                   "scale_by": s}, st.integers(0, 4096), st.integers(0, 4096), st.integers(1, 512)),
    )


def escalation_bodies(targets=names):
    return st.recursive(
        _scaling(targets),
        lambda inner: st.builds(lambda t, xs: {"type": t, "escalations": xs}, st.sampled_from(["to_all", "to_one"]),
                                st.lists(st.one_of(inner, _ref()), min_size=1, max_size=3)),
        max_leaves=4,
    )


escalations = st.builds(lambda n, b: {"name": n, **b}, names, escalation_bodies())


def sla_bodies(targets=names):
    windowed = st.builds(
        lambda lo, hi, i, c, e: {"type": "response_time_sliding_window", "threshold": {"upper": max(lo, hi), "lower": min(lo, hi)},
                                 "window": {"interval": i, "cooldown": c}, **({"escalations": e} if e is not None else {})},
        st.integers(0, 5000), st.integers(0, 5000), times.filter(lambda t: t not in (0, "0s", "0m")), times,  # interval >= 1 s
        _maybe(st.one_of(escalation_bodies(targets), st.lists(st.one_of(escalation_bodies(targets), _ref()), max_size=3))),
    )
    only = st.builds(lambda e: {"type": "escalation_only", "escalations": e},
                     st.lists(st.one_of(escalation_bodies(targets), _ref()), max_size=2))
    return st.one_of(windowed, only)


slas = st.builds(lambda n, b: {"name": n, **b}, names, sla_bodies())


# -- blueprints ---------------------------------------------------------------------------------------
@st.composite
def blueprints(draw):
    cluster_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    clusters = {}
    for c in cluster_names:
        count = draw(st.integers(1, 2))
        services = []
        breed_names = []
        for i in range(count):
            breed_name = f"{c}-svc{i}:1.0"
            breed_names.append(breed_name)
            service = {"breed": breed_name}
            service.update(draw(_fixed(
                scale=_maybe(st.one_of(_ref(), scale_bodies)),
                arguments=_maybe(st.lists(st.dictionaries(names, names, min_size=1, max_size=1), max_size=1)),
                dialects=_maybe(st.dictionaries(st.sampled_from(["docker", "kubernetes"]), json_values, max_size=1)),
                health_checks=_maybe(st.just([])),
            )))
            services.append(service)
        cluster = {"services": services if count > 1 or draw(st.booleans()) else services[0]}
        if draw(st.booleans()):
            body = {"routes": draw(weighted(breed_names, exact=False)),
                    "sticky": draw(st.sampled_from(["route", "instance", "none"]))}
            cluster["gateways"] = body if draw(st.booleans()) else {"web": body}
        if draw(st.booleans()):
            cluster["sla"] = draw(st.one_of(_ref(), sla_bodies(st.sampled_from(cluster_names))))
        clusters[c] = cluster
    doc = {"name": draw(names), "clusters": clusters}
    numbers = draw(st.lists(st.integers(1, 65535), max_size=2, unique=True))
    gateways_ = {}
    for n in numbers:
        keys = draw(st.lists(st.sampled_from(cluster_names).map(lambda c: f"{c}/web"), min_size=1, max_size=2, unique=True))
        gateways_[f"{n}/http"] = (keys[0] if len(keys) == 1 and draw(st.booleans())
                                  else {"routes": draw(weighted(keys, exact=True))})
    if gateways_:
        doc["gateways"] = gateways_
    if draw(st.booleans()):
        doc["environment_variables"] = {f"{cluster_names[0]}.VAR": draw(env_values)}
    return doc


# -- workflows, templates, events ---------------------------------------------------------------------
schedules = st.one_of(
    st.just("daemon"),
    st.sampled_from(["PT1M", "P1D", "PT1H30M", "P1Y2M3W4DT5H6M7.5S"]).map(lambda p: {"time": p}),
    st.builds(lambda p, s, r: {"time": {"period": p, **({"start": s} if s else {}), **({"repeat": r} if r else {})}},
              st.sampled_from(["PT5S", "PT1M"]), _maybe(st.sampled_from(["now", "2024-01-01T00:00:00+00:00"])),
              _maybe(st.integers(1, 10))),
    st.lists(names, min_size=1, max_size=3).map(lambda tags: {"event": tags}),
)
@st.composite
def workflows(draw):
    """A workflow's variables have values and, with an inline breed, are the breed's (Vamp's
    WorkflowReader)."""
    breed = draw(st.one_of(_ref(), breeds(depth=0)))
    doc = {"name": draw(names), "breed": breed, "schedule": draw(schedules)}
    doc.update(draw(_fixed(status=_maybe(st.sampled_from(["starting", "running", "suspended"])),
                           scale=_maybe(st.one_of(_ref(), scale_bodies)))))
    inline = isinstance(breed, dict) and "deployable" in breed
    known = list(breed.get("environment_variables") or {}) if inline else []
    keys = st.sampled_from(known) if inline else env_names
    if (known or not inline) and draw(st.booleans()):
        doc["environment_variables"] = draw(st.dictionaries(keys, env_values.filter(lambda v: v is not None),
                                                            max_size=2))
    return doc
templates = st.builds(
    lambda n, content: {"name": n, **content},
    names,
    st.dictionaries(names.filter(lambda k: k not in ("name", "kind", "metadata", "import")), json_values, max_size=3),
)
events = st.fixed_dictionaries(
    {"tags": st.lists(st.from_regex(r"[a-z]{1,5}(:[a-z]{1,5})?", fullmatch=True), min_size=1, max_size=3),
     "value": json_values,
     "type": st.from_regex(r"[a-z0-9_\-]{1,8}", fullmatch=True)},
)

# -- release policies -----------------------------------------------------------------------------
_shares = st.one_of(st.integers(0, 100).map(lambda n: f"{n}%"), st.floats(0, 100).map(lambda x: f"{x:.2f}%"))
_webhooks = st.builds(
    lambda n, t, u, s: {"name": n, "type": t, "url": u, "timeout": f"{s}s"},
    names, st.sampled_from(["before_rollout", "before_increase", "before_promotion", "on_rollback"]),
    st.sampled_from(["http://127.0.0.1:9/hook", "https://example.test/a?b=c"]), st.integers(1, 30),
)
release_policies = st.builds(
    lambda n, steps, b: {"name": n, "steps": steps, **b},
    names,
    st.one_of(
        st.lists(st.integers(1, 100), min_size=1, max_size=6, unique=True).map(lambda ws: [f"{w}%" for w in sorted(ws)]),
        st.tuples(st.integers(1, 50), st.integers(50, 100)).map(lambda t: {"step": f"{t[0]}%", "maximum": f"{t[1]}%"}),
    ),
    _fixed(
        interval=_maybe(st.integers(1, 600).map(lambda n: f"{n}s")),
        failures=_maybe(st.integers(1, 10)),
        minimum_requests=_maybe(st.integers(1, 1000)),
        metrics=_maybe(_fixed(
            success_rate=_maybe(st.fixed_dictionaries({"minimum": _shares})),
            latency=_maybe(st.fixed_dictionaries({"percentile": st.sampled_from([50, 95, 99]),
                                                  "maximum": st.integers(1, 5000).map(lambda n: f"{n}ms")})),
        )),
        judge=_maybe(st.just({"type": "mann-whitney", "confidence": "95%"})),
        manual_approval=_maybe(st.booleans()),
        webhooks=_maybe(st.lists(_webhooks, max_size=3, unique_by=lambda w: w["name"])),
    ),
)

KIND_STRATEGIES = {
    "breeds": breeds(),
    "blueprints": blueprints(),
    "scales": scales,
    "slas": slas,
    "escalations": escalations,
    "routes": routes,
    "conditions": conditions,
    "rewrites": rewrites,
    "workflows": workflows(),
    "gateways": gateways(),
    "templates": templates,
    "release-policies": release_policies,
}
