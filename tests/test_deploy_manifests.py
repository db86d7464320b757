"""Offline checks of the Kubernetes manifests in deploy/kubernetes.

Every manifest is validated against the Kubernetes OpenAPI schemas bundled with
``kubernetes-validate`` (strict: unknown fields are errors), then the properties the
deployment relies on are asserted: probes, Prometheus annotations, resources, the
non-root user, the config mount, the autoscaler's target, the Service's selector, and
that the ConfigMap carries the repository's current settings. No cluster, no network.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S_DIR = REPO / "deploy" / "kubernetes"
# The oldest Kubernetes release still common in managed clusters, and the newest the package knows.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())

MANIFESTS = sorted(p for p in K8S_DIR.rglob("*.yaml") if p.name != "kustomization.yaml")
KUSTOMIZATIONS = sorted(K8S_DIR.rglob("kustomization.yaml"))


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _docs(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in MANIFESTS for doc in _load(path) if doc["kind"] == kind]


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _validate(doc: dict[str, Any], version: str) -> None:
    # SchemaNotFoundError (unknown kind/apiVersion) propagates too: a typo there must fail.
    kubernetes_validate.validate(doc, version, strict=True)


DEPLOYMENTS = _docs("Deployment")
DEPLOYMENT_IDS = [_rel(p) for p, _ in DEPLOYMENTS]


def test_manifests_found() -> None:
    kinds = sorted(doc["kind"] for path in MANIFESTS for doc in _load(path))
    assert kinds.count("Deployment") == 2, kinds  # the CPU and the GPU variant
    for kind in ("ConfigMap", "Service", "HorizontalPodAutoscaler"):
        assert kind in kinds, kinds


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=_rel)
def test_manifest_is_valid(path: Path, version: str) -> None:
    docs = _load(path)
    assert docs, f"{_rel(path)} holds no resource"
    for doc in docs:
        problem = None
        try:
            _validate(doc, version)
        except kubernetes_validate.ValidationError as error:
            # The exception's str() dumps the whole schema; the field path and message are enough.
            field = ".".join(str(part) for part in error.path)
            problem = f"{_rel(path)} {doc['kind']}/{doc['metadata']['name']}: {field}: {error.message}"
        if problem:
            pytest.fail(problem)


# A Kubernetes resource quantity ("500m", "2", "1.5Gi", "1e3"); the schema types these as
# plain strings, so "2 GB" would pass schema validation and only fail in the cluster.
QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")


@pytest.mark.parametrize(("path", "deployment"), DEPLOYMENTS, ids=DEPLOYMENT_IDS)
def test_resource_quantities_parse(path: Path, deployment: dict[str, Any]) -> None:
    resources = _container(deployment).get("resources", {})
    quantities = [
        *(
            (f"resources.{section}.{name}", value)
            for section in ("requests", "limits")
            for name, value in resources.get(section, {}).items()
        ),
        *(
            (f"volumes.{v['name']}.sizeLimit", v["emptyDir"]["sizeLimit"])
            for v in deployment["spec"]["template"]["spec"].get("volumes", [])
            if "sizeLimit" in v.get("emptyDir", {})
        ),
    ]
    for where, value in quantities:
        assert QUANTITY.match(str(value)), f"{_rel(path)}: {where}={value!r} is not a Kubernetes quantity"


def test_validation_is_strict() -> None:
    """The schema check itself must reject a misspelt field and a missing required one."""
    _, deployment = DEPLOYMENTS[0]
    misspelt = copy.deepcopy(deployment)
    container = misspelt["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(misspelt, K8S_VERSIONS[-1])

    no_selector = copy.deepcopy(deployment)
    del no_selector["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(no_selector, K8S_VERSIONS[-1])


def test_kustomizations_cover_every_manifest() -> None:
    referenced: set[Path] = set()
    for kustomization in KUSTOMIZATIONS:
        spec = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
        for entry in spec.get("resources", []):
            target = (kustomization.parent / entry).resolve()
            assert target.exists(), f"{_rel(kustomization)}: missing resource {entry}"
            if target.is_file():
                referenced.add(target)
    orphans = [_rel(p) for p in MANIFESTS if p.resolve() not in referenced]
    assert not orphans, f"manifests no kustomization applies: {orphans}"


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _probe_port(container: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, str):  # a named port
        port = next(p["containerPort"] for p in container["ports"] if p.get("name") == port)
    return port


@pytest.mark.parametrize(("path", "deployment"), DEPLOYMENTS, ids=DEPLOYMENT_IDS)
def test_deployment_probes_and_port(path: Path, deployment: dict[str, Any]) -> None:
    container = _container(deployment)
    assert 3000 in [p["containerPort"] for p in container["ports"]]
    expected = {"readinessProbe": "/readyz", "livenessProbe": "/livez", "startupProbe": "/livez"}
    for probe_name, probe_path in expected.items():
        probe = container.get(probe_name)
        assert probe, f"{_rel(path)}: no {probe_name}"
        assert probe["httpGet"]["path"] == probe_path
        assert _probe_port(container, probe) == 3000


@pytest.mark.parametrize(("path", "deployment"), DEPLOYMENTS, ids=DEPLOYMENT_IDS)
def test_deployment_prometheus_annotations(path: Path, deployment: dict[str, Any]) -> None:
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    assert annotations.get("prometheus.io/scrape") == "true"
    assert annotations.get("prometheus.io/port") == "3000"
    assert annotations.get("prometheus.io/path") == "/metrics"


@pytest.mark.parametrize(("path", "deployment"), DEPLOYMENTS, ids=DEPLOYMENT_IDS)
def test_deployment_resources(path: Path, deployment: dict[str, Any]) -> None:
    resources = _container(deployment).get("resources", {})
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            assert resource in resources.get(section, {}), f"{_rel(path)}: no {section}.{resource}"


@pytest.mark.parametrize(("path", "deployment"), DEPLOYMENTS, ids=DEPLOYMENT_IDS)
def test_deployment_runs_as_bentoml_user(path: Path, deployment: dict[str, Any]) -> None:
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    # BentoML's generated Dockerfile creates `bentoml` with uid 1034; a numeric uid lets the
    # kubelet check runAsNonRoot against an image whose USER is a name.
    assert pod_security["runAsUser"] == 1034
    container_security = _container(deployment)["securityContext"]
    assert container_security["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize(("path", "deployment"), DEPLOYMENTS, ids=DEPLOYMENT_IDS)
def test_deployment_mounts_the_configmap(path: Path, deployment: dict[str, Any]) -> None:
    ((_, configmap),) = _docs("ConfigMap")
    container = _container(deployment)
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounted = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            assert volume["configMap"]["name"] == configmap["metadata"]["name"]
            mounted[mount["mountPath"].rstrip("/")] = mount
    for variable, key in (("BENTOML_CONFIG", "configuration.yaml"), ("BUNDLE_SERVING_CONFIG", "serving.yaml")):
        assert variable in env, f"{_rel(path)}: {variable} not set"
        directory, _, filename = env[variable].rpartition("/")
        assert directory in mounted, f"{variable}={env[variable]} is not inside a ConfigMap mount"
        assert filename == key and key in configmap["data"]


def test_gpu_deployment_requests_one_gpu() -> None:
    gpu = [(p, d) for p, d in DEPLOYMENTS if "nvidia.com/gpu" in _container(d)["resources"].get("limits", {})]
    assert len(gpu) == 1, "exactly one deployment (the GPU variant) should ask for a GPU"
    assert int(_container(gpu[0][1])["resources"]["limits"]["nvidia.com/gpu"]) == 1


def test_hpa_scales_the_cpu_deployment_on_cpu() -> None:
    ((_, hpa),) = _docs("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    cpu = [d for p, d in DEPLOYMENTS if p.parent.name == "cpu"]
    assert len(cpu) == 1
    deployment = cpu[0]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"].get("minReplicas", 1) <= hpa["spec"]["maxReplicas"]
    (metric,) = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    # Utilisation is measured against the request, and a fixed replica count would fight the HPA.
    assert "cpu" in _container(deployment)["resources"]["requests"]
    assert "replicas" not in deployment["spec"]


def test_service_selects_the_pods() -> None:
    ((_, service),) = _docs("Service")
    selector = service["spec"]["selector"]
    for path, deployment in DEPLOYMENTS:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), f"Service does not select the pods of {_rel(path)}"
        port_names = {p.get("name") for p in _container(deployment)["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names | {3000}


def _sync_config_module():
    spec = importlib.util.spec_from_file_location("sync_config", K8S_DIR / "sync-config.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configmap_matches_repository_settings() -> None:
    sync_config = _sync_config_module()
    missing = [name for name in sync_config.CONFIG_FILES if not (REPO / name).exists()]
    if missing:
        pytest.skip(f"settings files not in the repository yet: {missing}")
    stale = [
        _rel(path) for path, text in sync_config.expected_files().items() if path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"out of date: {stale}; run: python deploy/kubernetes/sync-config.py"


# ---- KServe -------------------------------------------------------------------------------------

KSERVE = REPO / "deploy" / "kserve" / "inferenceservice.yaml"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kserve_inferenceservice_is_a_v2_custom_predictor_with_a_valid_pod(version: str) -> None:
    """KServe's schema is a CRD that kubernetes-validate does not ship; its predictor is a pod spec, which
    is validated as one, and the KServe fields are checked by name."""
    (doc,) = _load(KSERVE)
    assert (doc["apiVersion"], doc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    predictor = doc["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert {"name": "PROTOCOL", "value": "v2"} in container["env"]
    assert container["ports"][0]["containerPort"] == 3000
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    pod_spec = {k: v for k, v in predictor.items() if k not in ("minReplicas", "maxReplicas")}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": pod_spec}
    _validate(pod, version)
    configmaps = [d["metadata"]["name"] for p, d in _docs("ConfigMap")]
    assert predictor["volumes"][0]["configMap"]["name"] in configmaps
