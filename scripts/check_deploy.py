#!/usr/bin/env python3
"""Offline checks of deploy/ that no schema tool in Debian makes.

  check_deploy.py k8s [--bin-dir DIR] < rendered.yaml
      Kubernetes manifests (kubectl kustomize output): required fields per
      kind, selectors that select something, volumes, Secrets and claims
      that exist, named ports, non-root and read-only containers with
      resources, NetworkPolicies over existing pods and ports.
  check_deploy.py compose [--bin-dir DIR] FILE
      what `docker-compose config` (the schema) does not check: every
      secret and volume a service uses is declared.
  check_deploy.py configs --root DIR [--bin-dir DIR]
      deploy/*.toml parse, use the secure default (kits, not --insecure),
      and match the README's and the systemd units' layout.

With --bin-dir, every fedmi command line found (containers, compose
services, TOML keys) is checked against the binary's own --help: a flag
that does not exist fails. Python 3.11 standard library plus python3-yaml.
Exit status 0 when all is well, 1 with one line per problem on stderr.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tomllib

import yaml

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


# ---- fedmi flags --------------------------------------------------------------
_help_cache = {}


def known_flags(bin_dir, argv_prefix):
    """The long flags `argv_prefix --help` lists (e.g. fedmi sim)."""
    key = tuple(argv_prefix)
    if key not in _help_cache:
        exe = os.path.join(bin_dir, argv_prefix[0])
        out = subprocess.run([exe, *argv_prefix[1:], "--help"], capture_output=True,
                             text=True, timeout=60)
        if out.returncode != 0:
            _help_cache[key] = None
        else:
            _help_cache[key] = set(re.findall(r"--([a-z][a-z0-9-]*)", out.stdout))
    return _help_cache[key]


FEDMI_BINARIES = ("fedmi-coordinator", "fedmi-client", "fedmi")


def check_command(where, argv, bin_dir):
    if not argv or os.path.basename(argv[0]) not in FEDMI_BINARIES:
        problem(where, f"command {argv[:1]} is not one of {', '.join(FEDMI_BINARIES)}")
        return
    prefix = [os.path.basename(argv[0])]
    # fedmi's subcommands (sim, run start, ...) come before the first flag.
    if prefix[0] == "fedmi":
        for word in argv[1:]:
            if word.startswith("-"):
                break
            prefix.append(word)
    if bin_dir is None:
        return
    flags = known_flags(bin_dir, prefix)
    if flags is None:
        problem(where, f"`{' '.join(prefix)} --help` fails")
        return
    for word in argv[len(prefix):]:
        if word.startswith("--"):
            name = word[2:].split("=", 1)[0]
            if name not in flags:
                problem(where, f"`{' '.join(prefix)}` has no flag --{name}")


# ---- Kubernetes -------------------------------------------------------------
API_VERSIONS = {
    "Namespace": "v1", "Service": "v1", "Secret": "v1", "ConfigMap": "v1",
    "PersistentVolumeClaim": "v1", "ServiceAccount": "v1",
    "Deployment": "apps/v1", "StatefulSet": "apps/v1", "Job": "batch/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def get(obj, *path, default=None):
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_container(where, c, bin_dir):
    name = c.get("name")
    here = f"{where} container {name}"
    if not name or not NAME_RE.match(name):
        problem(where, f"container name {name!r} is not a DNS label")
    if not c.get("image"):
        problem(here, "has no image")
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if get(c, "resources", kind, resource) is None:
                problem(here, f"has no resources.{kind}.{resource}")
    sc = c.get("securityContext") or {}
    if sc.get("allowPrivilegeEscalation") is not False:
        problem(here, "must set securityContext.allowPrivilegeEscalation: false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problem(here, "must set securityContext.readOnlyRootFilesystem: true")
    if "ALL" not in (get(sc, "capabilities", "drop") or []):
        problem(here, "must drop ALL capabilities")
    ports = {p.get("name") for p in c.get("ports") or []}
    numbers = {p.get("containerPort") for p in c.get("ports") or []}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        port = get(c, probe, "tcpSocket", "port") or get(c, probe, "httpGet", "port")
        if probe in c and port is None:
            problem(here, f"{probe} has no port")
        elif port is not None and port not in ports and port not in numbers:
            problem(here, f"{probe} names port {port!r}, which the container does not have")
    if c.get("ports") and not (c.get("readinessProbe") and c.get("livenessProbe")):
        problem(here, "serves ports but has no readiness and liveness probes")
    command = (c.get("command") or []) + (c.get("args") or [])
    check_command(here, command, bin_dir)
    return ports | numbers


def check_k8s(docs, bin_dir):
    by_kind = {}
    namespaces = set()
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        kind = doc.get("kind")
        name = get(doc, "metadata", "name")
        where = f"{kind}/{name}"
        if kind not in API_VERSIONS:
            problem(f"document {i}", f"unexpected kind {kind!r}")
            continue
        if doc.get("apiVersion") != API_VERSIONS[kind]:
            problem(where, f"apiVersion {doc.get('apiVersion')!r}, expected {API_VERSIONS[kind]}")
        if not name or not NAME_RE.match(name) or len(name) > 63:
            problem(where, "metadata.name is not a DNS label")
        if kind != "Namespace":
            namespaces.add(get(doc, "metadata", "namespace"))
        if (kind, name) in by_kind:
            problem(where, "defined twice")
        by_kind[(kind, name)] = doc
    if len(namespaces) > 1:
        problem("manifests", f"objects spread over namespaces {sorted(map(str, namespaces))}")
    names = lambda kind: {n for (k, n) in by_kind if k == kind}
    pods = []  # (where, labels, ports)
    for (kind, name), doc in by_kind.items():
        where = f"{kind}/{name}"
        if kind in WORKLOADS:
            spec = doc.get("spec") or {}
            template = spec.get("template") or {}
            labels = get(template, "metadata", "labels") or {}
            if kind != "Job":
                selector = get(spec, "selector", "matchLabels") or {}
                if not selects(selector, labels):
                    problem(where, "spec.selector.matchLabels does not select its own pods")
            pod = template.get("spec") or {}
            psc = pod.get("securityContext") or {}
            if psc.get("runAsNonRoot") is not True:
                problem(where, "pod must set securityContext.runAsNonRoot: true")
            if get(psc, "seccompProfile", "type") != "RuntimeDefault":
                problem(where, "pod must use seccompProfile RuntimeDefault")
            if kind == "Job" and pod.get("restartPolicy") not in ("Never", "OnFailure"):
                problem(where, "a Job's restartPolicy must be Never or OnFailure")
            volumes = {v.get("name"): v for v in pod.get("volumes") or []}
            claims = {get(t, "metadata", "name") for t in spec.get("volumeClaimTemplates") or []}
            for vname, v in volumes.items():
                secret = get(v, "secret", "secretName")
                if secret is not None and secret not in names("Secret"):
                    problem(where, f"volume {vname} uses Secret {secret}, which is not defined")
                claim = get(v, "persistentVolumeClaim", "claimName")
                if claim is not None and claim not in names("PersistentVolumeClaim"):
                    problem(where, f"volume {vname} uses claim {claim}, which is not defined")
            ports = set()
            containers = pod.get("containers") or []
            if not containers:
                problem(where, "has no containers")
            for c in containers:
                ports |= check_container(where, c, bin_dir)
                for m in c.get("volumeMounts") or []:
                    if m.get("name") not in volumes and m.get("name") not in claims:
                        problem(where, f"mounts volume {m.get('name')}, which is not declared")
            if kind == "StatefulSet":
                governing = by_kind.get(("Service", spec.get("serviceName")))
                if governing is None:
                    problem(where, f"serviceName {spec.get('serviceName')} is not a Service here")
                elif get(governing, "spec", "clusterIP") != "None":
                    problem(where, f"serviceName {spec.get('serviceName')} is not headless")
            pods.append((where, labels, ports))
    for (kind, name), doc in by_kind.items():
        where = f"{kind}/{name}"
        if kind == "Service":
            selector = get(doc, "spec", "selector") or {}
            chosen = [p for p in pods if selects(selector, p[1])]
            if not chosen:
                problem(where, "selects no pods")
            for port in get(doc, "spec", "ports") or []:
                target = port.get("targetPort", port.get("port"))
                if chosen and not any(target in p[2] for p in chosen):
                    problem(where, f"targetPort {target!r} is no port of the pods it selects")
        elif kind == "NetworkPolicy":
            selector = get(doc, "spec", "podSelector", "matchLabels") or {}
            chosen = [p for p in pods if selects(selector, p[1])]
            if not chosen:
                problem(where, "podSelector selects no pods")
            if not get(doc, "spec", "policyTypes"):
                problem(where, "has no policyTypes")
            for rule in get(doc, "spec", "ingress") or []:
                for port in rule.get("ports") or []:
                    if chosen and not any(port.get("port") in p[2] for p in chosen):
                        problem(where, f"admits port {port.get('port')}, which its pods do not serve")
            for rule in get(doc, "spec", "egress") or []:
                for peer in rule.get("to") or []:
                    sel = get(peer, "podSelector", "matchLabels")
                    if sel and not any(selects(sel, p[1]) for p in pods):
                        problem(where, "an egress rule names pods that do not exist")
        elif kind == "PersistentVolumeClaim":
            if not get(doc, "spec", "accessModes") or not get(doc, "spec", "resources", "requests", "storage"):
                problem(where, "needs spec.accessModes and spec.resources.requests.storage")
        elif kind == "Secret":
            if "data" not in doc and "stringData" not in doc:
                problem(where, "has neither data nor stringData")


# ---- compose ------------------------------------------------------------------
def check_compose(path, bin_dir):
    with open(path) as f:
        doc = yaml.safe_load(f)
    secrets = set((doc.get("secrets") or {}).keys())
    volumes = set((doc.get("volumes") or {}).keys())
    for name, service in (doc.get("services") or {}).items():
        where = f"{path} service {name}"
        for s in service.get("secrets") or []:
            source = s if isinstance(s, str) else s.get("source")
            if source not in secrets:
                problem(where, f"uses secret {source}, which is not declared")
        for v in service.get("volumes") or []:
            source = v.split(":", 1)[0] if isinstance(v, str) else v.get("source")
            if not source.startswith(("/", ".", "$")) and source not in volumes:
                problem(where, f"uses volume {source}, which is not declared")
        command = service.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        check_command(where, command or [], bin_dir)
        if service.get("read_only") is not True:
            problem(where, "must set read_only: true")
        if "ALL" not in (service.get("cap_drop") or []):
            problem(where, "must drop ALL capabilities")


# ---- example configs ----------------------------------------------------------
CONFIGS = {  # file: (binary, keys it must set)
    "coordinator.toml": ("fedmi-coordinator", {"listen", "db", "cert", "key", "ca"}),
    "client.toml": ("fedmi-client", {"coordinator", "site", "cert", "key", "ca", "data"}),
    "admin.toml": ("fedmi", {"coordinator", "cert", "key", "ca"}),
}


def check_configs(root, bin_dir):
    deploy = os.path.join(root, "deploy")
    for file, (binary, required) in CONFIGS.items():
        path = os.path.join(deploy, file)
        where = f"deploy/{file}"
        try:
            with open(path, "rb") as f:
                config = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as e:
            problem(where, f"does not parse: {e}")
            continue
        if config.get("insecure"):
            problem(where, "sets insecure: examples show the secure default (kits)")
        for key in sorted(required - config.keys()):
            problem(where, f"does not set {key}")
        if bin_dir is not None:
            flags = known_flags(bin_dir, [binary])
            for key in config:
                if flags is not None and key not in flags:
                    problem(where, f"key {key} is no flag of {binary}")
    # The client example's data file is one `fedmi data split` makes, as its
    # comment says.
    with open(os.path.join(deploy, "client.toml")) as f:
        text = f.read()
    data = re.search(r'^data = "(.*)"', text, re.M)
    split = re.search(r"fedmi data split .*--out (\S+)", text)
    if not data or not split or not re.fullmatch(re.escape(split.group(1)) + r"/site-[0-9]+\.npz",
                                                  data.group(1)):
        problem("deploy/client.toml", "data must name a shard (<out>/site-<k>.npz) of the "
                "`fedmi data split --out <out>` its comment shows")
    if bin_dir is not None:
        out = subprocess.run([os.path.join(bin_dir, "fedmi"), "data", "split", "--help"],
                             capture_output=True, text=True, timeout=60).stdout
        if "<out>/site-<k>.npz" not in out:
            problem("deploy/client.toml", "`fedmi data split` no longer writes <out>/site-<k>.npz")
    # The systemd units read the configs where the README puts them.
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    units = os.path.join(deploy, "systemd")
    pairs = [("fedmi-coordinator.service", "%E/fedmi/coordinator/coordinator.toml",
              "--config /etc/fedmi/coordinator/coordinator.toml"),
             ("fedmi-client@.service", "%E/fedmi/%i/client.toml",
              "--config /etc/fedmi/st-marys/client.toml")]
    for unit, in_unit, in_readme in pairs:
        with open(os.path.join(units, unit)) as f:
            if f"--config {in_unit}" not in f.read():
                problem(f"deploy/systemd/{unit}", f"does not read {in_unit}")
        if in_readme not in readme:
            problem("README.md", f"no longer says `{in_readme}` (deploy/systemd/{unit} does)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["k8s", "compose", "configs"])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--bin-dir", help="folder with the fedmi binaries, to check flags")
    parser.add_argument("--root", default=".", help="the checkout (configs)")
    args = parser.parse_intermixed_args()
    if args.what == "k8s":
        text = "".join(open(f).read() for f in args.files) if args.files else sys.stdin.read()
        check_k8s(list(yaml.safe_load_all(text)), args.bin_dir)
    elif args.what == "compose":
        for f in args.files:
            check_compose(f, args.bin_dir)
    else:
        check_configs(args.root, args.bin_dir)
    for p in problems:
        print(f"check_deploy: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
